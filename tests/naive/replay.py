"""Policy replayer: multi-tier cache replay (kvctrace/kernels/replay.py, kvctrace/replay/)."""
from __future__ import annotations

from .policies import NAIVE_TIERS


def _next_uses(blocks):
    """Per access: index of the next access to the same block, or n + i when there is none."""
    n = len(blocks)
    nxt = [n + i for i in range(n)]
    last_seen = {}
    for i in range(n - 1, -1, -1):
        if blocks[i] in last_seen:
            nxt[i] = last_seen[blocks[i]]
        last_seen[blocks[i]] = i
    return nxt


class _NaiveHierarchy:
    """Tiers (fastest first), the blocks' per-block state, and how blocks move between tiers."""

    def __init__(self, caps, policies, admit, inclusive, promote, demote):
        self.T, self.caps = len(caps), caps
        self.admit = admit or [1] * self.T
        self.inclusive, self.promote, self.demote = inclusive, promote, demote
        self.tiers = [NAIVE_TIERS[policies[k]](caps[k]) for k in range(self.T)]
        self.st = {"last_t": {}, "freq": {}, "stamp": {}, "next_use": {}}
        self.seen = {}
        self.ever = {}      # block -> the tiers that have ever held it

    def insert(self, k, b):
        """Insert b into tier k; the evicted block or None."""
        self.ever.setdefault(b, set()).add(k)
        return self.tiers[k].insert(b, self.st)

    def admits(self, m, b):
        return self.caps[m] > 0 and self.seen[b] >= self.admit[m]

    def holder(self, b):
        return next((m for m in range(self.T) if self.tiers[m].holds(b)), None)

    def place(self, k, b):
        """Insert b into tier k; each victim moves down to the next tier that takes it."""
        v = self.insert(k, b)
        j = k
        while v is not None and self.demote:
            target = None
            for m in range(j + 1, self.T):
                if self.tiers[m].holds(v):
                    break
                if self.admits(m, v):
                    target = m
                    break
            if target is None:
                break
            v = self.insert(target, v)
            j = target

    def hit(self, k, b):
        self.st["freq"][b] += 1
        self.tiers[k].hit(b, self.st)
        if not (self.promote and k > 0):
            return
        if self.inclusive:
            for m in range(k - 1, -1, -1):
                if self.admits(m, b) and not self.tiers[m].holds(b):
                    self.place(m, b)
        else:
            up = next((m for m in range(k) if self.admits(m, b)), None)
            if up is not None:
                self.tiers[k].remove(b)
                self.place(up, b)

    def miss(self, b):
        """Place a missed block; True when some tier took it."""
        self.st["freq"][b] = 1
        targets = ([m for m in range(self.T - 1, -1, -1) if self.admits(m, b) and not self.tiers[m].holds(b)]
                   if self.inclusive else [m for m in range(self.T) if self.admits(m, b)][:1])
        for m in targets:
            self.place(m, b)
        return bool(targets)


def _miss_causes(h, b, holder, prefix_open):
    """Per tier k: the cause of this access's miss of tier k, or None when tiers 0..k serve
    it as a prefix hit (docs/replay.md "Miss taxonomy", spelled out)."""
    causes = []
    for k in range(h.T):
        if holder is not None and holder <= k:
            causes.append(None if prefix_open else "prefix_broken")
        elif h.seen[b] == 1:
            causes.append("cold")
        elif any(m <= k for m in h.ever.get(b, ())):
            causes.append("capacity")
        elif any(h.caps[m] > 0 for m in range(k + 1)):
            causes.append("admission")
        else:
            causes.append("capacity")
    return causes


def naive_replay_run(offsets, blocks, caps, policies, admit=None, inclusive=False, promote=True, demote=True):
    """Reference multi-tier replay, semantics of kvctrace/kernels/replay.py spelled out.

    Returns a dict of lists: ``prefix_hits``, ``block_hits`` (per request a list of per-tier
    counts), ``index_inserts``, ``insert_runs`` (per request the misses that entered a tier and
    the runs of consecutive ids among them), ``full_tier`` (per request the tier of the last
    block when the whole request was a prefix hit, else -1), and ``misses``: per tier a dict
    cause -> count (the miss taxonomy; the last tier's is the overall one)."""
    offsets = [int(x) for x in offsets]
    blocks = [int(x) for x in blocks]
    nxt = _next_uses(blocks)
    h = _NaiveHierarchy(caps, policies, admit, inclusive, promote, demote)
    T = h.T
    prefix, bhits, inserts, runs, full = [], [], [], [], []
    misses = [{"cold": 0, "capacity": 0, "prefix_broken": 0, "admission": 0} for _ in range(T)]
    for r in range(len(offsets) - 1):
        ph, bh, ft = [0] * T, [0] * T, -1
        inserted = []
        open_ = True
        lo, hi = offsets[r], offsets[r + 1]
        for i in range(lo, hi):
            b = blocks[i]
            h.seen[b] = h.seen.get(b, 0) + 1
            h.st["last_t"][b] = i
            h.st["stamp"][b] = (r, i - lo)
            h.st["next_use"][b] = nxt[i]
            k = h.holder(b)
            for tier, cause in enumerate(_miss_causes(h, b, k, open_)):
                if cause is not None:
                    misses[tier][cause] += 1
            if k is not None:
                bh[k] += 1
                if open_:
                    ph[k] += 1
                    if i == hi - 1:
                        ft = k
                h.hit(k, b)
            else:
                open_ = False
                if h.miss(b):
                    inserted.append(b)
        prefix.append(ph)
        bhits.append(bh)
        inserts.append(len(inserted))
        runs.append(sum(1 for j, x in enumerate(inserted) if j == 0 or inserted[j - 1] + 1 != x))
        full.append(ft)
    return {"prefix_hits": prefix, "block_hits": bhits, "index_inserts": inserts, "insert_runs": runs,
            "full_tier": full, "misses": misses}


def naive_replay(offsets, blocks, caps, policies, admit=None, inclusive=False, promote=True, demote=True):
    """``naive_replay_run``'s (prefix_hits, block_hits, index_inserts, insert_runs, full_tier)."""
    run = naive_replay_run(offsets, blocks, caps, policies, admit, inclusive, promote, demote)
    return tuple(run[key] for key in ("prefix_hits", "block_hits", "index_inserts", "insert_runs", "full_tier"))
