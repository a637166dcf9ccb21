"""The report's prefix-divergence section ("why did this request miss"): the headline sentence,
the figures of where requests leave the shared prefix, the top divergence sites with a snippet
of both sides, and the predicted-vs-reported cache hits when the trace carries them.

``divergence_section(result)`` takes an ``AnalysisResult`` (its ``divergence`` attribute, a
``DivergenceResult``) and returns a ``Section`` (``page.py``) for ``report.build``'s page, in the same plain
data shape as the other sections (facts, Vega-Lite figures, string tables)."""
from __future__ import annotations

import altair as alt
import polars as pl

from ..formatting import format_value as fmt
from .charts import PALETTE, log2_bins, pow10_axis
from .page import Section, Table, figures, frame_table

SECTION_ID = "divergence"
TITLE = "Why requests miss: prefix divergence"


def divergence_depth_chart(requests: pl.DataFrame) -> alt.Chart:
    """Diverging requests (after the first) per divergence block, power-of-two bins.
    ``requests``: ``DivergenceResult.requests`` (req_id, divergence_block)."""
    blocks = requests.filter((pl.col("req_id") > 0) & pl.col("divergence_block").is_not_null())["divergence_block"]
    bins = log2_bins(blocks.to_numpy()).rename({"count": "requests"})
    caption = ("Where requests leave the longest prefix they share with an earlier request: the block of the "
               "first unshared token (power-of-two bins; 0 = nothing shared). Requests whose whole prompt was "
               "seen before are not counted.")
    return alt.Chart(bins).properties(title="Divergence depth", description=caption, width=460, height=230).mark_rect(
        stroke="white", strokeWidth=0.5, color=PALETTE[3]).encode(
        x=alt.X("lo:Q", scale=alt.Scale(type="symlog"),
                axis=pow10_axis(bins["hi"].max() if bins.height else 1, "divergence block (symlog scale)")),
        x2="hi:Q", y=alt.Y("requests:Q", title="requests (count)"),
        tooltip=[alt.Tooltip("lo:Q", title="block ≥"), alt.Tooltip("hi:Q", title="block <"),
                 alt.Tooltip("requests:Q", format=",")])


def divergence_role_chart(by_role: dict) -> alt.Chart:
    """Share of diverging requests per role of the message the divergence falls in."""
    data = pl.DataFrame({"role": list(by_role), "share": [float(v) for v in by_role.values()]})
    caption = ("Share of diverging requests whose divergence point lies in a message of each role: "
               "a large system share means the system prompt changes between requests.")
    return alt.Chart(data).properties(title="Divergence by message role", description=caption, width=460,
                                      height=max(60, 28 * data.height)).mark_bar(color=PALETTE[0]).encode(
        y=alt.Y("role:N", sort="-x", title="message role"),
        x=alt.X("share:Q", title="share of diverging requests", axis=alt.Axis(format="%")),
        tooltip=[alt.Tooltip("role:N"), alt.Tooltip("share:Q", format=".1%")])


def _site_rows(top_sites: list) -> list:
    rows = []
    for s in top_sites:
        ex = s["example"]
        where = (f"{s['role'] or '?'} #{s['message_index']}" if s["message_index"] is not None else "prompt")
        rows.append([where, fmt(s["token_offset"]) if s["token_offset"] is not None else f"block {s['block']}",
                     fmt(s["requests"]), fmt(s["share"], unit="%"), fmt(s["tokens_lost"]),
                     fmt(ex.get("req_id"), missing=""), "" if ex.get("match_req") is None else fmt(ex["match_req"]),
                     ex.get("kind", ""), ex.get("before", ""), ex.get("this", ""), ex.get("earlier") or ""])
    return rows


def _sites_table(top_sites: list, level: str) -> Table:
    columns = ["where", "token ~", "requests", "share", "tokens lost", "example", "matches", "kind",
               "shared text before", "this request", "earlier request"]
    numeric = [False, True, True, True, True, True, True, False, False, False, False]
    rows = _site_rows(top_sites)
    if level != "token":  # hashed traces: no text
        keep = 7
        columns, numeric, rows = columns[:keep], numeric[:keep], [r[:keep] for r in rows]
    return Table(title="Top divergence sites", caption=(
        "Requests that diverge at the same place (same message and block within it), most requests first. "
        "Tokens lost = prompt tokens after the divergence point, summed over the site's requests. The example "
        "is the site's first request; 'matches' is the earliest earlier request sharing its longest prefix."),
        columns=columns, rows=rows, numeric=numeric)


def _reported_parts(d) -> tuple[list, list]:
    rc = d.reported_cache
    if not rc:
        return [], []
    facts = [("requests reporting cached tokens", fmt(rc["requests"]), None),
             ("predicted / reported cached tokens",
              f"{fmt(rc['predicted_tokens_total'])} / {fmt(rc['reported_tokens_total'])}",
              "predicted: unlimited prefix cache at the trace's block size"),
             ("correlation (Pearson r)", fmt(rc["pearson_r"], digits=3), "per request, predicted vs reported"),
             ("mean |predicted − reported|", fmt(rc["mean_abs_difference_tokens"]), "tokens per request")]
    tables = []
    if d.disagreements is not None and d.disagreements.height:
        tables.append(frame_table(d.disagreements, "Largest predicted vs reported gaps",
                                  "Requests where kvctrace's predicted prefix hit and the server's reported "
                                  "cached tokens differ most (predicted − reported).",
                                  {"req_id": "request", "predicted": "predicted", "reported": "reported",
                                   "difference": "difference"}))
    return facts, tables


def divergence_section(result) -> Section:
    """The divergence section of an ``AnalysisResult`` (unavailable when not measured)."""
    d = getattr(result, "divergence", None)
    if d is None:
        reason = result.unavailable.get("divergence", "the divergence analysis was not run")
        return Section(SECTION_ID, TITLE, unavailable=f"Not measured: {reason}")
    s = d.summary()
    facts = [("level", "token-exact" if d.level == "token" else "block (no tokens stored)", None),
             ("requests compared", fmt(s["requests"]), "every request after the first"),
             ("diverging", fmt(s["requests_diverging"] / s["requests"], unit="%") if s["requests"] else "n/a",
              "requests with a token not seen after the same prefix before"),
             ("sharing nothing", fmt(s["requests_sharing_nothing"]), "no prefix in common with any earlier request"),
             ("shared prefix", fmt(s["shared_tokens_share_of_input"], unit="%"), "of all prompt tokens"),
             ("tokens after divergence", fmt(s["tokens_lost_total"]), "prompt tokens prefilled again"),
             ("median divergence block", fmt(s["divergence_block_p50"], missing=""), f"{d.block_size}-token blocks")]
    rep_facts, rep_tables = _reported_parts(d)
    chart_list = [divergence_depth_chart(d.requests)]
    if s["by_role"]:
        chart_list.append(divergence_role_chart(s["by_role"]))
    tables = [_sites_table(d.top_sites, d.level)] + rep_tables
    notes = []
    if d.decoding == "token ids":
        notes.append("Snippets show token ids: the tokenizer named in the store cannot be loaded here.")
    elif d.decoding == "bytes":
        notes.append("Tokens are UTF-8 bytes (--tokenizer bytes): an approximation of a real tokenizer.")
    return Section(SECTION_ID, TITLE, intro=d.headline, facts=facts + rep_facts,
                   figures=figures(SECTION_ID, chart_list), tables=tables, notes=notes)


__all__ = ["divergence_section", "divergence_depth_chart", "divergence_role_chart"]
