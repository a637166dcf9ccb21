"""One ingest's text pipeline: render each chat record (as it is read) and tokenize every
record in batches at the end, with a progress line."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..progress import bar_text
from .encoder import BytesEncoder, Encoder, PiecePathMismatch
from .loading import TokenizerFiles
from .template import ChatTemplate

# Requests are tokenized in batches of about this many characters: large enough for
# ``encode_batch`` to keep both cores busy, small enough to show progress.
BATCH_CHARS = 4 << 20


@dataclass
class Tokenized:
    """Every record's tokens and message starts, in record order (CSR)."""
    tokens: np.ndarray          # int32
    offsets: np.ndarray         # int64, n + 1
    msg_offsets: np.ndarray     # int32 token offset of each message start
    msg_index: np.ndarray       # int64, n + 1: record r's starts are msg_offsets[msg_index[r]:msg_index[r+1]]
    path: str                   # how the texts were encoded (pieces, whole texts, bytes)


class TextPipeline:
    def __init__(self, files: TokenizerFiles):
        self.files = files
        self.template = ChatTemplate(files.chat_template, files.chat_template_source, files.bos_token,
                                     files.eos_token)

    def render(self, messages: list, *, tools=None, documents=None, timestamp: float = 0.0) -> tuple[str, list[int]]:
        """The record's rendered text and the character where each message starts;
        ``TemplateFailed`` when the template fails."""
        ctx = {"tools": tools, "documents": documents, "timestamp": timestamp}
        text = self.template.render(messages, add_generation_prompt=True, **ctx)
        return text, self.template.message_starts(messages, text, **ctx)

    def _encoder(self, pieces: bool | None):
        return BytesEncoder() if self.files.is_bytes else Encoder(self.files.tokenizer, pieces=pieces)

    def tokenize(self, texts: list[str], starts: list, progress=None) -> Tokenized:
        """Tokens of each record: ``starts[r]`` is None for a prompt record, else the character
        starts of its messages. ``progress(text)`` is told how far it got."""
        try:
            return self._run(self._encoder(None), texts, starts, progress)
        except PiecePathMismatch:
            return self._run(self._encoder(False), texts, starts, progress, note=" after the piece path "
                             "disagreed with whole-text encoding")

    def _run(self, encoder, texts, starts, progress, note: str = "") -> Tokenized:
        n = len(texts)
        ids: list = [None] * n
        msg: list = [None] * n
        done = tokens = 0
        tell = progress or (lambda text: None)
        tell(f"tokenizing {bar_text(0)}")
        while done < n:
            end, size = done, 0
            while end < n and (end == done or size < BATCH_CHARS):
                size += len(texts[end])
                end += 1
            prompt_rows = [r for r in range(done, end) if starts[r] is None]
            chat_rows = [r for r in range(done, end) if starts[r] is not None]
            for r, got in zip(prompt_rows, encoder.prompts([texts[r] for r in prompt_rows])):
                ids[r], msg[r] = got, np.zeros(1, np.int32)
            chat_ids, chat_starts = encoder.chats([texts[r] for r in chat_rows], [starts[r] for r in chat_rows])
            for r, got, at in zip(chat_rows, chat_ids, chat_starts):
                ids[r], msg[r] = got, at
            tokens += sum(ids[r].shape[0] for r in range(done, end))
            done = end
            tell(f"tokenizing {bar_text(done / n)} ({done:,} of {n:,} requests, {tokens / 1e6:,.1f} M tokens)")
        return Tokenized(tokens=_flat(ids, np.int32), offsets=_csr(ids), msg_offsets=_flat(msg, np.int32),
                         msg_index=_csr(msg), path=encoder.path + note)


def _csr(parts) -> np.ndarray:
    out = np.zeros(len(parts) + 1, np.int64)
    np.cumsum([p.shape[0] for p in parts], out=out[1:])
    return out


def _flat(parts, dtype) -> np.ndarray:
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.empty(0, dtype)
