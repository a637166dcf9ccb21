"""Synthetic KV-cache traces with controllable structure (``kvctrace synth``).

The workload model, one request at a time in arrival order:

* Requests arrive by a Poisson process at ``rate`` per second, or a bursty on/off
  (Markov-modulated Poisson) process whose "on" rate is ``burst_factor`` times the mean.
* An arrival continues the session that has waited longest since its user was ready again
  (previous turn + think time), or starts a new session if none is ready. A session continues
  after each turn with probability ``1 - 1/turns_mean`` (geometric turn count); it ends
  early when its next turn would exceed ``max_context_tokens`` (first turns are clipped to it).
* A session opens with one of ``system_prompts`` shared system prompts (Zipf popularity
  ``prompt_alpha``). Its type is ``file`` (attaches one of ``documents`` shared documents, Zipf
  ``document_alpha``), ``image`` (an image in the first user turn), ``search`` (fresh search
  results in every turn) or ``text``.
* Turn t's input = turn t-1's input + turn t-1's output + new user text, so the context grows
  turn by turn and the previous turn's prompt is a cached prefix of the next.

Content is a list of *segments* per request (system prompt, document, user turns, outputs);
the token at position p of segment s is ``combine(s, p) % vocab``. A block's content is hashed
from the (segment, offset, length) pieces it covers, which names exactly the tokens it holds,
so a 5-billion-token trace hashes in seconds without materialising tokens. Every format is
derived from the same segments with the hashing kernels, so the three formats of one seed
describe the same workload: hashing the ``tokens`` trace at 512 (partial included) gives the
``mooncake`` ids, and rechaining + coarsening the ``bailian`` ids by 32 gives them too.

Randomness comes from one numpy ``Generator(PCG64(seed))`` whose draws are passed to the
kernels, so a seed gives the same trace on every run.
"""
from __future__ import annotations

import dataclasses
import gzip
import io
from dataclasses import dataclass, field
from pathlib import Path

import numba as nb
import numpy as np
import polars as pl

from .errors import ConfigError
from .kernels.hashing import CONTENT_SEED, combine, dense_ids, rechain

FORMATS = ("mooncake", "bailian", "tokens")
DEFAULT_BLOCK_SIZE = {"mooncake": 512, "bailian": 16, "tokens": 16}
TYPES = ("text", "file", "image", "search")

# Segment ids carry their kind in the top bits so ids of different kinds never meet.
_SYS, _DOC, _USER, _OUT = 1, 2, 3, 4
_KIND_SHIFT = 48
SEGMENT_KINDS = {"system": _SYS, "document": _DOC, "user": _USER, "output": _OUT}
SEGMENT_KIND_SHIFT = _KIND_SHIFT


