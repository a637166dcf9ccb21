"""Ranking with tie groups (kvctrace/replay/ranking.py) and the cost frontier (frontier.py) on
random tables: the ranking is consistent, tie groups are what the docs say, the frontier is
the Pareto set and its knee is rank 1 of the cost ranking."""
from __future__ import annotations

import numpy as np
import polars as pl
from hypothesis import given, settings, strategies as st

from kvctrace.replay import ranking
from kvctrace.replay.frontier import frontier


def _table(draw, n_max=40):
    n = draw(st.integers(1, n_max))
    small = st.integers(0, 6)
    return pl.DataFrame({
        "ttft_p99_ms": [float(draw(small)) * draw(st.sampled_from([1.0, 1.002, 1.01])) + 100 for _ in range(n)],
        "ttft_mean_ms": [float(draw(small)) for _ in range(n)],
        "memory_usd_per_hour": [float(draw(small)) for _ in range(n)],
        "memory_bytes": [int(draw(small)) for _ in range(n)],
        "prefill_saved_gpu_s_per_hour": [float(draw(small)) * 100 for _ in range(n)],
    }).with_columns(prefill_saved_usd_per_hour=pl.col("prefill_saved_gpu_s_per_hour") / 100,
                    net_usd_per_hour=pl.col("prefill_saved_gpu_s_per_hour") / 100 - pl.col("memory_usd_per_hour"))


tables = st.composite(_table)


def _key(row, keys):
    return tuple((-row[c] if higher else row[c]) for c, higher in keys)


@settings(max_examples=150, deadline=None)
@given(tables(), st.sampled_from(["p99-ttft", "mean-ttft", "cost", "prefill-saved"]),
       st.sampled_from([0.0, 0.005, 0.05]))
def test_no_row_ranks_above_one_no_worse_and_better_on_the_secondary_key(table, name, tol):
    obj = ranking.OBJECTIVES[name]
    ranked = ranking.rank(table, obj, tol)
    assert ranked["rank"].to_list() == list(range(1, table.height + 1))
    keys = ranking.secondary_keys(ranked, obj)
    rows = ranked.to_dicts()
    sign = -1 if obj.higher else 1
    for i, a in enumerate(rows):
        for b in rows[i + 1:]:
            no_worse = sign * b[obj.column] <= sign * a[obj.column]
            better = _key(b, keys) < _key(a, keys)
            assert not (no_worse and better), (a, b)


@settings(max_examples=100, deadline=None)
@given(tables(), st.sampled_from([0.0, 0.005, 0.05]))
def test_tie_groups_follow_their_definition(table, tol):
    obj = ranking.OBJECTIVES["p99-ttft"]
    ranked = ranking.rank(table, obj, tol)
    groups = ranked["tie_group"].to_list()
    assert groups[0] == 1 and all(b - a in (0, 1) for a, b in zip(groups, groups[1:]))
    by_value = {}
    for row in ranked.iter_rows(named=True):
        by_value.setdefault(row["ttft_p99_ms"], set()).add(row["tie_group"])
    assert all(len(g) == 1 for g in by_value.values())      # equal values share a group
    firsts = ranked.group_by("tie_group").agg(pl.col("ttft_p99_ms").min().alias("lead"),
                                              pl.col("ttft_p99_ms").max().alias("last")).sort("tie_group")
    for lead, last in zip(firsts["lead"], firsts["last"]):
        assert last - lead <= tol * abs(lead) + 1e-12
    leads = firsts["lead"].to_list()
    for a, b in zip(leads, leads[1:]):       # the next group starts beyond the tolerance
        assert b - a > tol * abs(a) - 1e-12


@settings(max_examples=100, deadline=None)
@given(tables(), st.sampled_from([0.0, 0.005, 0.05]))
def test_frontier_is_the_pareto_set_and_its_knee_is_the_cost_pick(table, tol):
    ranked = ranking.rank(table, ranking.OBJECTIVES["cost"], tol)
    f = frontier(ranked, tol)
    pts = set(zip(ranked["memory_usd_per_hour"], ranked["prefill_saved_gpu_s_per_hour"]))
    pareto = {(c, v) for c, v in pts if not any((c2 <= c and v2 >= v and (c2, v2) != (c, v)) for c2, v2 in pts)}
    assert set(zip(f["memory_usd_per_hour"], f["prefill_saved_gpu_s_per_hour"])) == pareto
    assert f["knee"].sum() == 1
    assert int(f.filter(pl.col("knee"))["rank"][0]) == 1
    # each point stands for its best-ranked row
    for row in f.iter_rows(named=True):
        same = ranked.filter((pl.col("memory_usd_per_hour") == row["memory_usd_per_hour"])
                             & (pl.col("prefill_saved_gpu_s_per_hour") == row["prefill_saved_gpu_s_per_hour"]))
        assert row["rank"] == same["rank"].min()


def test_tie_text_says_tie_and_how_it_is_broken():
    t = pl.DataFrame({"ttft_p99_ms": [100.0, 100.2, 120.0], "ttft_mean_ms": [3.0, 2.0, 1.0],
                      "memory_usd_per_hour": [2.0, 1.0, 0.5], "memory_bytes": [2, 1, 0]})
    obj = ranking.OBJECTIVES["p99-ttft"]
    ranked = ranking.rank(t, obj, 0.005)
    assert ranked["memory_usd_per_hour"].to_list() == [1.0, 2.0, 0.5]
    text = ranking.tie_text(ranked, obj, 0.005)
    assert text.startswith("tie: 2 configurations within 0.5% of the best p99 TTFT (100.0 ms)")
    assert "broken by memory cost (cheapest first), then mean TTFT (lowest first)" in text
    assert ranking.tie_text(ranking.rank(t, obj, 0.0), obj, 0.0).startswith("no tie")
    assert np.array_equal(ranking.tie_groups(np.array([1.0, 1.004, 1.006, 1.02]), 0.005), [0, 0, 1, 2])
