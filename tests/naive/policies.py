"""Eviction policies of the naive replayer (tests/naive/replay.py): one tier class per policy."""
from __future__ import annotations

from collections import OrderedDict, deque


class _NaiveListTier:
    """LRU / FIFO as an ordered dict (first = next victim). An arrival is the most recent;
    an LRU hit makes the block most recent, a FIFO hit changes nothing."""

    def __init__(self, policy, cap):
        self.policy, self.cap, self.order = policy, cap, OrderedDict()

    def holds(self, b):
        return b in self.order

    def hit(self, b, st):
        if self.policy == "lru":
            self.order.move_to_end(b)

    def insert(self, b, st):
        victim = None
        if len(self.order) >= self.cap:
            victim, _ = self.order.popitem(last=False)
        self.order[b] = True
        return victim

    def remove(self, b):
        del self.order[b]


class _NaivePriorityTier:
    """A tier as a dict block -> priority; evict the smallest (keys are unique)."""

    def __init__(self, policy, cap):
        self.policy, self.cap, self.keys = policy, cap, {}

    def holds(self, b):
        return b in self.keys

    def key(self, b, st):
        if self.policy == "lfu":
            return (min(st["freq"][b], 4194303), st["last_t"][b])
        if self.policy == "prefix-lru":
            r, pos = st["stamp"][b]
            return (r, -pos)
        if self.policy == "belady":
            return -st["next_use"][b]
        raise ValueError(self.policy)

    def hit(self, b, st):
        self.keys[b] = self.key(b, st)

    def insert(self, b, st):
        victim = None
        if len(self.keys) >= self.cap:
            victim = min(self.keys, key=self.keys.get)
            del self.keys[victim]
        self.keys[b] = self.key(b, st)
        return victim

    def remove(self, b):
        del self.keys[b]


class _NaiveS3FIFOTier:
    """S3-FIFO as libCacheSim's S3FIFO.c, with deques (left = head, right = tail)."""

    def __init__(self, cap):
        self.cap = cap
        self.small_cap = max(int(cap * 0.1), 1 if cap >= 1 else 0)
        self.main_cap = cap - self.small_cap
        self.ghost_cap = int(cap * 0.9)
        self.small, self.main, self.ghost = deque(), deque(), deque()
        self.freq, self.has_evicted = {}, False

    def holds(self, b):
        return b in self.small or b in self.main

    def hit(self, b, st):
        self.freq[b] += 1

    def _evict_one(self):
        while True:
            self.has_evicted = True
            if len(self.main) > self.main_cap or not self.small:
                while self.main:
                    v = self.main.pop()
                    if self.freq[v] >= 1:
                        self.main.appendleft(v)
                        self.freq[v] = min(self.freq[v], 3) - 1
                    else:
                        return v
            else:
                while self.small:
                    v = self.small.pop()
                    if self.freq[v] >= 2:
                        self.main.appendleft(v)
                        self.freq[v] = 0
                    else:
                        if self.ghost_cap > 0 and v not in self.ghost:
                            if len(self.ghost) >= self.ghost_cap:
                                self.ghost.pop()
                            self.ghost.appendleft(v)
                        return v

    def insert(self, b, st):
        ghost_hit = b in self.ghost
        if ghost_hit:
            self.ghost.remove(b)
        victim = None
        if len(self.small) + len(self.main) >= self.cap:
            victim = self._evict_one()
        if ghost_hit or (not self.has_evicted and len(self.small) >= self.small_cap):
            self.main.appendleft(b)
        else:
            self.small.appendleft(b)
        self.freq[b] = 0
        return victim

    def remove(self, b):
        (self.small if b in self.small else self.main).remove(b)
