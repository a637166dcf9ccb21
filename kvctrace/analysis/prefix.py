"""Prefix structure: shared-prefix groups (system prompts, conversation histories), the shape
of the prefix tree, and sharing within vs across sessions.

Definitions (tree and groups: ``kvctrace.kernels.prefix``; the tree itself is the store's
``blocks`` table, built once at ingest and read here with ``tables.read_tree``):
* shared-prefix group = a maximal shared prefix: the prefix ending at node v, shared by the
  ``n_requests`` >= 2 requests that pass through v, and not extendable without losing one.
  ``prefix_tokens`` = tokens from the root to v (a partial last block counts its real tokens
  when the trace has input lengths). Two readings of reusable tokens, both reported:
  ``reusable_tokens`` = (n_requests - 1) * prefix_tokens: what the group's later requests can
  take from an unlimited cache, the group alone; ``exclusive_reusable_tokens`` =
  (n_requests - 1) * segment_tokens, counting only the part beyond the nearest enclosing group,
  so that the column sums, over all groups, to the trace's total reusable prefix tokens.
  ``top_level`` groups have no enclosing group: the longest prefix common to every request
  that starts with the same first block (e.g. a system prompt).
* tree: nodes = distinct blocks; fan-out of a node = its children; roots = distinct first
  blocks; leaves = nodes without children; depth = position (0 = first block).
* sessions (when requests have session ids): every re-access (an access that is not the
  block's first in the trace) is *within* its session when the block's first access was in
  the same session (reading ``by_first``), or when the block's previous access was
  (``by_previous``); otherwise *across* sessions; *unknown* if either request has no session.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from ..kernels.prefix import PrefixTree, prefix_groups, session_reuse
from ..tables import read_tree
from .access import require_block_ids
from ..results import ResultMixin as SummaryHtmlMixin  # summary() -> to_json, Jupyter rendering


@dataclass(frozen=True)
class PrefixResult(SummaryHtmlMixin):
    groups: pl.DataFrame          # one row per maximal shared prefix, largest first
    depth_distribution: pl.DataFrame   # depth, nodes
    fanout_distribution: pl.DataFrame  # fanout, nodes
    session_sharing: pl.DataFrame | None  # reading, within, across, unknown, within_share
    tree: dict                    # scalar tree statistics
    groups_summary: dict
    sessions: dict | None

    def summary(self) -> dict:
        out = {"tree": dict(self.tree), "groups": dict(self.groups_summary)}
        out["sessions"] = dict(self.sessions) if self.sessions is not None else None
        return out


def _value_counts(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """np.unique(values, return_counts=True) for small non-negative integers, without
    np.unique's sorted copy of the (one per node) input: bincount a slice at a time (it
    widens int32 input to int64)."""
    counts = np.zeros(int(values.max()) + 1 if values.shape[0] else 0, np.int64)
    for lo in range(0, values.shape[0], 1 << 20):
        piece = np.bincount(values[lo:lo + (1 << 20)])
        counts[:piece.shape[0]] += piece
    present = np.flatnonzero(counts)
    return present, counts[present]


def _session_codes(trace) -> np.ndarray | None:
    s = trace.request_sql("SELECT session_id FROM requests ORDER BY req_id")["session_id"]
    if s.null_count() == s.len():
        return None
    codes = s.cast(pl.String).rank("dense") - 1
    return codes.fill_null(-1).cast(pl.Int64).to_numpy()


def prefix_tree_of(trace) -> PrefixTree:
    """The trace's prefix tree (the store's ``blocks`` table) with its shared-prefix groups."""
    tree = read_tree(trace.con, int(trace.n_unique_blocks))
    return prefix_groups(trace.offsets, trace.blocks, **tree)


def _groups_frame(t: PrefixTree) -> pl.DataFrame:
    """One row per maximal shared prefix, largest first."""
    idx = np.flatnonzero(t.shared)
    seg_blocks, seg_tokens = t.segments(idx)
    n_req = t.n_requests[idx].astype(np.int64)   # the tree's node arrays are int32
    return pl.DataFrame({
        "node": idx.astype(np.int64), "root": t.root[idx].astype(np.int64),
        "prefix_blocks": t.depth[idx].astype(np.int64) + 1,
        "prefix_tokens": t.cum_tokens[idx].astype(np.int64),
        "n_requests": n_req, "n_ending": t.n_ending[idx].astype(np.int64),
        "n_children": t.n_children[idx].astype(np.int64),
        "segment_blocks": seg_blocks, "segment_tokens": seg_tokens,
        "reusable_tokens": (n_req - 1) * t.cum_tokens[idx],
        "exclusive_reusable_tokens": (n_req - 1) * seg_tokens,
        "exclusive_reusable_blocks": (n_req - 1) * seg_blocks,
        "first_req": t.first_req[idx].astype(np.int64), "top_level": t.shared_anc[idx] < 0,
    }).sort(["n_requests", "prefix_tokens", "node"], descending=[True, True, False])


def _groups_summary(trace, t: PrefixTree, groups: pl.DataFrame) -> dict:
    offsets, blocks = trace.offsets, trace.blocks
    total_input_tokens = int(trace.input_len.sum()) if _has_input_len(trace) else None
    top = groups.filter(pl.col("top_level"))
    first_blocks = blocks[offsets[:-1][np.diff(offsets) > 0]]
    n_nonempty = int(first_blocks.shape[0])
    exclusive_total = int(groups["exclusive_reusable_tokens"].sum()) if groups.height else 0
    return {
        "shared_prefix_groups": groups.height,
        "top_level_groups": top.height,
        "largest_group_requests": int(groups["n_requests"].max()) if groups.height else 0,
        "largest_group_prefix_tokens": int(groups["prefix_tokens"][0]) if groups.height else None,
        "largest_top_level_group_requests": int(top["n_requests"][0]) if top.height else 0,
        "largest_top_level_group_prefix_tokens": int(top["prefix_tokens"][0]) if top.height else None,
        "requests_starting_with_shared_prefix_share":
            float((t.n_requests[first_blocks] >= 2).mean()) if n_nonempty else None,
        "reusable_prefix_tokens_total": exclusive_total,
        "reusable_prefix_tokens_share_of_input":
            exclusive_total / total_input_tokens if total_input_tokens else None,
    }


def _has_input_len(trace) -> bool:
    return trace.input_len is not None and trace.input_len.shape[0] == trace.n_requests


def _tree_shape(t: PrefixTree, u: int) -> tuple[dict, pl.DataFrame, pl.DataFrame]:
    """Scalar tree statistics and the depth and fan-out distributions."""
    leaves = t.n_children == 0
    internal = ~leaves
    depths, dcount = _value_counts(t.depth)
    fanouts, fcount = _value_counts(t.n_children)
    roots = int((t.parent < 0).sum())
    tree = {
        "nodes": u, "roots": roots, "leaves": int(leaves.sum()), "internal_nodes": int(internal.sum()),
        "max_depth": int(t.depth.max()) if u else None,
        "mean_depth": float(t.depth.mean()) if u else None,
        "mean_fanout_internal": float(t.n_children[internal].mean()) if internal.any() else None,
        "max_fanout": int(t.n_children.max()) if u else None,
        "branching_nodes": int((t.n_children >= 2).sum()),
    }
    return (tree,
            pl.DataFrame({"depth": depths.astype(np.int64), "nodes": dcount.astype(np.int64)}),
            pl.DataFrame({"fanout": fanouts.astype(np.int64), "nodes": fcount.astype(np.int64)}))


def _session_sharing(trace, u: int) -> tuple[pl.DataFrame | None, dict | None]:
    """Re-accesses within vs across sessions (both readings), or (None, None) without sessions."""
    codes = _session_codes(trace)
    if codes is None:
        return None, None
    blocks = trace.blocks
    by_first, by_prev, multi = session_reuse(trace.offsets, blocks, u, codes)
    rows = []
    for reading, c in (("by_first", by_first), ("by_previous", by_prev)):
        known = int(c[0] + c[1])
        rows.append({"reading": reading, "within": int(c[0]), "across": int(c[1]),
                     "unknown": int(c[2]),
                     "within_share": float(c[0] / known) if known else None})
    counts = np.bincount(blocks, minlength=u)
    n_multi = int(multi.sum())
    return pl.DataFrame(rows), {
        "sessions": int(codes.max()) + 1,
        "requests_without_session": int((codes < 0).sum()),
        "reuse_within_session_share_by_first": rows[0]["within_share"],
        "reuse_within_session_share_by_previous": rows[1]["within_share"],
        "blocks_in_multiple_sessions": n_multi,
        "blocks_in_multiple_sessions_share": n_multi / u if u else None,
        "accesses_to_multi_session_blocks_share":
            float(counts[multi].sum() / blocks.shape[0]) if blocks.shape[0] else None,
    }


def analyze_prefix(trace, *, top_groups: int | None = None) -> PrefixResult:
    """Prefix structure of ``trace``; ``top_groups`` keeps only the largest groups in the
    frame (the summary always covers all of them)."""
    require_block_ids(trace, "the prefix-structure analysis")
    u = int(trace.n_unique_blocks)
    t = prefix_tree_of(trace)
    groups = _groups_frame(t)
    groups_summary = _groups_summary(trace, t, groups)
    tree, depth_distribution, fanout_distribution = _tree_shape(t, u)
    if top_groups is not None:
        groups = groups.head(int(top_groups))
    session_frame, sessions = _session_sharing(trace, u)
    return PrefixResult(groups=groups, depth_distribution=depth_distribution,
                        fanout_distribution=fanout_distribution, session_sharing=session_frame,
                        tree=tree, groups_summary=groups_summary, sessions=sessions)
