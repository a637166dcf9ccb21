"""Words for the divergence analysis: examples of each site with escaped snippets of both
sides, what kind of difference it is, and the headline sentence.

Snippets decode tokens with the trace's tokenizer when the store's ``meta`` names one that can
be loaded offline (a ``tokenizer.json`` file or a folder holding one, read with the
``tokenizers`` library; ``bytes`` decodes UTF-8 bytes directly); otherwise they show token ids.
Control characters are escaped (``\\n``, ``\\t``, ``\\xNN``) so a snippet is one line.

Kinds of divergence (text traces, judged on a site's example request ``r`` and its match ``q``):
* ``appended``: ``q``'s whole prompt is a prefix of ``r`` (``r`` adds new content after it);
* ``in-message value``: after a short differing span, the rest of the message (the prompt when
  there are no messages) is identical in ``r`` and ``q``, and the identical parts make up at
  least half of it: a per-request value inside otherwise shared text;
* ``different content``: ``r`` and ``q`` differ from the divergence point on;
* ``nothing shared``: ``r`` shares no token with any earlier request.
"""
from __future__ import annotations

import re

import numpy as np
import polars as pl

from ..tokenize.loading import recorded_tokenizer

SNIPPET_CHARS = 48
IN_MESSAGE = "in-message value"
MIN_HEADLINE_SHARE = 0.05  # an in-message value site leads the headline from this share of requests


def escape_snippet(text: str, limit: int = SNIPPET_CHARS, tail: bool = False) -> str:
    """One line of at most ``limit`` characters: control characters escaped, cut with "…"
    (at the start when ``tail``: the text just before a divergence point)."""
    out = []
    for ch in text:
        if ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 32 or ord(ch) == 127:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    if len(out) <= limit:
        return "".join(out)
    return "…" + "".join(out[-limit:]) if tail else "".join(out[:limit]) + "…"


_LABELLED = re.compile(r"^(?P<spec>.*) \((?:tokenizer\.json )?sha256 (?P<sha>[0-9a-f]+)\)$")


def token_decoder(spec: str | None, sha256: str | None = None):
    """(decode(ids) -> str, how) for the store's ``tokenizer`` meta value (``bytes…``, a path,
    or a path labelled with its tokenizer.json sha256); how is ``tokenizer``, ``bytes`` or
    ``token ids``. A tokenizer file whose sha256 differs from the recorded one is not used."""
    def ids_text(ids):
        return "[" + " ".join(str(int(t)) for t in ids) + "]"
    if spec and spec.split(" ")[0] == "bytes":
        def from_bytes(ids):
            ids = [int(t) for t in ids]
            if any(t < 0 or t > 255 for t in ids):
                return ids_text(ids)
            return bytes(ids).decode("utf-8", errors="replace")
        return from_bytes, "bytes"
    labelled = _LABELLED.match(spec or "")
    if labelled:
        spec, sha256 = labelled["spec"], sha256 or labelled["sha"]
    tokenizer = recorded_tokenizer(spec, sha256) if spec else None
    if tokenizer is not None:
        return (lambda ids: tokenizer.decode([int(t) for t in ids], skip_special_tokens=False)), "tokenizer"
    return ids_text, "token ids"


def _common_suffix(a: np.ndarray, b: np.ndarray) -> int:
    n = min(a.shape[0], b.shape[0])
    if n == 0:
        return 0
    differ = np.flatnonzero(a[a.shape[0] - n:][::-1] != b[b.shape[0] - n:][::-1])
    return int(differ[0]) if differ.shape[0] else n


def _region(msg_offsets, index, n_tokens: int) -> tuple[int, int]:
    """Token range of message ``index`` (the whole prompt when there are no messages)."""
    if msg_offsets is None or index is None or index < 0 or index >= len(msg_offsets):
        return 0, n_tokens
    end = msg_offsets[index + 1] if index + 1 < len(msg_offsets) else n_tokens
    return int(msg_offsets[index]), int(end)


