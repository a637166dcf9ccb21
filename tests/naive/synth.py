"""Synthetic traces: token identities of blocks, session simulation, prompt segments
(kvctrace/synth.py)."""
from __future__ import annotations


def naive_segment_blocks(requests, block_size):
    """Per request (a list of (segment id, length)): per block (last partial included) the
    tuple of its token identities (segment id, position in segment). Equal tuples are exactly
    equal token contents, whatever token each identity materialises to."""
    out = []
    for segments in requests:
        tokens = [(sid, p) for sid, length in segments for p in range(length)]
        out.append([tuple(tokens[i:i + block_size]) for i in range(0, len(tokens), block_size)])
    return out


def naive_simulate_sessions(arrivals, user_len, out_len, image_len, search_len, u_continue, think,
                            p_continue, sess_type, sess_base_len, max_context):
    """synth's session rules with heapq: an arrival continues the session that became ready
    first (ties by earlier request) unless its context would overflow (then that session ends),
    else starts a new one. Types: 2 image (extra on turn 1), 3 search (extra every turn)."""
    import heapq
    heap: list = []
    session, turn, parent, input_len, user_eff = [], [], [], [], []
    n_sessions = 0
    for i, t in enumerate(arrivals):
        placed = False
        while heap and heap[0][0] <= t:
            _, prev = heapq.heappop(heap)
            s = session[prev]
            u = user_len[i] + (search_len[i] if sess_type[s] == 3 else 0)
            if input_len[prev] + out_len[prev] + u <= max_context:
                session.append(s)
                turn.append(turn[prev] + 1)
                parent.append(prev)
                user_eff.append(u)
                input_len.append(input_len[prev] + out_len[prev] + u)
                placed = True
                break
        if not placed:
            s = n_sessions
            n_sessions += 1
            extra = image_len[i] if sess_type[s] == 2 else (search_len[i] if sess_type[s] == 3 else 0)
            u = max(1, min(user_len[i] + extra, max_context - sess_base_len[s]))
            session.append(s)
            turn.append(1)
            parent.append(-1)
            user_eff.append(u)
            input_len.append(sess_base_len[s] + u)
        if u_continue[i] < p_continue:
            heapq.heappush(heap, (t + think[i], i))
    return session, turn, parent, input_len, user_eff, n_sessions


def naive_build_segments(session, parent, user_eff, out_len, sess_prompt, sess_doc, prompt_len, doc_len):
    """Per request: [(kind, index, length)] = system prompt, document (if any), then the user
    text and output of every earlier turn of its session, then its own user text."""
    out = []
    for i in range(len(session)):
        s = session[i]
        segs = [("sys", sess_prompt[s], prompt_len[sess_prompt[s]])]
        if sess_doc[s] >= 0:
            segs.append(("doc", sess_doc[s], doc_len[sess_doc[s]]))
        history = []
        r = parent[i]
        while r >= 0:
            history = [("user", r, user_eff[r]), ("out", r, out_len[r])] + history
            r = parent[r]
        out.append(segs + history + [("user", i, user_eff[i])])
    return out
