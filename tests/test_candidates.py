"""Candidate capacities from the analyses (kvctrace/replay/candidates.py): knees of a curve,
merged sizes, capacity vectors cut at candidate sizes, and the figures they cite."""
from __future__ import annotations

import numpy as np

from kvctrace.replay.candidates import Size, WorkloadFacts, capacity_vectors, mrc_knees


def test_knees_of_a_two_step_curve():
    caps = np.unique(np.round(np.logspace(0, 6, 120)).astype(np.int64))
    # hit ratio climbs to 0.3 by 100 blocks, stays flat, then to 0.6 by 100k blocks
    hit = 0.3 / (1 + (30 / caps) ** 3) + 0.3 / (1 + (30_000 / caps) ** 3)
    knees = [int(caps[i]) for i in mrc_knees(caps, hit)]
    assert len(knees) == 2
    assert 40 <= knees[0] <= 400 and 40_000 <= knees[1] <= 400_000
    assert mrc_knees(caps, np.zeros_like(caps, dtype=float)) == []
    assert len(mrc_knees(caps, hit, max_knees=1)) == 1


def test_sizes_merge_when_close_and_keep_both_names():
    facts = WorkloadFacts(100, 50, 0.6, 0.5, hot_sets=(Size(1000, "hot set A"), Size(5000, "hot set B")),
                          knees=(Size(1020, "knee 1"),), working_set=Size(3000, "working set"),
                          working_set_window_s=10.0)
    sizes = facts.sizes()
    assert [s.blocks for s in sizes] == [1020, 3000, 5000]
    assert sizes[0].also == ("hot set A",) and "knee 1 = hot set A" in sizes[0].text(10)
    assert sizes[1].text(2**20) == "the working set is 3,000 blocks = 3.15 GB at 1.05 MB/block"


def test_capacity_vectors_cut_tiers_at_candidate_sizes():
    sizes = [Size(50, "a"), Size(300, "b"), Size(900, "c")]
    budgets = [100, 400, 2000]
    vectors = capacity_vectors(sizes, budgets)
    assert (100, 400, 2000) in {v.caps for v in vectors}
    for v in vectors:
        cum = np.cumsum(v.caps)
        assert all(c <= b for c, b in zip(v.caps, budgets)) and sum(v.caps) > 0
        for k, src in enumerate(v.sources):
            if src == "full budget":
                assert v.caps[k] == budgets[k]
            elif src.startswith("not needed"):
                assert v.caps[k] == 0 and k > 0
            else:
                assert cum[k] == {s.source: s.blocks for s in sizes}[src]
    assert (50, 250, 600) in {v.caps for v in vectors}      # every cut at a candidate
    assert (100, 200, 0) in {v.caps for v in vectors}       # nvme not needed once hbm+dram hold b
    limited = capacity_vectors(sizes, budgets, limit_blocks=500)
    assert limited and all(sum(v.caps) <= 500 for v in limited)