@dataclass(frozen=True)
class SynthConfig:
    """Structure of a synthetic workload. Token counts are means of lognormal draws."""
    system_prompts: int = field(default=16, metadata={"help": "Distinct shared system prompts"})
    system_prompt_tokens: int = field(default=1500, metadata={"help": "Mean system prompt length (tokens)"})
    prompt_alpha: float = field(default=1.0, metadata={"help": "Zipf exponent of system prompt popularity (0 = uniform)"})
    documents: int = field(default=10000, metadata={"help": "Distinct shared documents (file sessions)"})
    document_tokens: int = field(default=10000, metadata={"help": "Mean document length (tokens)"})
    document_alpha: float = field(default=0.9, metadata={"help": "Zipf exponent of document popularity (0 = uniform)"})
    document_share: float = field(default=0.3, metadata={"help": "Share of sessions that attach a document (type file)"})
    image_share: float = field(default=0.1, metadata={"help": "Share of sessions with an image in the first turn (type image)"})
    search_share: float = field(default=0.1, metadata={"help": "Share of sessions with fresh search results each turn (type search)"})
    image_tokens: int = field(default=1500, metadata={"help": "Mean image length (tokens)"})
    search_tokens: int = field(default=2500, metadata={"help": "Mean search-result length per turn (tokens)"})
    turns_mean: float = field(default=2.0, metadata={"help": "Mean turns per session (geometric; 1 = single-turn)"})
    user_tokens: int = field(default=4500, metadata={"help": "Mean new user text per turn (tokens)"})
    output_tokens: int = field(default=350, metadata={"help": "Mean output length (tokens)"})
    think_time_s: float = field(default=45.0, metadata={"help": "Mean time between a reply and the user's next turn (s)"})
    max_context_tokens: int = field(default=131072, metadata={"help": "A session ends before its context would exceed this"})
    rate: float = field(default=3.0, metadata={"help": "Mean request arrival rate (requests/s)"})
    arrival: str = field(default="poisson", metadata={"help": "poisson | bursty (on/off Markov-modulated Poisson)"})
    burst_factor: float = field(default=5.0, metadata={"help": "Bursty: on-state rate / mean rate (on share = 1/burst_factor)"})
    burst_period_s: float = field(default=60.0, metadata={"help": "Bursty: mean length of one on+off cycle (s)"})
    vocab: int = field(default=151936, metadata={"help": "Token id range of the tokens format"})

    def validate(self) -> "SynthConfig":
        def bad(name, hint):
            raise ConfigError(f"invalid synth option {name}={getattr(self, name)!r}", field=name, hint=hint)
        for name in ("system_prompts", "system_prompt_tokens", "user_tokens", "output_tokens", "vocab",
                     "max_context_tokens"):
            if getattr(self, name) < 1:
                bad(name, "must be >= 1")
        for name in ("documents", "document_tokens", "image_tokens", "search_tokens"):
            if getattr(self, name) < 0 or (name == "documents" and self.document_share > 0 and self.documents < 1):
                bad(name, "must be >= 0 (>= 1 documents when document_share > 0)")
        for name in ("prompt_alpha", "document_alpha", "think_time_s"):
            if not getattr(self, name) >= 0:
                bad(name, "must be >= 0")
        for name in ("document_share", "image_share", "search_share"):
            if not 0 <= getattr(self, name) <= 1:
                bad(name, "must be between 0 and 1")
        if self.document_share + self.image_share + self.search_share > 1:
            bad("document_share", "document_share + image_share + search_share must be <= 1")
        if self.max_context_tokens < 64:
            bad("max_context_tokens", "must be >= 64")
        if not self.turns_mean >= 1:
            bad("turns_mean", "must be >= 1")
        if not self.rate > 0:
            bad("rate", "must be > 0")
        if self.arrival not in ("poisson", "bursty"):
            bad("arrival", "poisson or bursty")
        if not self.burst_factor >= 1:
            bad("burst_factor", "must be >= 1")
        if not self.burst_period_s > 0:
            bad("burst_period_s", "must be > 0")
        return self


def make_config(**structure) -> SynthConfig:
    """A validated SynthConfig; an unknown option name lists the valid ones."""
    names = {f.name for f in dataclasses.fields(SynthConfig)}
    unknown = sorted(set(structure) - names)
    if unknown:
        raise ConfigError(f"unknown synth option {unknown[0]!r}", field=unknown[0],
                          hint="valid options: " + ", ".join(sorted(names | {"block_size"})))
    return SynthConfig(**structure).validate()


@dataclass(eq=False)
class Workload:
    """One synthetic workload, format-free: per-request arrays plus segment content (CSR)."""
    config: SynthConfig
    seed: int
    ts: np.ndarray          # float64 seconds, first request at 0, non-decreasing
    input_len: np.ndarray   # int64 tokens
    output_len: np.ndarray  # int64 tokens
    session: np.ndarray     # int64 session index (0, 1, ... in order of first request)
    turn: np.ndarray        # int64, 1-based
    parent: np.ndarray      # int64 request index of the session's previous turn, -1 for none
    type: np.ndarray        # int8 index into TYPES
    seg_offsets: np.ndarray  # int64 (n_requests + 1): request r's segments are seg_*[o[r]:o[r+1]]
    seg_ids: np.ndarray     # uint64 segment ids (kind in the top bits)
    seg_lens: np.ndarray    # int64 tokens per segment

    @property
    def n_requests(self) -> int:
        return int(self.ts.shape[0])

    def block_hashes(self, block_size: int) -> tuple[np.ndarray, np.ndarray]:
        """Per-block content hashes (uint64, not chained, last partial block included), CSR."""
        return _piece_block_hashes(self.seg_offsets, self.seg_ids, self.seg_lens, np.int64(block_size))

    def tokens(self) -> tuple[np.ndarray, np.ndarray]:
        """Materialised token ids (int64) and their CSR offsets (small traces only)."""
        return _materialise_tokens(self.seg_offsets, self.seg_ids, self.seg_lens,
                                   np.uint64(self.config.vocab))


