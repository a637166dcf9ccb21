"""Store: CSR reordering/trimming, the prefix tree (blocks table), chat sessions, raw id of
each dense id (kvctrace/kernels/tree.py, kvctrace/store.py)."""
from __future__ import annotations


def naive_gather_csr(lists, order):
    """Requests' id lists taken in ``order``."""
    return [list(lists[r]) for r in order]


def naive_truncate_csr(lists, keep):
    return [list(ids[:k]) for ids, k in zip(lists, keep)]


def naive_prefix_tree(lists, input_len, block_size):
    """Rows (block, first_req, parent_block or None, depth, tokens, raw id) of the blocks table,
    with dense ids given in order of first appearance, by walking the requests in order."""
    dense = {}
    rows = []
    for r, ids in enumerate(lists):
        for pos, raw in enumerate(ids):
            if raw not in dense:
                dense[raw] = len(dense)
                parent = dense[ids[pos - 1]] if pos > 0 else None
                tokens = min(max(input_len[r] - pos * block_size, 0), block_size)
                rows.append((dense[raw], r, parent, pos, tokens, raw))
    return rows


def naive_chat_sessions(chat_ids, parent_chat_ids):
    """(parent row or -1, session root id) per request by following parent links one by one;
    a chain whose top parent is absent is named by that absent id."""
    row_of = {}
    for i, c in enumerate(chat_ids):
        row_of.setdefault(c, i)
    parents, sessions = [], []
    for i in range(len(chat_ids)):
        p = parent_chat_ids[i]
        parents.append(row_of.get(p, -1) if p >= 0 else -1)
        cur, seen = i, set()
        top = chat_ids[i]
        while True:
            p = parent_chat_ids[cur]
            if p < 0:
                top = chat_ids[cur]
                break
            if p not in row_of:
                top = p
                break
            if row_of[p] in seen:  # a cycle: stop (no well-defined root)
                top = None
                break
            seen.add(cur)
            cur = row_of[p]
        sessions.append(top)
    return parents, sessions


def naive_first_values(dense, values):
    """For dense ids 0, 1, 2, ...: the value at each id's first access."""
    first = {}
    for d, v in zip(dense, values):
        first.setdefault(d, v)
    return [first[d] for d in range(len(first))]
