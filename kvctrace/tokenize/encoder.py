"""Text to token ids, exactly as ``tokenizers`` encodes it, in parallel batches with a cache.

Rules (docs/text-inputs.md): a ``prompt`` record is ``encode(prompt).ids`` (the tokenizer's
special-token post-processing applies); a chat record is its rendered template text,
``encode(text, add_special_tokens=False).ids``. ``bytes`` encodes UTF-8 bytes as tokens.

**Pieces.** ``tokenizers`` first cuts a text at its added tokens (``<|im_start|>`` ...) and then
normalizes, pre-tokenizes and models each piece between them on its own. When a tokenizer is
known to keep to that (``piece_path_problem`` returns None: no added token with
``lstrip``/``rstrip``/``single_word``, none matched on normalized text under a normalizer, and
only pre-tokenizers that work piece by piece: not Metaspace's ``prepend_scheme: first``),
kvctrace cuts the text the same way (leftmost-longest matches, non-normalized tokens first)
and encodes each distinct piece once: a chat log repeats its system prompts, documents and
session histories, so most pieces are already in the cache. Other tokenizers encode whole
texts (same results, slower). As a guard, the first texts of a run and the first text of every
later batch are also encoded whole and compared; a difference switches the run to whole texts.

**Message starts.** A message starting at character ``c`` of a text starts at token
``len(lcp(encode(text), encode(text[:c])))``: the number of leading tokens the request shares
with the rendering of the conversation before the message (the rendering's token count when
no token spans the boundary), and never before the previous message's start. With pieces,
that is the tokens of the pieces before ``c`` plus, when ``c`` falls inside a piece, the
common prefix of that piece's and its head's tokens."""
from __future__ import annotations

import bisect
import itertools
import json
import re

import numpy as np

_PIECE_LOCAL_PRE_TOKENIZERS = {"ByteLevel", "Split", "Digits", "Punctuation", "Whitespace", "WhitespaceSplit",
                               "BertPreTokenizer", "CharDelimiterSplit", "UnicodeScripts", "Metaspace",
                               "Sequence"}
# Texts encoded whole and compared with the piece path at the start of a run.
GUARD_TEXTS = 8
GUARD_MAX_CHARS = 1 << 16  # longer texts are not guarded (the guard must stay a small cost)
# Distinct pieces kept between batches, in tokens (oldest half dropped beyond it).
CACHE_TOKENS = 1 << 24


def _pre_tokenizer_problem(spec) -> str | None:
    if spec is None:
        return None
    kind = spec.get("type")
    if kind not in _PIECE_LOCAL_PRE_TOKENIZERS:
        return f"pre-tokenizer {kind}"
    if kind == "Metaspace" and spec.get("prepend_scheme") == "first":
        return "Metaspace pre-tokenizer with prepend_scheme 'first'"
    for inner in spec.get("pretokenizers", []) if kind == "Sequence" else []:
        problem = _pre_tokenizer_problem(inner)
        if problem:
            return problem
    return None


def piece_path_problem(tokenizer) -> str | None:
    """Why ``tokenizer`` must encode whole texts, or None when pieces give the same ids."""
    spec = json.loads(tokenizer.to_str())
    for token in spec.get("added_tokens", []):
        for flag in ("lstrip", "rstrip", "single_word"):
            if token.get(flag):
                return f"added token {token.get('content')!r} has {flag}"
        if token.get("normalized") and spec.get("normalizer") is not None:
            return f"added token {token.get('content')!r} is matched after normalization"
    return _pre_tokenizer_problem(spec.get("pre_tokenizer"))


def _alternation(contents) -> re.Pattern | None:
    # longest first: Python's leftmost match then takes the longest token at each position
    ordered = sorted({c for c in contents if c}, key=lambda c: (-len(c), c))
    return re.compile("|".join(map(re.escape, ordered))) if ordered else None


def lcp(a: np.ndarray, b: np.ndarray) -> int:
    """Length of the common prefix of two id arrays."""
    n = min(a.shape[0], b.shape[0])
    differ = np.flatnonzero(a[:n] != b[:n])
    return int(differ[0]) if differ.shape[0] else n


class _Splitter:
    """Cuts a text at the tokenizer's added tokens as ``tokenizers`` does: first the tokens
    matched on raw text, then (in the remaining pieces) those matched on normalized text
    (equal to raw text here: see ``piece_path_problem``)."""

    def __init__(self, tokenizer):
        added = tokenizer.get_added_tokens_decoder()
        usable = {i: t for i, t in added.items() if not (t.special and tokenizer.encode_special_tokens)}
        self.ids = {t.content: i for i, t in usable.items()}
        self._passes = [p for p in (_alternation(t.content for t in usable.values() if not t.normalized),
                                    _alternation(t.content for t in usable.values() if t.normalized)) if p]

    def split(self, text: str) -> list[tuple[int, int, int]]:
        """(start, end, added-token id or -1) of the text's pieces, in order (no empty ones)."""
        pieces = [(0, len(text), -1)] if text else []
        for pattern in self._passes:
            out = []
            for start, end, tid in pieces:
                if tid >= 0:
                    out.append((start, end, tid))
                    continue
                pos = start
                for m in pattern.finditer(text, start, end):
                    if m.start() > pos:
                        out.append((pos, m.start(), -1))
                    out.append((m.start(), m.end(), self.ids[m.group()]))
                    pos = m.end()
                if pos < end:
                    out.append((pos, end, -1))
            pieces = out
        return pieces