# ---- kernels --------------------------------------------------------------------------------

@nb.njit(cache=True)
def _heap_push(keys, vals, size, key, val):
    i = size
    keys[i] = key
    vals[i] = val
    while i > 0:
        p = (i - 1) >> 1
        if keys[p] < keys[i] or (keys[p] == keys[i] and vals[p] <= vals[i]):
            break
        keys[p], keys[i] = keys[i], keys[p]
        vals[p], vals[i] = vals[i], vals[p]
        i = p
    return size + 1


@nb.njit(cache=True)
def _heap_pop(keys, vals, size):
    size -= 1
    keys[0] = keys[size]
    vals[0] = vals[size]
    i = 0
    while True:
        l = 2 * i + 1
        if l >= size:
            break
        c = l
        r = l + 1
        if r < size and (keys[r] < keys[l] or (keys[r] == keys[l] and vals[r] < vals[l])):
            c = r
        if keys[i] < keys[c] or (keys[i] == keys[c] and vals[i] <= vals[c]):
            break
        keys[c], keys[i] = keys[i], keys[c]
        vals[c], vals[i] = vals[i], vals[c]
        i = c
    return size


@nb.njit(cache=True)
def _simulate_sessions(arrivals, user_len, out_len, image_len, search_len, u_continue, think, p_continue,
                       sess_type, sess_base_len, max_context):
    """Assign each arrival to a session turn (the longest-ready waiting session, else a new one)
    and grow each session's context. Per-session draws are indexed by session number."""
    n = arrivals.shape[0]
    session = np.empty(n, np.int64)
    turn = np.empty(n, np.int64)
    parent = np.full(n, -1, np.int64)
    input_len = np.empty(n, np.int64)
    user_eff = np.empty(n, np.int64)
    heap_t = np.empty(n, np.float64)
    heap_r = np.empty(n, np.int64)  # waiting session, named by its last request
    size = 0
    n_sessions = 0
    for i in range(n):
        t = arrivals[i]
        found = False
        while size > 0 and heap_t[0] <= t:
            prev = heap_r[0]
            size = _heap_pop(heap_t, heap_r, size)
            s = session[prev]
            extra = search_len[i] if sess_type[s] == 3 else 0  # search: fresh results every turn
            u = user_len[i] + extra
            if input_len[prev] + out_len[prev] + u <= max_context:
                found = True
                session[i] = s
                turn[i] = turn[prev] + 1
                parent[i] = prev
                user_eff[i] = u
                input_len[i] = input_len[prev] + out_len[prev] + u
                break
            # this session's context is full: it ends; try the next waiting one
        if not found:
            s = n_sessions
            n_sessions += 1
            session[i] = s
            turn[i] = 1
            extra = image_len[i] if sess_type[s] == 2 else (search_len[i] if sess_type[s] == 3 else 0)
            user_eff[i] = max(1, min(user_len[i] + extra, max_context - sess_base_len[s]))
            input_len[i] = sess_base_len[s] + user_eff[i]
        if u_continue[i] < p_continue:
            size = _heap_push(heap_t, heap_r, size, t + think[i], i)
    return session, turn, parent, input_len, user_eff, n_sessions


@nb.njit(cache=True, inline="always")
def _segment_id(kind, x):
    return (np.uint64(kind) << np.uint64(_KIND_SHIFT)) | np.uint64(x)


@nb.njit(cache=True)
def _build_segments(session, turn, parent, user_eff, out_len, sess_prompt, sess_doc,
                    prompt_len, doc_len):
    """Segment CSR: [system prompt, document?, u_1, o_1, ..., u_{t-1}, o_{t-1}, u_t]."""
    n = session.shape[0]
    off = np.zeros(n + 1, np.int64)
    for i in range(n):
        nbase = 1 + (1 if sess_doc[session[i]] >= 0 else 0)
        off[i + 1] = off[i] + nbase + 2 * (turn[i] - 1) + 1
    ids = np.empty(off[n], np.uint64)
    lens = np.empty(off[n], np.int64)
    for i in range(n):
        s = session[i]
        k = off[i]
        p = sess_prompt[s]
        ids[k] = _segment_id(_SYS, p)
        lens[k] = prompt_len[p]
        k += 1
        d = sess_doc[s]
        if d >= 0:
            ids[k] = _segment_id(_DOC, d)
            lens[k] = doc_len[d]
        # walk the session backwards from this request, filling from the end
        k = off[i + 1] - 1
        ids[k] = _segment_id(_USER, i)
        lens[k] = user_eff[i]
        r = parent[i]
        while r >= 0:
            k -= 1
            ids[k] = _segment_id(_OUT, r)
            lens[k] = out_len[r]
            k -= 1
            ids[k] = _segment_id(_USER, r)
            lens[k] = user_eff[r]
            r = parent[r]
    return off, ids, lens


