"""One ingest's text pipeline: each chat record is rendered as it is read (``render``) and its
text queued (``add``); batches of about ``BATCH_CHARS`` characters are tokenized in a
background thread while reading goes on (``encode_batch`` runs in Rust threads without the
GIL, so rendering and tokenizing overlap), and ``tokenized`` collects every record's tokens."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ..progress import bar_text
from .encoder import BytesEncoder, Encoder, PiecePathMismatch
from .loading import TokenizerFiles
from .template import ChatTemplate

# Large enough for ``encode_batch`` to keep both cores busy, small enough to overlap with reading.
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
    def __init__(self, files: TokenizerFiles, progress=None):
        """``progress(text)``, if given, is told how tokenizing goes while records are read."""
        self._worker: ThreadPoolExecutor | None = None
        self.files = files
        self.template = ChatTemplate(files.chat_template, files.chat_template_source, files.bos_token,
                                     files.eos_token)
        self.texts: list[str] = []        # queued texts, in record order
        self._starts: list = []           # per text: None (a prompt) or its message starts
        self._progress = progress
        self._encoder = self._new_encoder(None)
        self._sent = self._pending = self._tokens = 0
        self._jobs: list = []             # futures of the batches, in order
        self._bounds: list = []           # (first, end) record of each batch

    def render(self, messages: list, *, tools=None, documents=None, timestamp: float = 0.0) -> tuple[str, list[int]]:
        """The record's rendered text and the character where each message starts;
        ``TemplateFailed`` when the template fails."""
        ctx = {"tools": tools, "documents": documents, "timestamp": timestamp}
        text = self.template.render(messages, add_generation_prompt=True, **ctx)
        return text, self.template.message_starts(messages, text, **ctx)

    def add(self, text: str, starts: list[int] | None) -> None:
        """Queue one record: ``starts`` None for a prompt, else its messages' character starts."""
        self.texts.append(text)
        self._starts.append(starts)
        self._pending += len(text)
        if self._pending >= BATCH_CHARS:
            self._send()

    def tokenize(self, texts: list[str], starts: list, progress=None) -> Tokenized:
        """``add`` every text, then ``tokenized``."""
        for text, at in zip(texts, starts):
            self.add(text, at)
        return self.tokenized(progress)

    def tokenized(self, progress=None) -> Tokenized:
        """The tokens of every queued record (waits for the background batches);
        ``progress(text)`` is told how far they got."""
        self._send()
        tell = progress or (lambda text: None)
        parts, note = [], ""
        try:
            for k, job in enumerate(self._jobs):
                tell(f"tokenizing {bar_text(k / len(self._jobs))}")
                parts.append(job.result())
        except PiecePathMismatch:
            self.close()
            self._encoder = self._new_encoder(False)
            parts = [self._batch(self._encoder, lo, hi) for lo, hi in self._bounds]
            note = " after the piece path disagreed with whole-text encoding"
        finally:
            self.close()
        tell(f"tokenizing {bar_text(1)}")
        ids = [a for got, _ in parts for a in got]
        msg = [a for _, got in parts for a in got]
        return Tokenized(tokens=_flat(ids, np.int32), offsets=_csr(ids), msg_offsets=_flat(msg, np.int32),
                         msg_index=_csr(msg), path=self._encoder.path + note)

    def close(self) -> None:
        """Stop the background thread (queued batches not started are dropped)."""
        if self._worker is not None:
            self._worker.shutdown(wait=True, cancel_futures=True)
            self._worker = None

    def __del__(self):  # an ingest that failed while reading leaves batches behind
        if self._worker is not None:
            self._worker.shutdown(wait=False, cancel_futures=True)

    # -- batches ----------------------------------------------------------------------------------
    def _new_encoder(self, pieces: bool | None):
        return BytesEncoder() if self.files.is_bytes else Encoder(self.files.tokenizer, pieces=pieces)

    def _send(self) -> None:
        lo, hi = self._sent, len(self.texts)
        if hi == lo:
            return
        self._sent, self._pending = hi, 0
        if self._worker is None:
            self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kvctrace-tokenize")
        self._jobs.append(self._worker.submit(self._batch, self._encoder, lo, hi))
        self._bounds.append((lo, hi))

    def _batch(self, encoder, lo: int, hi: int) -> tuple[list, list]:
        """(ids, message starts) of records lo..hi-1 (runs in the background thread)."""
        rows = range(lo, hi)
        prompt_rows = [r for r in rows if self._starts[r] is None]
        chat_rows = [r for r in rows if self._starts[r] is not None]
        ids: dict = {}
        msg: dict = {}
        for r, got in zip(prompt_rows, encoder.prompts([self.texts[r] for r in prompt_rows])):
            ids[r], msg[r] = got, np.zeros(1, np.int32)
        chat_ids, chat_starts = encoder.chats([self.texts[r] for r in chat_rows], [self._starts[r] for r in chat_rows])
        for r, got, at in zip(chat_rows, chat_ids, chat_starts):
            ids[r], msg[r] = got, at
        self._tokens += sum(a.shape[0] for a in ids.values())
        if self._progress is not None:
            self._progress(f"tokenizing: {hi:,} requests read, {self._tokens / 1e6:,.1f} M tokens")
        return [ids[r] for r in rows], [msg[r] for r in rows]


def _csr(parts) -> np.ndarray:
    out = np.zeros(len(parts) + 1, np.int64)
    np.cumsum([p.shape[0] for p in parts], out=out[1:])
    return out


def _flat(parts, dtype) -> np.ndarray:
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.empty(0, dtype)