def classify(r_tokens: np.ndarray, q_tokens: np.ndarray | None, d: int, r_msgs, q_msgs, index) -> dict:
    """Kind of the divergence at token ``d`` of ``r`` against its match ``q`` (None: no match),
    with the differing spans (token ranges of ``r`` and ``q``) for in-message values."""
    if q_tokens is None:
        return {"kind": "nothing shared"}
    if d >= q_tokens.shape[0]:
        return {"kind": "appended"}
    start, r_end = _region(r_msgs, index, r_tokens.shape[0])
    q_start, q_end = _region(q_msgs, index, q_tokens.shape[0])
    if q_start != start:  # q's message boundaries differ: compare the rest of the prompts
        q_end = q_tokens.shape[0]
    same_after = _common_suffix(r_tokens[d:r_end], q_tokens[d:q_end])
    size = r_end - start
    out = {"kind": "different content", "message_tokens": int(size), "same_before": int(d - start),
           "same_after": int(same_after)}
    if same_after > 0 and (d - start) + same_after >= 0.5 * size:
        out.update(kind=IN_MESSAGE, changed=(d, r_end - same_after), earlier_changed=(d, q_end - same_after))
    return out


def request_columns(trace) -> set:
    """Names of the columns of the trace's requests table (or of the view an in-memory ingest
    registers in its place)."""
    with trace.sql_lock:
        return set(trace.connection(all_tables=False).sql("SELECT * FROM requests LIMIT 0").columns)


def _fetch(trace, ids: list) -> dict:
    """req_id -> (tokens, msg_offsets or None) for a few requests."""
    columns = request_columns(trace)
    extra = ", msg_offsets" if "msg_offsets" in columns else ", NULL::INTEGER[] AS msg_offsets"
    frame = trace.request_sql(f"SELECT req_id, tokens{extra} FROM requests WHERE list_contains($ids, req_id)",
                      ids=[int(i) for i in ids])
    return {row["req_id"]: (np.asarray(row["tokens"], np.int64), row["msg_offsets"])
            for row in frame.iter_rows(named=True)}


def _text_example(site: dict, rows: dict, decode, context: int) -> dict:
    r, q = site["example_req"], site["example_match"]
    r_tok, r_msgs = rows[r]
    q_tok, q_msgs = rows[q] if q is not None and q >= 0 else (None, None)
    d = int(site["example_token"])
    info = classify(r_tok, q_tok, d, r_msgs, q_msgs, site["example_message_index"])
    example = {"req_id": r, "match_req": q if q is not None and q >= 0 else None, "divergence_token": d,
               "kind": info["kind"],
               "before": escape_snippet(decode(r_tok[max(0, d - context):d]), tail=True),
               "this": escape_snippet(decode(r_tok[d:d + context])),
               "earlier": escape_snippet(decode(q_tok[d:d + context])) if q_tok is not None else None}
    for key in ("message_tokens", "same_before", "same_after"):
        if key in info:
            example[key] = info[key]
    if info["kind"] == IN_MESSAGE:
        lo, hi = info["changed"]
        qlo, qhi = info["earlier_changed"]
        example["changed"] = escape_snippet(decode(r_tok[lo:hi]))
        example["earlier_changed"] = escape_snippet(decode(q_tok[qlo:qhi]))
        lead = escape_snippet(decode(r_tok[max(0, lo - context):lo]), limit=24, tail=True)
        example["changed_in_context"] = lead + escape_snippet(decode(r_tok[lo:hi]), limit=28)
    return example


def describe_sites(trace, requests: pl.DataFrame, sites: pl.DataFrame, has_tokens: bool,
                   context: int) -> tuple[list, str | None]:
    """The given sites as dicts, each with an ``example`` (its first request); and how snippets
    decode tokens (None for hashed traces)."""
    first = requests.select("req_id", pl.col("divergence_token").alias("example_token"),
                            pl.col("message_index").alias("example_message_index"))
    rows_ = sites.join(first, left_on="example_req", right_on="req_id", how="left").sort("site").to_dicts()
    if not has_tokens:
        out = []
        for s in rows_:
            ex = {"req_id": s["example_req"], "match_req": s["example_match"] if s["example_match"] >= 0 else None,
                  "divergence_block": s["block"]}
            out.append(_site_dict(s, ex))
        return out, None
    meta = trace.meta or {}
    decode, how = token_decoder(meta.get("tokenizer"), meta.get("tokenizer_sha256") or None)
    wanted = {s["example_req"] for s in rows_} | {s["example_match"] for s in rows_ if s["example_match"] >= 0}
    fetched = _fetch(trace, sorted(wanted)) if wanted else {}
    return [_site_dict(s, _text_example(s, fetched, decode, context)) for s in rows_], how


