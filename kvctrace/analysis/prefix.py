"""Prefix structure: shared-prefix groups (system prompts, conversation histories), the shape
of the prefix tree, and sharing within vs across sessions.

Definitions (tree and groups: ``kvctrace.kernels.prefix``; the tree is the store's ``blocks``
table, and the analysis computes its statistics from the trace's block ids, read a chunk of
whole requests at a time, with ``prefix_structure``, which never materializes it):
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

from ..kernels.prefix import PrefixTree, prefix_groups, prefix_structure, session_reuse
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


def _session_codes(trace) -> np.ndarray | None:
    s = trace.request_sql("SELECT session_id FROM requests ORDER BY req_id")["session_id"]
    if s.null_count() == s.len():
        return None
    codes = s.cast(pl.String).rank("dense") - 1
    return codes.fill_null(-1).cast(pl.Int64).to_numpy()


def prefix_tree_of(trace) -> PrefixTree:
    """The trace's prefix tree (the store's ``blocks`` table) with its shared-prefix groups:
    every array over the blocks, for notebooks and checks (the analysis needs only
    ``kernels.prefix.prefix_structure``'s statistics and holds far less). Reads the block ids
    in chunks (``Trace.access_chunks``), but writes a trace in memory's pending tables."""
    tree = read_tree(trace.con, int(trace.n_unique_blocks))
    return prefix_groups(trace.access_chunks, trace.n_requests, **tree)


def _groups_frame(g: dict) -> pl.DataFrame:
    """One row per maximal shared prefix (``prefix_structure``'s groups), largest first (by
    requests, then prefix tokens, then node id: a total order, sorted with numpy before the
    frame is made, which is cheaper than sorting its fourteen columns)."""
    has = g["anc"] >= 0
    anc = np.maximum(g["anc"], 0)
    seg_blocks = g["depth"] - np.where(has, g["depth"][anc], -1)
    seg_tokens = g["cum_tokens"] - np.where(has, g["cum_tokens"][anc], 0)
    order = np.lexsort((g["node"], -g["cum_tokens"], -g["n_requests"]))
    g = {name: values[order] for name, values in g.items()}
    has, seg_blocks, seg_tokens = has[order], seg_blocks[order], seg_tokens[order]
    n_req = g["n_requests"]
    return pl.DataFrame({
        "node": g["node"], "root": g["root"], "prefix_blocks": g["depth"] + 1,
        "prefix_tokens": g["cum_tokens"], "n_requests": n_req, "n_ending": g["n_ending"],
        "n_children": g["n_children"], "segment_blocks": seg_blocks, "segment_tokens": seg_tokens,
        "reusable_tokens": (n_req - 1) * g["cum_tokens"],
        "exclusive_reusable_tokens": (n_req - 1) * seg_tokens,
        "exclusive_reusable_blocks": (n_req - 1) * seg_blocks,
        "first_req": g["first_req"], "top_level": ~has,
    })


def _groups_summary(trace, starting_shared: int, groups: pl.DataFrame) -> dict:
    total_input_tokens = int(trace.input_len.sum()) if _has_input_len(trace) else None
    top = groups.filter(pl.col("top_level"))
    n_nonempty = int(np.count_nonzero(np.diff(trace.offsets)))
    exclusive_total = int(groups["exclusive_reusable_tokens"].sum()) if groups.height else 0
    return {
        "shared_prefix_groups": groups.height,
        "top_level_groups": top.height,
        "largest_group_requests": int(groups["n_requests"].max()) if groups.height else 0,
        "largest_group_prefix_tokens": int(groups["prefix_tokens"][0]) if groups.height else None,
        "largest_top_level_group_requests": int(top["n_requests"][0]) if top.height else 0,
        "largest_top_level_group_prefix_tokens": int(top["prefix_tokens"][0]) if top.height else None,
        "requests_starting_with_shared_prefix_share": starting_shared / n_nonempty if n_nonempty else None,
        "reusable_prefix_tokens_total": exclusive_total,
        "reusable_prefix_tokens_share_of_input":
            exclusive_total / total_input_tokens if total_input_tokens else None,
    }


def _has_input_len(trace) -> bool:
    return trace.input_len is not None and trace.input_len.shape[0] == trace.n_requests


def _tree_shape(st: dict, u: int) -> tuple[dict, pl.DataFrame, pl.DataFrame]:
    """Scalar tree statistics and the depth and fan-out distributions."""
    depths, dcount = st["depth"]
    fanouts, fcount = st["fanout"]
    roots = int(dcount[0]) if depths.shape[0] and depths[0] == 0 else 0
    internal = u - st["leaves"]
    # the fan-outs of the internal nodes add up to the non-root nodes; depths are integers,
    # so these float means equal numpy's means over the per-node arrays exactly
    tree = {
        "nodes": u, "roots": roots, "leaves": st["leaves"], "internal_nodes": internal,
        "max_depth": int(depths[-1]) if u else None,
        "mean_depth": float(int((depths * dcount).sum()) / u) if u else None,
        "mean_fanout_internal": float((u - roots) / internal) if internal else None,
        "max_fanout": st["max_fanout"],
        "branching_nodes": st["branching"],
    }
    return (tree,
            pl.DataFrame({"depth": depths.astype(np.int64), "nodes": dcount.astype(np.int64)}),
            pl.DataFrame({"fanout": fanouts.astype(np.int64), "nodes": fcount.astype(np.int64)}))


def _session_sharing(trace, u: int) -> tuple[pl.DataFrame | None, dict | None]:
    """Re-accesses within vs across sessions (both readings), or (None, None) without sessions."""
    codes = _session_codes(trace)
    if codes is None:
        return None, None
    by_first, by_prev, multi, multi_accesses = session_reuse(trace.access_chunks, u, codes)
    rows = []
    for reading, c in (("by_first", by_first), ("by_previous", by_prev)):
        known = int(c[0] + c[1])
        rows.append({"reading": reading, "within": int(c[0]), "across": int(c[1]),
                     "unknown": int(c[2]),
                     "within_share": float(c[0] / known) if known else None})
    n_multi = int(multi.sum())
    return pl.DataFrame(rows), {
        "sessions": int(codes.max()) + 1,
        "requests_without_session": int((codes < 0).sum()),
        "reuse_within_session_share_by_first": rows[0]["within_share"],
        "reuse_within_session_share_by_previous": rows[1]["within_share"],
        "blocks_in_multiple_sessions": n_multi,
        "blocks_in_multiple_sessions_share": n_multi / u if u else None,
        "accesses_to_multi_session_blocks_share":
            float(multi_accesses / trace.n_accesses) if trace.n_accesses else None,
    }


def analyze_prefix(trace, *, top_groups: int | None = None) -> PrefixResult:
    """Prefix structure of ``trace``; ``top_groups`` keeps only the largest groups in the
    frame (the summary always covers all of them). Reads the block ids a chunk of requests at
    a time (``Trace.access_chunks``: two passes, and two more with sessions; state per block and
    per request only), so a store opened in chunks is analyzed without holding its accesses."""
    require_block_ids(trace, "the prefix-structure analysis")
    u = int(trace.n_unique_blocks)
    st = prefix_structure(trace.access_chunks, trace.offsets, u, trace.input_len, int(trace.block_size))
    groups = _groups_frame(st.pop("groups"))
    groups_summary = _groups_summary(trace, st["starting_shared"], groups)
    tree, depth_distribution, fanout_distribution = _tree_shape(st, u)
    if top_groups is not None:
        groups = groups.head(int(top_groups))
    session_frame, sessions = _session_sharing(trace, u)
    return PrefixResult(groups=groups, depth_distribution=depth_distribution,
                        fanout_distribution=fanout_distribution, session_sharing=session_frame,
                        tree=tree, groups_summary=groups_summary, sessions=sessions)
