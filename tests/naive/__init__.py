"""Slow, obviously-correct reference implementations of every kernel (stumpy's tests/naive.py
pattern), one module per area. Property tests compare kernels to these on random traces;
every public name is re-exported here (``from tests.naive import naive_x`` / ``naive.naive_x``)."""
from __future__ import annotations

from .hashing import (NAIVE_CHAIN_SEED, NAIVE_CONTENT_SEED, naive_hash_fmix64, naive_combine,
                      naive_content_hash, naive_hash_token_blocks, naive_rechain, naive_coarsen,
                      naive_dense_ids, naive_prefix_classes)
from .reuse import (naive_stack_distances, naive_lru_hit_ratio, naive_request_hits,
                    naive_reuse_times, naive_hit_tokens, naive_fmix64, naive_shards_hash,
                    naive_shards_fixed_rate_curve, naive_shards_fixed_size_curve)
from .access import naive_sequential_flags, naive_runs, naive_lookup_plan, naive_runs_test
from .hotness import (naive_access_counts, naive_gini, naive_top_share, naive_hot_set_size,
                      naive_first_positions, naive_window_top_k)
from .prefix import naive_chain, naive_shared_prefixes, naive_session_reuse
from .workload import naive_window_counts, naive_index_of_dispersion, naive_quantile_linear
from .store import (naive_gather_csr, naive_truncate_csr, naive_prefix_tree, naive_chat_sessions,
                    naive_first_values)
from .synth import naive_segment_blocks, naive_simulate_sessions, naive_build_segments
from .formats import naive_strict_json_line
from .policies import NAIVE_TIERS
from .replay import naive_replay, naive_replay_run

__all__ = [
    "NAIVE_CHAIN_SEED",
    "NAIVE_CONTENT_SEED",
    "naive_hash_fmix64",
    "naive_combine",
    "naive_content_hash",
    "naive_hash_token_blocks",
    "naive_rechain",
    "naive_coarsen",
    "naive_dense_ids",
    "naive_prefix_classes",
    "naive_stack_distances",
    "naive_lru_hit_ratio",
    "naive_request_hits",
    "naive_reuse_times",
    "naive_hit_tokens",
    "naive_fmix64",
    "naive_shards_hash",
    "naive_shards_fixed_rate_curve",
    "naive_shards_fixed_size_curve",
    "naive_sequential_flags",
    "naive_runs",
    "naive_lookup_plan",
    "naive_runs_test",
    "naive_access_counts",
    "naive_gini",
    "naive_top_share",
    "naive_hot_set_size",
    "naive_first_positions",
    "naive_window_top_k",
    "naive_chain",
    "naive_shared_prefixes",
    "naive_session_reuse",
    "naive_window_counts",
    "naive_index_of_dispersion",
    "naive_quantile_linear",
    "naive_gather_csr",
    "naive_truncate_csr",
    "naive_prefix_tree",
    "naive_chat_sessions",
    "naive_first_values",
    "naive_segment_blocks",
    "naive_simulate_sessions",
    "naive_build_segments",
    "naive_strict_json_line",
    "NAIVE_TIERS",
    "naive_replay",
    "naive_replay_run",
]
