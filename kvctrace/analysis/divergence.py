"""Why requests miss the prefix cache: where each request's prompt diverges from everything
sent before it (``kvctrace.kernels.divergence``).

Definitions:
* For every request after the first, its **shared prefix** is the longest prefix it shares with
  any earlier request, and its **match** is the *earliest* earlier request sharing that much
  (the request that first sent that prefix; -1 when nothing is shared). The **divergence point**
  is the first unshared token (offset = shared tokens), in block ``offset // block_size``, and,
  for chat logs, in the message whose start offset is the last one at or before it (its index
  and role). A request whose whole prompt is a prefix of earlier content has no divergence point.
* Level ``token`` when the store keeps the requests' tokens (text formats): the shared prefix is
  exact to the token. Level ``block`` otherwise (hashed traces): the shared prefix is the leading
  run of blocks seen before, in tokens as the reuse analysis counts prefix hits, and the divergence
  point is the first unshared block. Both rely on chained ids (a block id names its whole
  prefix), which every reader produces.
* ``prefix_hit_tokens`` (the model's predicted hit with an unlimited cache) is the reuse
  analysis's per-request prefix hit in tokens: shared blocks only, the last partial block
  counting its real tokens. The token level can exceed it by the tokens shared inside the first
  unshared block, which a block cache cannot serve.
* Sites: requests that diverge at the same place, grouped by (message index, role, block of the
  offset inside the message) for chat logs, by divergence block otherwise. ``tokens_lost`` of a
  site = prompt tokens after the divergence point summed over its requests (prefilled again).
* Predicted vs reported (``reported_cache``, when requests carry the server's ``cached_tokens``):
  ``prefix_hit_tokens`` against ``cached_tokens`` per request: totals, Pearson correlation, and
  the requests where they differ most. A real server has finite memory and its own timing, so
  the prediction is an upper bound; large gaps the other way point at a mismatch in block size,
  tokenizer or chat template.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from ..errors import ConfigError
from ..formats.common import list_column
from ..kernels.divergence import block_divergence, gather_windows, scatter_windows, token_divergence
from ..results import ResultMixin
from ..trace import Trace
from .access import require_block_ids
from .columns import null_below_zero
from .divergence_text import describe_sites, headline, request_columns

MATCH_RULE = "earliest earlier request sharing the longest prefix"
TOP_DISAGREEMENTS = 10


@dataclass(frozen=True)
class DivergenceResult(ResultMixin):
    """Per-request divergence points, their clusters (sites) and the headline."""
    level: str                          # "token" or "block"
    block_size: int
    requests: pl.DataFrame = field(repr=False)   # one row per request (see analyze_divergence)
    sites: pl.DataFrame = field(repr=False)      # one row per site, most requests first
    top_sites: list = field(default_factory=list)  # the first sites with an example each
    headline: str = ""
    decoding: str | None = None         # how snippets show tokens: tokenizer, bytes, token ids
    reported_cache: dict | None = None
    disagreements: pl.DataFrame | None = field(repr=False, default=None)

    def summary(self) -> dict:
        req = self.requests.slice(1)  # every request after the first (rows are in req_id order: a view)
        div = req.select("divergence_token", "divergence_block", "tokens_after", "role", "message_index") \
            .filter(pl.col("divergence_token").is_not_null())
        n, n_div = req.height, div.height
        input_total = int(req["input_len"].sum()) if n else 0
        out = {
            "level": self.level, "match_rule": MATCH_RULE, "headline": self.headline,
            "requests": n, "requests_diverging": n_div,
            "requests_fully_shared": n - n_div,
            "requests_sharing_nothing": int((req["shared_tokens"] == 0).sum()) if n else 0,
            "requests_extending_earlier": int(req["extends_earlier"].sum()) if n else 0,
            "shared_tokens_share_of_input": (float(req["shared_tokens"].sum()) / input_total) if input_total else None,
            "shared_tokens_mean": float(req["shared_tokens"].mean()) if n else None,
            "tokens_lost_total": int(div["tokens_after"].sum()) if n_div else 0,
            "divergence_block_p50": _quantile(div, "divergence_block", 0.5),
            "divergence_block_p90": _quantile(div, "divergence_block", 0.9),
            "by_block_depth": _depth_bins(div["divergence_block"].to_numpy() if n_div else np.zeros(0, np.int64)),
            "by_role": _shares(div, "role"),
            "by_message_index": _shares(div, "message_index"),
            "top_sites": list(self.top_sites),
            "snippet_decoding": self.decoding,
            "reported_cache": self.reported_cache,
        }
        return out


def _quantile(frame: pl.DataFrame, column: str, q: float):
    return float(frame[column].quantile(q, interpolation="linear")) if frame.height else None


def _shares(div: pl.DataFrame, column: str) -> dict | None:
    """Share of diverging requests per value of ``column`` (None when no request has one)."""
    if not div.height or div[column].null_count() == div.height:
        return None
    counts = div.group_by(column).len().sort(["len", column], descending=[True, False], nulls_last=True)
    return {("none" if v is None else str(v)): c / div.height for v, c in counts.iter_rows()}


def _depth_bins(blocks: np.ndarray) -> list:
    """Diverging requests per divergence block in log2 bins: [0,1), [1,2), [2,4), ..."""
    if blocks.shape[0] == 0:
        return []
    edges = [0, 1]
    while edges[-1] <= int(blocks.max()):
        edges.append(edges[-1] * 2)
    counts = np.histogram(blocks, bins=edges)[0]
    return [{"block_lo": lo, "block_hi": hi, "requests": int(c)}
            for lo, hi, c in zip(edges[:-1], edges[1:], counts) if c]


# ---- reading the store ------------------------------------------------------------------------

def _token_counts(trace: Trace, columns: set) -> np.ndarray | None:
    """Tokens per request when the store keeps every request's tokens, else None."""
    if "tokens" not in columns or trace.n_requests == 0:
        return None
    if _has_nulls(trace, "tokens"):  # a hashed trace: no request keeps its tokens
        return None
    frame = trace.request_sql("SELECT req_id, len(tokens) AS n FROM requests")  # no ORDER BY: placed by req_id
    if frame["n"].null_count():
        return None
    counts = np.empty(trace.n_requests, np.int64)
    counts[frame["req_id"].to_numpy()] = frame["n"].to_numpy()
    return counts


