"""Synthetic chat logs (format ``prompts``): ``kvctrace synth OUT --format prompts``.

The workload structure is ``kvctrace.synth``'s (the same seed and options give the same
arrivals, sessions, system prompts, documents and turn lengths as the other formats); this
module writes it as text. Each request is one JSON line::

    {"timestamp": 1700000012.345, "session_id": "s17", "model": "synth-chat",
     "messages": [{"role": "system", ...}, {"role": "user", ...}, {"role": "assistant", ...}, ...],
     "output_tokens": 212}

* ``system``: one of the shared system prompts (Zipf popularity). System prompt 0, the most
  popular, starts with a per-request clock, ``Current time: HH:MM:SS.`` (the request's
  timestamp, UTC): a realistic mistake that defeats prefix caching for its sessions.
* The first user turn of a ``file`` session embeds a shared document (retrieval-augmented
  generation; Zipf popularity); an ``image`` session's first turn adds an ``image_url``
  part (skipped and counted at ingest); a ``search`` session's turns carry fresh results.
* Multi-turn sessions carry their history: turn t sends every earlier user and assistant
  message again, then the new user message.

Text is pseudo-words from a fixed lexicon (Zipf word frequencies), about ``WORDS_PER_TOKEN``
words per model token of the structure's lengths; each segment (system prompt, document, user
turn, reply) has its own random stream, so a repeated segment is the same text every time.
``output_tokens`` is the structure's output length (the reply's text has about that many
tokens under a tokenizer of ~1.3 tokens per word, such as datasets/tokenizer-bpe-4k)."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

import numpy as np

from .synth import FORMATS as HASHED_FORMATS
from .synth import SEGMENT_KIND_SHIFT, SEGMENT_KINDS, TYPES, SynthSummary, synthesize, write_jsonl_bytes

FORMATS = (*HASHED_FORMATS, "prompts")  # what ``kvctrace synth --format`` writes
WORDS_PER_TOKEN = 0.75
EPOCH_S = 1_700_000_000          # timestamps are this + the workload's seconds
CLOCK_PROMPT = 0                 # the system prompt that embeds the request's time
MODEL = "synth-chat"
_LEXICON_SEED = 0x6B7674         # the lexicon is the same for every --seed
_SYLLABLES = ("ka", "to", "ri", "sen", "mo", "la", "pe", "ur", "an", "ti", "ko", "ve", "da", "lu", "mi",
              "gor", "es", "ta", "ne", "bri", "ol", "fa", "qui", "sta", "em", "dor", "ny", "hal", "zu", "ce")
_ENDINGS = (". ", ". ", ". ", "? ", "! ", ", and ", ": ")


@lru_cache(maxsize=1)
def _lexicon() -> tuple[np.ndarray, np.ndarray]:
    """(words, cumulative Zipf probabilities) of 6,000 distinct pseudo-words."""
    rng = np.random.Generator(np.random.PCG64(_LEXICON_SEED))
    words: list[str] = []
    seen: set = set()
    while len(words) < 6000:
        word = "".join(rng.choice(_SYLLABLES, int(rng.integers(1, 5))))
        if word not in seen:
            seen.add(word)
            words.append(word)
    p = np.arange(1, len(words) + 1, dtype=np.float64) ** -1.05
    return np.array(words), np.cumsum(p / p.sum())


def words_text(rng: np.random.Generator, n_words: int) -> str:
    """About ``n_words`` pseudo-words as sentences and paragraphs."""
    words, cdf = _lexicon()
    n_words = max(1, int(n_words))
    chosen = words[np.minimum(np.searchsorted(cdf, rng.random(n_words)), len(words) - 1)].tolist()
    lengths = rng.integers(4, 19, size=n_words // 4 + 1)
    endings = rng.integers(0, len(_ENDINGS), size=lengths.shape[0])
    numbers = rng.random(lengths.shape[0])
    out, pos = [], 0
    for i, length in enumerate(lengths.tolist()):
        if pos >= n_words:
            break
        sentence = chosen[pos:pos + length]
        pos += length
        sentence[0] = sentence[0].capitalize()
        if numbers[i] < 0.1:
            sentence.append(str(int(numbers[i] * 10000)))
        out.append(" ".join(sentence) + (_ENDINGS[endings[i]] if i % 6 != 5 else ".\n\n"))
    return "".join(out).rstrip()


class _Segments:
    """Text of each segment (kind, index), generated once from its own random stream."""

    def __init__(self, seed: int):
        self.seed = seed
        self._texts: dict = {}

    def text(self, kind: int, index: int, n_tokens: int) -> str:
        key = (kind, index)
        text = self._texts.get(key)
        if text is None:
            rng = np.random.Generator(np.random.PCG64([self.seed, kind, index]))
            text = self._texts[key] = words_text(rng, round(n_tokens * WORDS_PER_TOKEN))
        return text


def _clock(ts: float) -> str:
    return datetime.fromtimestamp(EPOCH_S + ts, timezone.utc).strftime("%H:%M:%S")


def _messages(work, r: int, segs: _Segments) -> list:
    kinds = SEGMENT_KINDS
    messages: list = []
    doc = None
    first_user = True
    for sid, length in zip(work.seg_ids[work.seg_offsets[r]:work.seg_offsets[r + 1]].tolist(),
                           work.seg_lens[work.seg_offsets[r]:work.seg_offsets[r + 1]].tolist()):
        kind, index = sid >> SEGMENT_KIND_SHIFT, sid & ((1 << SEGMENT_KIND_SHIFT) - 1)
        text = segs.text(kind, index, length)
        if kind == kinds["system"]:
            clock = f"Current time: {_clock(float(work.ts[r]))}. " if index == CLOCK_PROMPT else ""
            messages.append({"role": "system", "content": f"You are assistant number {index}. {clock}{text}"})
        elif kind == kinds["document"]:
            doc = f"Answer with the help of this document.\n<document id=\"{index}\">\n{text}\n</document>\n\n"
        elif kind == kinds["output"]:
            messages.append({"role": "assistant", "content": text})
        else:
            messages.append(_user_message(work, index, text, doc if first_user else None, first_user))
            first_user = False
    return messages


def _user_message(work, request: int, text: str, doc: str | None, first: bool) -> dict:
    kind = TYPES[int(work.type[request])]
    if kind == "search":
        text = f"Search results:\n{text}"
    if doc:
        text = doc + text
    if kind == "image" and first:
        return {"role": "user", "content": [{"type": "text", "text": text},
                                            {"type": "image_url", "image_url": {"url": f"https://example.com/{request}.png"}}]}
    return {"role": "user", "content": text}


def records(n_requests: int = 1000, seed: int = 0, **structure):
    """(workload, generator of one dict per request in arrival order)."""
    work = synthesize(n_requests, seed, **structure)
    segs = _Segments(seed)

    def rows():
        for r in range(work.n_requests):
            yield {"timestamp": round(EPOCH_S + float(work.ts[r]), 3), "session_id": f"s{int(work.session[r])}",
                   "model": MODEL, "messages": _messages(work, r, segs), "output_tokens": int(work.output_len[r])}
    return work, rows()


def write(path, n_requests: int = 1000, seed: int = 0, **structure) -> SynthSummary:
    """Write a synthetic chat log as JSON lines (``.gz`` / ``.zst`` suffix compresses)."""
    path = Path(path)
    work, rows = records(n_requests, seed, **structure)
    write_jsonl_bytes(b"".join(json.dumps(row, ensure_ascii=False).encode() + b"\n" for row in rows), path)
    return SynthSummary(path=path, format="prompts", block_size=None, requests=work.n_requests,
                        sessions=int(work.session.max()) + 1, blocks=0, tokens=int(work.input_len.sum()),
                        duration_s=float(work.ts[-1]))


def training_texts(seed: int = 0, n_texts: int = 400, words: int = 300) -> list[str]:
    """Text for training a tokenizer that fits these logs: pseudo-word paragraphs, clocks and
    the roles and markup the logs use."""
    rng = np.random.Generator(np.random.PCG64([seed, 0x746F6B]))
    extra = ["system\nYou are assistant number 3. Current time: 12:34:56.", "user\nSearch results:",
             "assistant\n", "Answer with the help of this document.\n<document id=\"7\">\n</document>"]
    return extra * 20 + [words_text(rng, words) for _ in range(n_texts)]


def write_tokenizer(folder, seed: int = 0, vocab_size: int = 4096) -> Path:
    """Train the byte-level BPE of ``kvctrace.tokenize.train`` on ``training_texts(seed)`` and
    write it as a model folder with a ChatML chat template (datasets/tokenizer-bpe-4k)."""
    from .tokenize.train import train_bpe, write_tokenizer_folder
    return write_tokenizer_folder(train_bpe(training_texts(seed), vocab_size), folder)
