"""Eviction policies of the naive replayer (tests/naive/replay.py): one tier class per
policy, registered under the policy's name (``NAIVE_TIERS``) as the naive twin of its module
in kvctrace/kernels/policies/. A tier is built as ``cls(capacity)`` and offers ``holds(b)``,
``hit(b, st)``, ``insert(b, st) -> victim or None`` (b not held; evict one block when full)
and ``remove(b)``; ``st`` is the replayer's per-block state (last_t, freq, stamp, next_use)."""
from __future__ import annotations

from collections import OrderedDict, deque

NAIVE_TIERS: dict = {}


def twin(name):
    """Register the decorated class as the naive twin of policy ``name``."""
    def register(cls):
        NAIVE_TIERS[name] = cls
        return cls
    return register


class _OrderedTier:
    """A queue as an ordered dict (first = next victim); an arrival is the most recent."""

    def __init__(self, cap):
        self.cap, self.order = cap, OrderedDict()

    def holds(self, b):
        return b in self.order

    def insert(self, b, st):
        victim = None
        if len(self.order) >= self.cap:
            victim, _ = self.order.popitem(last=False)
        self.order[b] = True
        return victim

    def remove(self, b):
        del self.order[b]


@twin("lru")
class NaiveLRU(_OrderedTier):
    """A hit makes the block the most recent."""

    def hit(self, b, st):
        self.order.move_to_end(b)


@twin("fifo")
class NaiveFIFO(_OrderedTier):
    """A hit changes nothing."""

    def hit(self, b, st):
        pass


class _PriorityTier:
    """A tier as a dict block -> priority; evict the smallest (keys are unique)."""

    def __init__(self, cap):
        self.cap, self.keys = cap, {}

    def holds(self, b):
        return b in self.keys

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


@twin("lfu")
class NaiveLFU(_PriorityTier):
    def key(self, b, st):
        return (min(st["freq"][b], 4194303), st["last_t"][b])


@twin("prefix-lru")
class NaivePrefixLRU(_PriorityTier):
    def key(self, b, st):
        r, pos = st["stamp"][b]
        return (r, -pos)


@twin("belady")
class NaiveBelady(_PriorityTier):
    def key(self, b, st):
        return -st["next_use"][b]


@twin("s3fifo")
class NaiveS3FIFO:
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


@twin("sieve")
class NaiveSIEVE:
    """SIEVE as in the paper's Algorithm 1 and libCacheSim's Sieve.c: a list, newest first;
    the hand is the block where the next eviction starts looking (None: the oldest), and it
    walks toward newer blocks, wrapping from the newest to the oldest."""

    def __init__(self, cap):
        self.cap, self.queue, self.visited, self.hand = cap, [], {}, None

    def holds(self, b):
        return b in self.visited

    def hit(self, b, st):
        self.visited[b] = True

    def _newer(self, i):
        """The block just newer than position ``i`` (None at the newest end)."""
        return self.queue[i - 1] if i > 0 else None

    def insert(self, b, st):
        victim = None
        if len(self.queue) >= self.cap:
            i = len(self.queue) - 1 if self.hand is None else self.queue.index(self.hand)
            while self.visited[self.queue[i]]:
                self.visited[self.queue[i]] = False
                i = i - 1 if i > 0 else len(self.queue) - 1
            victim = self.queue[i]
            self.hand = self._newer(i)
            self.remove(victim)
        self.queue.insert(0, b)
        self.visited[b] = False
        return victim

    def remove(self, b):
        i = self.queue.index(b)
        if self.hand == b:
            self.hand = self._newer(i)
        del self.queue[i]
        del self.visited[b]