def _site_dict(s: dict, example: dict) -> dict:
    return {"site": s["site"], "role": s["role"], "message_index": s["message_index"],
            "token_offset": s["token_offset"], "offset_in_message": s["offset_in_message"], "block": s["block"],
            "requests": s["requests"], "share": s["share"], "tokens_lost": s["tokens_lost"], "example": example}


_TIME = re.compile(r"\d{1,2}:\d{2}|\d{4}-\d{2}-\d{2}|\b(19|20)\d{2}\b")
_ID = re.compile(r"^[\s\"'=:]*[0-9a-fA-F-]{4,}[\s\"',]*$")


def _what(changed: str) -> str:
    if _TIME.search(changed):
        return "timestamp"
    if _ID.match(changed):
        return "id or number"
    return "value"


def _where(site: dict, level: str, block_size: int) -> str:
    if site["message_index"] is not None:
        return f"the {site['role'] or 'unlabelled'} message (message {site['message_index']}) at token ~{site['token_offset']:,}"
    if level == "token":
        return f"the prompt at token ~{site['token_offset']:,}"
    return f"block {site['block']:,} (token ~{site['block'] * block_size:,})"


def _pct(share: float) -> str:
    return f"{100 * share:.0f}%" if share >= 0.01 else f"{100 * share:.2g}%"


def headline(requests: pl.DataFrame, sites: list, level: str, block_size: int) -> str:
    """One sentence a user can act on: where most requests leave the shared prefix, and why."""
    analysed = requests.slice(1)  # the requests after the first (rows in req_id order: a view)
    if analysed.height == 0:
        return "The trace has a single request: there is no earlier request to share a prefix with."
    if not sites:
        return ("Every request's prompt is a prefix of earlier content: nothing diverges, so an unlimited "
                "prefix cache would serve every " + (f"complete {block_size}-token block of each prompt (a last "
                                                     "partial block is prefilled again)." if level == "token"
                                                     else "prompt block."))
    inside = [s for s in sites if s["example"].get("kind") == IN_MESSAGE and s["share"] >= MIN_HEADLINE_SHARE]
    if inside:
        s = inside[0]
        ex = s["example"]
        return (f"{_pct(s['share'])} of requests diverge inside {_where(s, level, block_size)}: "
                f"`{ex['changed_in_context']}` (earlier: `{ex['earlier_changed']}`) — the rest of the text is identical, so a "
                f"per-request {_what(ex['changed_in_context'])} there defeats prefix caching for the {s['tokens_lost']:,} prompt "
                "tokens after it; move it to the end of the prompt or drop it.")
    s = sites[0]
    kind = s["example"].get("kind")
    where = _where(s, level, block_size)
    diverging = analysed.select("divergence_token", "extends_earlier").filter(pl.col("divergence_token").is_not_null())
    extending = float(diverging["extends_earlier"].mean()) if diverging.height else 0.0
    if extending >= 0.5:
        none = float((analysed["shared_tokens"] == 0).mean())
        return (f"{_pct(extending)} of the requests that diverge do so where an earlier request's prompt ended: "
                "they extend earlier prompts with new content (the next turn of a conversation or agent loop), "
                "and prefix caching already serves everything before it"
                + (f"; {_pct(none)} share nothing with any earlier request." if none > 0 else "."))
    if kind == "appended":
        return (f"{_pct(s['share'])} of requests diverge where an earlier request's prompt ended, at {where}: "
                "they extend earlier prompts with new content, and prefix caching already serves everything before it.")
    if kind == "nothing shared" or (level == "block" and s["block"] == 0):
        return (f"{_pct(s['share'])} of requests share no prefix with any earlier request (they diverge at "
                f"{where}): only a cache keyed on content, not on prefixes, could reuse them.")
    if level == "token":
        ex = s["example"]
        return (f"{_pct(s['share'])} of requests diverge at {where} (`{ex['this']}` where the earlier request has "
                f"`{ex['earlier']}`): different content from there on; only the {s['token_offset']:,} tokens "
                "before it can come from the prefix cache.")
    none = float((analysed["shared_tokens"] == 0).mean())
    median = float(analysed["shared_blocks"].median())
    nothing = (f"{_pct(none)} share no block with any earlier request" if none > 0 else
               "every request shares at least its first block with an earlier one")
    return (f"The most common divergence point is {where}: {_pct(s['share'])} of requests share exactly "
            f"{s['block']:,} block{'s' if s['block'] != 1 else ''} with an earlier request and differ from there on; "
            f"{nothing}, and the median request shares {median:,.0f}.")