def _stored_prefix(trace: Trace, columns: set):
    """(shared tokens, match) per request as the store computed them at ingest (text traces,
    ``store._prefix_columns``; there every request's token count is its ``input_len``), or None."""
    if not {"prefix_shared_tokens", "prefix_match_req"} <= columns or trace.n_requests == 0:
        return None
    if _has_nulls(trace, "prefix_shared_tokens", "prefix_match_req"):
        return None
    frame = trace.request_sql("SELECT req_id, prefix_shared_tokens AS s, prefix_match_req AS m FROM requests")
    if frame["s"].null_count() or frame["m"].null_count():
        return None
    order = np.argsort(frame["req_id"].to_numpy(), kind="stable")
    return frame["s"].to_numpy()[order].astype(np.int64), frame["m"].to_numpy()[order].astype(np.int64)


def _all_null(trace: Trace, column: str) -> bool:
    """Whether no request has a value in ``column`` (a trace without chat messages, say)."""
    return trace.request_sql(f"SELECT count({column}) AS n FROM requests")["n"][0] == 0  # noqa: S608 - a constant


def _has_nulls(trace: Trace, *columns: str) -> bool:
    """Whether any request has a NULL in one of ``columns`` (one aggregate, not the column)."""
    counts = ", ".join(f"count({c})" for c in columns)  # names are our constants
    return any(n < trace.n_requests for n in trace.request_sql(f"SELECT {counts} FROM requests").row(0))  # noqa: S608


WINDOW_BATCH_TOKENS = 1 << 22  # about this many tokens are read from the store at a time