@nb.njit(cache=True)
def _csr_offsets(counts):
    """CSR offsets (n + 1) of rows holding ``counts`` items."""
    off = np.zeros(counts.shape[0] + 1, np.int64)
    off[1:] = np.cumsum(counts)
    return off


@nb.njit(cache=True)
def _request_tokens(seg_off, seg_lens):
    """Input tokens of each request: the sum of its segments' lengths."""
    n = seg_off.shape[0] - 1
    total = np.zeros(n, np.int64)
    for r in range(n):
        for k in range(seg_off[r], seg_off[r + 1]):
            total[r] += seg_lens[k]
    return total


@nb.njit(cache=True)
def _piece_block_hashes(seg_off, seg_ids, seg_lens, block_size):
    """Content hash of every block (last partial block included) from the segment pieces it
    covers: a piece (segment, offset, length) names exactly its tokens."""
    n = seg_off.shape[0] - 1
    out_off = _csr_offsets((_request_tokens(seg_off, seg_lens) + block_size - 1) // block_size)
    out = np.empty(out_off[n], np.uint64)
    for r in range(n):
        j = out_off[r]
        c = CONTENT_SEED
        filled = 0
        for k in range(seg_off[r], seg_off[r + 1]):
            sid = seg_ids[k]
            length = seg_lens[k]
            pos = 0
            while pos < length:
                take = min(length - pos, block_size - filled)
                c = combine(combine(combine(c, sid), np.uint64(pos)), np.uint64(take))
                filled += take
                pos += take
                if filled == block_size:
                    out[j] = combine(c, np.uint64(filled))
                    j += 1
                    c = CONTENT_SEED
                    filled = 0
        if filled > 0:
            out[j] = combine(c, np.uint64(filled))
    return out, out_off


@nb.njit(cache=True)
def _materialise_tokens(seg_off, seg_ids, seg_lens, vocab):
    n = seg_off.shape[0] - 1
    tok_off = _csr_offsets(_request_tokens(seg_off, seg_lens))
    tokens = np.empty(tok_off[n], np.int64)
    for r in range(n):
        j = tok_off[r]
        for k in range(seg_off[r], seg_off[r + 1]):
            sid = seg_ids[k]
            for p in range(seg_lens[k]):
                tokens[j] = np.int64(combine(sid, np.uint64(p)) % vocab)
                j += 1
    return tokens, tok_off


# ---- generation -----------------------------------------------------------------------------

def _lognormal_int(rng, mean, n, sigma):
    """Positive integer lengths with the given mean (lognormal, clipped to >= 1)."""
    if mean <= 0:
        return np.zeros(n, np.int64)
    mu = np.log(mean) - sigma * sigma / 2
    return np.maximum(1, np.rint(rng.lognormal(mu, sigma, n))).astype(np.int64)


def _zipf_choice(rng, n_items, alpha, size):
    """Item indices 0..n_items-1 with P(i) ∝ (i+1)^-alpha (item 0 most popular)."""
    p = np.arange(1, n_items + 1, dtype=np.float64) ** -alpha
    return rng.choice(n_items, size=size, p=p / p.sum()).astype(np.int64)


def _arrivals(rng, cfg: SynthConfig, n: int) -> np.ndarray:
    """n arrival times (s) from a Poisson or on/off Markov-modulated Poisson process, from 0."""
    if cfg.arrival == "poisson":
        t = np.cumsum(rng.exponential(1.0 / cfg.rate, n))
        return t - t[0]
    # On/off: on share f = 1/burst_factor at rate rate*burst_factor, off silent; exponential
    # state durations with mean cycle burst_period_s. Draw enough cycles, then thin to n.
    f = 1.0 / cfg.burst_factor
    on_rate = cfg.rate * cfg.burst_factor
    times = []
    got = 0
    t0 = 0.0
    while got < n:
        cycles = max(16, int(1.5 * (n - got) / (on_rate * f * cfg.burst_period_s)) + 16)
        on = rng.exponential(f * cfg.burst_period_s, cycles)
        off = rng.exponential((1 - f) * cfg.burst_period_s, cycles) if f < 1 else np.zeros(cycles)
        starts = t0 + np.concatenate(([0.0], np.cumsum(on + off)[:-1]))
        counts = rng.poisson(on_rate * on)
        k = int(counts.sum())
        owner = np.repeat(np.arange(cycles), counts)
        t = np.sort(starts[owner] + rng.random(k) * on[owner])
        times.append(t)
        got += k
        t0 = starts[-1] + on[-1] + off[-1]
    t = np.concatenate(times)[:n]
    return t - t[0]


def synthesize(n_requests: int = 1000, seed: int = 0, **structure) -> Workload:
    """Generate a workload (pure: the same arguments give the same arrays)."""
    cfg = make_config(**structure)
    if n_requests < 1:
        raise ConfigError(f"n_requests must be >= 1, got {n_requests}", field="requests", hint="ask for at least one request")
    n = int(n_requests)
    rng = np.random.Generator(np.random.PCG64(seed))
    arrivals = _arrivals(rng, cfg, n)
    # Per request draws.
    user_len = _lognormal_int(rng, cfg.user_tokens, n, 0.8)
    out_len = _lognormal_int(rng, cfg.output_tokens, n, 0.7)
    u_continue = rng.random(n)
    think = rng.exponential(cfg.think_time_s, n) if cfg.think_time_s > 0 else np.zeros(n)
    # Per session draws (at most n sessions).
    u_type = rng.random(n)
    sess_type = np.zeros(n, np.int8)  # text
    edges = np.cumsum([cfg.document_share, cfg.image_share, cfg.search_share])
    sess_type[u_type < edges[2]] = 3
    sess_type[u_type < edges[1]] = 2
    sess_type[u_type < edges[0]] = 1
    extra_image = _lognormal_int(rng, cfg.image_tokens, n, 0.3)
    extra_search = _lognormal_int(rng, cfg.search_tokens, n, 0.6)
    sess_prompt = _zipf_choice(rng, cfg.system_prompts, cfg.prompt_alpha, n)
    n_docs = max(cfg.documents, 1)
    sess_doc = np.where(sess_type == 1, _zipf_choice(rng, n_docs, cfg.document_alpha, n), -1).astype(np.int64)
    # Shared content leaves room for the conversation within the context limit.
    prompt_len = np.minimum(_lognormal_int(rng, cfg.system_prompt_tokens, cfg.system_prompts, 0.5),
                            max(1, cfg.max_context_tokens // 4))
    doc_len = np.minimum(_lognormal_int(rng, cfg.document_tokens, n_docs, 0.7), max(1, cfg.max_context_tokens // 2))
    sess_base = prompt_len[sess_prompt] + np.where(sess_doc >= 0, doc_len[np.maximum(sess_doc, 0)], 0)
    p_continue = 1.0 - 1.0 / cfg.turns_mean
    session, turn, parent, input_len, user_eff, _ = _simulate_sessions(
        arrivals, user_len, out_len, extra_image, extra_search, u_continue, think, p_continue, sess_type,
        sess_base.astype(np.int64), np.int64(cfg.max_context_tokens))
    seg_off, seg_ids, seg_lens = _build_segments(session, turn, parent, user_eff, out_len,
                                                 sess_prompt, sess_doc, prompt_len, doc_len)
    return Workload(config=cfg, seed=seed, ts=arrivals, input_len=input_len, output_len=out_len,
                    session=session, turn=turn, parent=parent, type=sess_type[session],
                    seg_offsets=seg_off, seg_ids=seg_ids, seg_lens=seg_lens)


def _list_column(values: np.ndarray, offsets: np.ndarray, name: str) -> pl.Series:
    """A polars List[Int64] column from CSR arrays without a Python loop."""
    import pyarrow as pa
    arr = pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(values))
    return pl.Series(name, pl.from_arrow(arr))


def records(work: Workload, format: str = "mooncake", block_size: int | None = None) -> pl.DataFrame:
    """The workload as one row per request in ``format``'s columns (docs/data-model.md, datasets README)."""
    if format not in FORMATS:
        raise ConfigError(f"unknown synth format {format!r}", field="format", hint="one of " + ", ".join(FORMATS))
    bs = DEFAULT_BLOCK_SIZE[format] if block_size is None else int(block_size)
    if bs < 1:
        raise ConfigError(f"block_size must be >= 1, got {bs}", field="block_size", hint="e.g. 512 for mooncake, 16 for bailian")
    if format == "mooncake":
        content, off = work.block_hashes(bs)
        ids, _ = dense_ids(rechain(content, off))
        return pl.DataFrame({
            "timestamp": np.rint(work.ts * 1000.0).astype(np.int64),
            "input_length": work.input_len, "output_length": work.output_len,
        }).with_columns(_list_column(ids, off, "hash_ids"))
    if format == "bailian":
        content, off = work.block_hashes(bs)
        ids, _ = dense_ids(content)  # per-block content ids, NOT chained, remapped to integers
        parent = work.parent
        return pl.DataFrame({
            "chat_id": np.arange(work.n_requests, dtype=np.int64),
            "parent_chat_id": parent,
            "timestamp": np.round(work.ts, 3),
            "input_length": work.input_len, "output_length": work.output_len,
            "type": np.asarray(TYPES)[work.type],
            "turn": work.turn,
        }).with_columns(_list_column(ids, off, "hash_ids"))
    tokens, off = work.tokens()
    return pl.DataFrame({
        "timestamp": np.round(work.ts, 3),
    }).with_columns(_list_column(tokens, off, "token_ids")).with_columns(
        pl.Series("output_length", work.output_len),
        pl.Series("session_id", work.session))


def generate(format: str = "mooncake", n_requests: int = 1000, seed: int = 0,
             block_size: int | None = None, **structure) -> pl.DataFrame:
    """Pure: the records of a synthetic trace (same arguments, same frame)."""
    return records(synthesize(n_requests, seed, **structure), format, block_size)


@dataclass(frozen=True)
class SynthSummary:
    """What ``write`` wrote: the file and the workload's size."""
    path: Path
    format: str
    block_size: int | None  # None for the tokens format (hashed at ingest)
    requests: int
    sessions: int
    blocks: int             # block ids written (mooncake/bailian) or 0
    tokens: int             # total input tokens
    duration_s: float


def write(path, format: str = "mooncake", n_requests: int = 1000, seed: int = 0,
          block_size: int | None = None, **structure) -> SynthSummary:
    """Generate and write a synthetic trace as JSONL (``.gz`` / ``.zst`` suffix compresses)."""
    path = Path(path)
    work = synthesize(n_requests, seed, **structure)
    frame = records(work, format, block_size)
    write_jsonl(frame, path)
    blocks = 0 if format == "tokens" else int(frame["hash_ids"].list.len().sum())
    return SynthSummary(path=path, format=format,
                        block_size=None if format == "tokens" else (block_size or DEFAULT_BLOCK_SIZE[format]),
                        requests=work.n_requests, sessions=int(work.session.max()) + 1, blocks=blocks,
                        tokens=int(work.input_len.sum()), duration_s=float(work.ts[-1]))


def write_trace(path, format: str = "mooncake", n_requests: int = 1000, seed: int = 0,
                block_size: int | None = None, **structure) -> Path:
    """Write a synthetic trace as JSONL (``.jsonl``; ``.gz`` / ``.zst`` suffix compresses);
    ``structure`` takes the fields of ``SynthConfig``. Returns the path."""
    return write(path, format, n_requests, seed, block_size, **structure).path


def write_jsonl(frame: pl.DataFrame, path: Path) -> None:
    """One JSON object per row, compressed by suffix (.gz, .zst)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() not in (".gz", ".zst"):
        frame.write_ndjson(path)
        return
    buf = io.BytesIO()
    frame.write_ndjson(buf)
    write_jsonl_bytes(buf.getvalue(), path)


def write_jsonl_bytes(data: bytes, path: Path) -> None:
    """JSON-lines text written as is, or compressed by suffix (.gz, .zst) reproducibly."""
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix not in (".gz", ".zst"):
        path.write_bytes(data)
    elif suffix == ".gz":
        # no name, mtime=0: the same trace gives the same bytes
        with open(path, "wb") as fh, gzip.GzipFile(filename="", fileobj=fh, mode="wb", compresslevel=6,
                                                   mtime=0) as gz:
            gz.write(data)
    else:
        import zstandard
        path.write_bytes(zstandard.ZstdCompressor(level=3).compress(data))