class _Cache(dict):
    """Ids of distinct texts, at most CACHE_TOKENS tokens: beyond, the oldest half goes."""

    def __init__(self):
        super().__init__()
        self.tokens = 0

    def add(self, text: str, ids: np.ndarray) -> None:
        self[text] = ids
        self.tokens += ids.shape[0]

    def trim(self) -> None:
        if self.tokens > CACHE_TOKENS:
            for key in list(itertools.islice(self, len(self) // 2)):
                self.tokens -= self.pop(key).shape[0]


class Encoder:
    """Encodes prompt and chat texts to int32 ids, batch by batch (see the module docstring)."""

    def __init__(self, tokenizer, *, pieces: bool | None = None):
        self.tokenizer = tokenizer
        problem = piece_path_problem(tokenizer) if pieces is None else (None if pieces else "disabled")
        self.path = "pieces" if problem is None else f"whole texts ({problem})"
        self._splitter = _Splitter(tokenizer) if problem is None else None
        self._cache = _Cache()
        self._prompt_cache = _Cache()
        self._guard_first = GUARD_TEXTS if problem is None else 0
        self._specials: dict = {}  # added-token id -> its one-id array
        self._batch = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)  # 0.20+: no offsets

    def _encode_missing(self, texts, cache: _Cache, add_special_tokens: bool) -> None:
        missing = list(dict.fromkeys(t for t in texts if t not in cache))
        for text, enc in zip(missing, self._batch(missing, add_special_tokens=add_special_tokens) if missing else ()):
            cache.add(text, np.array(enc.ids, np.int32))

    def prompts(self, texts: list[str]) -> list[np.ndarray]:
        """``encode(text).ids`` of each prompt (exact duplicates encoded once)."""
        self._encode_missing(texts, self._prompt_cache, True)
        out = [self._prompt_cache[t] for t in texts]
        self._prompt_cache.trim()
        return out

    def chats(self, texts: list[str], starts: list[list[int]]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Ids of each rendered chat text and the token offset of each message start."""
        split = [self._pieces(t) for t in texts]
        heads = [self._heads(t, p, s) for t, p, s in zip(texts, split, starts)]
        wanted = [piece for pieces in split for _, _, _, piece in pieces if piece is not None]
        wanted += [head for h in heads for _, _, head in h if head]
        self._encode_missing(wanted, self._cache, False)
        out = [self._assemble(p, h, len(s)) for p, h, s in zip(split, heads, starts)]
        self._guard(texts, out)
        self._cache.trim()
        return [o[0] for o in out], [o[1] for o in out]

    # -- pieces -----------------------------------------------------------------------------------
    def _pieces(self, text: str) -> list[tuple[int, int, int, str | None]]:
        """(start, end, added-token id or -1, text of a non-added piece) of each piece."""
        if self._splitter is None:
            return [(0, len(text), -1, text)] if text else []
        return [(a, b, tid, text[a:b] if tid < 0 else None) for a, b, tid in self._splitter.split(text)]

    @staticmethod
    def _heads(text, pieces, starts) -> list[tuple[int, int, str]]:
        """(message index, index of the piece holding its start or -1 after the last piece, the
        piece's text before the start) for each message start after 0."""
        piece_starts = [a for a, _, _, _ in pieces]
        out = []
        for k, c in enumerate(starts):
            if k == 0 or not pieces:
                continue
            if c >= len(text):
                out.append((k, -1, ""))  # after the last piece: all tokens come before
                continue
            i = bisect.bisect_right(piece_starts, c) - 1
            a, _, tid, _ = pieces[i]
            out.append((k, i, text[a:c] if tid < 0 else ""))
        return out

    def _special(self, tid: int) -> np.ndarray:
        ids = self._specials.get(tid)
        if ids is None:
            ids = self._specials[tid] = np.array([tid], np.int32)
        return ids

    def _assemble(self, pieces, heads, n_messages) -> tuple[np.ndarray, np.ndarray]:
        parts = [self._cache[piece] if piece is not None else self._special(tid) for _, _, tid, piece in pieces]
        offsets = np.zeros(n_messages, np.int32)
        if heads:
            before = list(itertools.accumulate((p.shape[0] for p in parts), initial=0))  # tokens before piece i
            for k, i, head in heads:
                extra = lcp(parts[i], self._cache[head]) if head else 0
                offsets[k] = max(offsets[k - 1], before[i] + extra)
        ids = np.concatenate(parts) if parts else np.empty(0, np.int32)
        return ids, offsets

    def _guard(self, texts, out) -> None:
        """Encode the run's first texts, and the first of every later batch, whole and compare."""
        if self._splitter is None or not texts:
            return
        n = max(1, self._guard_first)
        self._guard_first = 0
        checked = [(t, o[0]) for t, o in zip(texts, out) if len(t) <= GUARD_MAX_CHARS][:n]
        if not checked:
            return
        whole = self._batch([t for t, _ in checked], add_special_tokens=False)
        for (text, ids), enc in zip(checked, whole):
            if enc.ids != ids.tolist():
                raise PiecePathMismatch(text)


class PiecePathMismatch(Exception):
    """The piece path gave other ids than encoding the whole text (the run restarts whole)."""


class BytesEncoder:
    """``--tokenizer bytes``: UTF-8 bytes as tokens (an approximation of a real tokenizer)."""
    path = "bytes"

    @staticmethod
    def _ids(text: str) -> np.ndarray:
        return np.frombuffer(text.encode("utf-8"), np.uint8).astype(np.int32)

    def prompts(self, texts: list[str]) -> list[np.ndarray]:
        return [self._ids(t) for t in texts]

    def chats(self, texts, starts) -> tuple[list[np.ndarray], list[np.ndarray]]:
        ids, offsets = [], []
        for text, chars in zip(texts, starts):
            ids.append(self._ids(text))
            steps = [len(text[a:b].encode("utf-8")) for a, b in zip([0] + chars[:-1], chars)]
            offsets.append(np.cumsum(steps, dtype=np.int64).astype(np.int32))
        return ids, offsets
