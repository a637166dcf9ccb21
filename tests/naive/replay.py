"""Policy replayer: multi-tier cache replay (kvctrace/kernels/replay.py, kvctrace/replay/)."""
from __future__ import annotations

from .policies import _NaiveListTier, _NaivePriorityTier, _NaiveS3FIFOTier


def naive_replay(offsets, blocks, caps, policies, admit=None, inclusive=False, promote=True, demote=True):
    """Reference multi-tier replay, semantics of kvctrace/kernels/replay.py spelled out.

    Returns (prefix_hits, block_hits, index_inserts, insert_runs, full_tier) as lists: per
    request a list of per-tier counts; per request the misses that entered a tier and the
    runs of consecutive ids among them; per request the tier of the last block when the
    whole request was a prefix hit (else -1)."""
    offsets = [int(x) for x in offsets]
    blocks = [int(x) for x in blocks]
    T = len(caps)
    admit = admit or [1] * T
    n = len(blocks)
    nxt = [n + i for i in range(n)]
    last_seen = {}
    for i in range(n - 1, -1, -1):
        if blocks[i] in last_seen:
            nxt[i] = last_seen[blocks[i]]
        last_seen[blocks[i]] = i
    tiers = [_NaiveS3FIFOTier(caps[k]) if policies[k] == "s3fifo"
             else _NaiveListTier(policies[k], caps[k]) if policies[k] in ("lru", "fifo")
             else _NaivePriorityTier(policies[k], caps[k]) for k in range(T)]
    st = {"last_t": {}, "freq": {}, "stamp": {}, "next_use": {}}
    seen = {}

    def admits(m, b):
        return caps[m] > 0 and seen[b] >= admit[m]

    def place(k, b):
        v = tiers[k].insert(b, st)
        j = k
        while v is not None and demote:
            target = None
            for m in range(j + 1, T):
                if tiers[m].holds(v):
                    break
                if admits(m, v):
                    target = m
                    break
            if target is None:
                break
            v = tiers[target].insert(v, st)
            j = target

    prefix, bhits, inserts, runs, full = [], [], [], [], []
    for r in range(len(offsets) - 1):
        ph, bh, ins, ft = [0] * T, [0] * T, 0, -1
        inserted = []
        open_ = True
        lo, hi = offsets[r], offsets[r + 1]
        for i in range(lo, hi):
            b = blocks[i]
            seen[b] = seen.get(b, 0) + 1
            st["last_t"][b] = i
            st["stamp"][b] = (r, i - lo)
            st["next_use"][b] = nxt[i]
            k = next((m for m in range(T) if tiers[m].holds(b)), None)
            if k is not None:
                st["freq"][b] += 1
                bh[k] += 1
                if open_:
                    ph[k] += 1
                    if i == hi - 1:
                        ft = k
                tiers[k].hit(b, st)
                if promote and k > 0:
                    if inclusive:
                        for m in range(k - 1, -1, -1):
                            if admits(m, b) and not tiers[m].holds(b):
                                place(m, b)
                    else:
                        up = next((m for m in range(k) if admits(m, b)), None)
                        if up is not None:
                            tiers[k].remove(b)
                            place(up, b)
            else:
                open_ = False
                st["freq"][b] = 1
                targets = ([m for m in range(T - 1, -1, -1) if admits(m, b) and not tiers[m].holds(b)]
                           if inclusive else [m for m in range(T) if admits(m, b)][:1])
                for m in targets:
                    place(m, b)
                if targets:
                    ins += 1
                    inserted.append(b)
        prefix.append(ph)
        bhits.append(bh)
        inserts.append(ins)
        runs.append(sum(1 for j, x in enumerate(inserted) if j == 0 or inserted[j - 1] + 1 != x))
        full.append(ft)
    return prefix, bhits, inserts, runs, full