def store_windows(trace: Trace, n_tokens: np.ndarray):
    """A ``fetch_windows`` that streams the requests' tokens from the store once, in record
    batches of about ``WINDOW_BATCH_TOKENS`` tokens (memory stays bounded), and keeps only the
    windows. Rows are read in stored order without ORDER BY (sorting token lists costs more
    than reading them); each batch names its requests."""
    def fetch(req, start, length):
        woff = np.zeros(req.shape[0] + 1, np.int64)
        np.cumsum(length, out=woff[1:])
        out = np.empty(int(woff[-1]), np.int64)
        row_of = np.full(max(trace.n_requests, 1), -1, np.int64)
        rows = max(1, int(WINDOW_BATCH_TOKENS // max(1.0, float(n_tokens.mean()) if n_tokens.shape[0] else 1.0)))
        with trace.sql_lock:  # the connection streams to this thread until the read ends
            reader = trace.connection(all_tables=False).sql("SELECT req_id, tokens FROM requests").to_arrow_reader(
                batch_size=rows)
            for batch in reader:
                ids = batch.column(0).to_numpy()
                row_of[ids] = np.arange(ids.shape[0])
                pick = np.flatnonzero(row_of[req] >= 0)
                if pick.shape[0]:
                    values, offsets = list_column(pl.from_arrow(batch.column(1)))
                    wtok, wlen = gather_windows(values, offsets)(row_of[req[pick]], start[pick], length[pick])
                    scatter_windows(out, woff, pick, wtok, wlen)
                row_of[ids] = -1
        return out, woff
    return fetch


def _messages(trace: Trace, columns: set, token: np.ndarray) -> tuple:
    """(message index, role, message start) of each request's token offset ``token`` (-1 = none):
    the last message starting at or before it. Nulls when the store has no messages."""
    n = trace.n_requests
    if not {"msg_offsets", "msg_roles"} <= columns or _all_null(trace, "msg_offsets"):
        return None, None, None
    frame = trace.request_sql("SELECT msg_offsets, msg_roles FROM requests ORDER BY req_id")
    counts = frame["msg_offsets"].list.len().fill_null(0).to_numpy().astype(np.int64)
    starts = frame["msg_offsets"].explode().drop_nulls().to_numpy().astype(np.int64)
    roles = frame["msg_roles"].explode().drop_nulls().to_list()
    first = np.concatenate(([0], np.cumsum(counts)))
    # one sorted key space: request r's offsets shifted past every earlier request's
    span = np.maximum(trace.input_len, 0) + 1
    base = np.concatenate(([0], np.cumsum(span)))[:-1]
    keys = np.repeat(base, counts) + starts
    pos = np.searchsorted(keys, base + np.maximum(token, 0), side="right") - 1
    ok = (token >= 0) & (counts > 0) & (pos >= first[:-1])
    index = np.where(ok, pos - first[:-1], -1)
    role = [roles[p] if k else None for p, k in zip(pos.tolist(), ok.tolist())]
    msg_start = np.where(ok, starts[np.clip(pos, 0, max(starts.shape[0] - 1, 0))] if starts.shape[0] else 0, -1)
    return index, role, msg_start


# ---- the analysis -----------------------------------------------------------------------------

def divergence_points(trace: Trace, columns: set | None = None) -> tuple[str, pl.DataFrame]:
    """(level, per-request frame) of ``trace``: req_id, input_len, n_blocks, shared_blocks,
    prefix_hit_tokens, shared_tokens, match_req, divergence_token (null when the whole prompt is
    shared), divergence_block, tokens_after, extends_earlier (an earlier request's whole block
    list is the shared prefix), message_index, role, message_start. The block ids are read a
    chunk of requests at a time (``Trace.access_chunks``: one pass, and one more at the token
    level when the store keeps tokens but not their shared prefixes)."""
    columns = request_columns(trace) if columns is None else columns
    bs = int(trace.block_size)
    block = block_divergence(trace.access_chunks, int(trace.n_unique_blocks), trace.input_len, bs)
    stored = _stored_prefix(trace, columns)
    n_tokens = _token_counts(trace, columns) if stored is None else None
    if stored is not None:
        level, (shared, match), total = "token", stored, np.asarray(trace.input_len, np.int64)
    elif n_tokens is not None:
        level = "token"
        shared, match = token_divergence(trace.access_chunks, trace.offsets, n_tokens, bs, block,
                                         store_windows(trace, n_tokens))
        total = n_tokens
    else:
        level = "block"
        shared, match, total = block["shared_tokens"], block["match_req"], np.asarray(trace.input_len, np.int64)
    req_id, n_blocks = trace.request_columns()  # shared with the other per-request frames
    if level == "token":
        diverges = shared < total
        div_token = np.where(diverges, shared, -1)
    else:
        diverges = block["shared_blocks"] < n_blocks
        div_token = np.where(diverges, block["shared_blocks"].astype(np.int64) * bs, -1)
    div_block = np.where(diverges, div_token // bs, -1)
    index, role, msg_start = _messages(trace, columns, div_token)
    n = trace.n_requests
    return level, pl.DataFrame({
        "req_id": req_id, "input_len": np.asarray(trace.input_len, np.int64),
        "n_blocks": n_blocks, "shared_blocks": block["shared_blocks"],
        "prefix_hit_tokens": block["shared_tokens"], "shared_tokens": shared, "match_req": match,
        "divergence_token": null_below_zero(div_token, n), "divergence_block": null_below_zero(div_block, n),
        "tokens_after": np.where(diverges, np.maximum(total - shared, 0), 0),
        "extends_earlier": block["extends"] & diverges,
        "message_index": null_below_zero(index, n),
        "role": pl.Series("role", role, dtype=pl.String) if role is not None else pl.repeat(None, n, dtype=pl.String, eager=True),
        "message_start": null_below_zero(msg_start, n)})


def divergence_sites(requests: pl.DataFrame, block_size: int) -> pl.DataFrame:
    """Clusters of requests (after the first) diverging at the same place, most requests first
    (``requests``: ``divergence_points``'s frame, one row per request in req_id order):
    site, role, message_index, token_offset (median), offset_in_message (median), block, requests,
    share (of the requests after the first), tokens_lost, example_req (the first request),
    example_match."""
    analysed = requests.slice(1)  # the requests after the first (rows in req_id order: a view)
    div = (analysed.select("req_id", "match_req", "divergence_token", "divergence_block", "tokens_after",
                           "message_index", "role", "message_start")
           .filter(pl.col("divergence_token").is_not_null())
           .with_columns((pl.col("divergence_token") - pl.col("message_start")).alias("offset_in_message")))
    key = pl.when(pl.col("message_index").is_not_null()).then(pl.col("offset_in_message") // block_size) \
        .otherwise(pl.col("divergence_block")).alias("key_block")
    sites = (div.with_columns(key).group_by("message_index", "role", "key_block")
             .agg(pl.len().alias("requests"), pl.col("tokens_after").sum().alias("tokens_lost"),
                  pl.col("divergence_token").median().round(0).cast(pl.Int64).alias("token_offset"),
                  pl.col("offset_in_message").median().round(0).cast(pl.Int64).alias("offset_in_message"),
                  pl.col("divergence_block").min().alias("block"),
                  pl.col("req_id").min().alias("example_req"),
                  pl.col("match_req").sort_by("req_id").first().alias("example_match"))
             .with_columns((pl.col("requests") / max(analysed.height, 1)).alias("share"))
             .sort(["requests", "tokens_lost", "example_req"], descending=[True, True, False]))
    return sites.with_row_index("site").select(
        "site", "role", "message_index", "token_offset", "offset_in_message", "block", "requests", "share",
        "tokens_lost", "example_req", "example_match")


def reported_cache(requests: pl.DataFrame, cached: pl.Series | None, top: int = TOP_DISAGREEMENTS):
    """(summary dict, disagreement frame) of predicted (``prefix_hit_tokens``) vs reported
    (``cached``) cached prompt tokens over the requests that report it; (None, None) if none do."""
    if cached is None or cached.null_count() == cached.len():
        return None, None
    both = requests.select("req_id", pl.col("prefix_hit_tokens").alias("predicted")).with_columns(
        cached.cast(pl.Int64).alias("reported")).drop_nulls("reported")
    pred = both["predicted"].to_numpy().astype(np.float64)
    rep = both["reported"].to_numpy().astype(np.float64)
    pearson = float(np.corrcoef(pred, rep)[0, 1]) if pred.shape[0] > 1 and pred.std() > 0 and rep.std() > 0 else None
    diff = both.with_columns((pl.col("predicted") - pl.col("reported")).alias("difference"))
    worst = diff.with_columns(pl.col("difference").abs().alias("_abs")).sort(
        ["_abs", "req_id"], descending=[True, False]).head(top).drop("_abs")
    summary = {
        "requests": both.height, "predicted_tokens_total": int(pred.sum()), "reported_tokens_total": int(rep.sum()),
        "predicted_over_reported": float(pred.sum() / rep.sum()) if rep.sum() else None,
        "pearson_r": pearson, "mean_abs_difference_tokens": float(np.abs(pred - rep).mean()),
        "requests_predicted_above_reported": int((pred > rep).sum()),
        "requests_reported_above_predicted": int((rep > pred).sum()),
        "top_disagreements": worst.to_dicts(),
    }
    return summary, worst


def analyze_divergence(trace: Trace, *, top_sites: int = 10, context_tokens: int = 24) -> DivergenceResult:
    """Where each request diverges from every earlier request, clustered into sites, with a
    headline a user can act on (see the module docstring for the definitions).

    ``top_sites``: sites described with an example (snippets of both sides for text traces);
    ``context_tokens``: tokens of context decoded on each side of a divergence point."""
    require_block_ids(trace, "prefix divergence")
    if top_sites < 1 or context_tokens < 1:
        raise ConfigError("top_sites and context_tokens must be >= 1",
                          field="top_sites" if top_sites < 1 else "context_tokens")
    columns = request_columns(trace)
    level, requests = divergence_points(trace, columns)
    sites = divergence_sites(requests, int(trace.block_size))
    described, decoding = describe_sites(trace, requests, sites.head(top_sites), level == "token",
                                         context_tokens)
    cached = (trace.request_sql("SELECT cached_tokens FROM requests ORDER BY req_id")["cached_tokens"]
              if "cached_tokens" in columns else None)
    reported, worst = reported_cache(requests, cached)
    return DivergenceResult(level=level, block_size=int(trace.block_size), requests=requests, sites=sites,
                            top_sites=described, headline=headline(requests, described, level, int(trace.block_size)),
                            decoding=decoding, reported_cache=reported, disagreements=worst)
