"""Workload statistics: arrival process and burstiness, input/output lengths, sessions,
turns and request types. Works on every trace, including lengths-only ones (no block ids):
it reads only the ``requests`` table, through the named queries ``queries/workload_*.sql``.

Definitions:
* arrivals: request counts per window of ``window_s`` seconds (default: the smallest of
  1, 5, 10, 30, 60, 300, 600, 1800, 3600 s giving at most 200 windows over the trace).
* burstiness: coefficient of variation of inter-arrival gaps (``interarrival_cv``: 1 for a
  Poisson process, > 1 bursty), and the index of dispersion (variance / mean of counts per
  window) at each window size in ``dispersion_windows_s`` that leaves at least 2 complete
  windows; the trailing partial window is left out.
* lengths: count, mean, std (population), min, p50/p90/p95/p99 (linear interpolation), max.
* sessions: a session's turns = its requests; reported only when requests carry session ids
  (likewise types and turns).
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import polars as pl

from ..errors import ConfigError
from ..results import ResultMixin  # to_json() and the Jupyter rendering of summary()
from ..sql import load_query

NICE_WINDOWS_S = (1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0, 1800.0, 3600.0)
DEFAULT_DISPERSION_WINDOWS_S = (1.0, 10.0, 60.0, 600.0)
MAX_DISPERSION_WINDOWS = 1_000_000  # a window size that cuts the trace into more is skipped (memory)
QUANTILE_PROBS = tuple(i / 100 for i in range(101))


def _query(trace, name: str, **params) -> pl.DataFrame:
    return trace.request_sql(load_query(name), **params)  # the requests table (or view) only


@contextmanager
def _one_thread(trace):
    """DuckDB adds up floating-point values in parallel in no fixed order, so means and
    variances would differ in their last digits from run to run; one thread makes them
    deterministic, and these queries read only the small requests table."""
    with trace.sql_lock:  # the setting is the connection's: nobody else queries meanwhile
        con = trace.connection(all_tables=False)
        threads = int(con.execute("SELECT current_setting('threads')").fetchall()[0][0])
        con.execute("SET threads = 1")
        try:
            yield
        finally:
            con.execute(f"SET threads = {threads}")


def _row(frame: pl.DataFrame) -> dict:
    return frame.row(0, named=True) if frame.height else {}


def default_window_s(duration_s: float, max_windows: int = 200) -> float:
    for w in NICE_WINDOWS_S:
        if duration_s / w <= max_windows:
            return w
    return float(duration_s / max_windows)


@dataclass(frozen=True)
class WorkloadResult(ResultMixin):
    overview: dict                  # requests, duration_s, tokens, session/type/turn counts
    arrivals: pl.DataFrame          # window_idx, start_s, requests, input_tokens, output_tokens, requests_per_s, input_tokens_per_s, complete
    arrival_window_s: float
    dispersion: pl.DataFrame        # window_s, windows, mean_requests, var_requests, index_of_dispersion, max_requests, peak_to_mean
    interarrival: dict              # gaps, mean_s, std_s, cv, zero_gap_share, p50_s, p90_s, p99_s, max_s
    lengths: pl.DataFrame           # field, requests, mean, std, min, p50, p90, p95, p99, max
    length_quantiles: pl.DataFrame  # prob, input_len, output_len
    types: pl.DataFrame | None      # type, requests, share, mean/p50 input and output lengths
    sessions: pl.DataFrame | None   # session_id, requests, first_ts, last_ts, span_s, tokens
    turns: pl.DataFrame | None      # turn, requests, mean lengths

    def summary(self) -> dict:
        o = self.overview
        duration = o.get("duration_s") or 0.0
        out = {
            "requests": o.get("requests", 0),
            "duration_s": round(duration, 9),   # to the ns: no float noise (3536.9990000000003)
            "mean_rate_rps": o["requests"] / duration if duration > 0 else None,
            "input_tokens": o.get("input_tokens", 0),
            "output_tokens": o.get("output_tokens", 0),
            "input_tokens_per_s": o["input_tokens"] / duration if duration > 0 else None,
            "arrival_window_s": self.arrival_window_s,
            "peak_window_requests": int(self.arrivals["requests"].max()) if self.arrivals.height else 0,
            "interarrival_mean_s": self.interarrival.get("mean_s"),
            "interarrival_cv": self.interarrival.get("cv"),
            "interarrival_zero_gap_share": self.interarrival.get("zero_gap_share"),
            "index_of_dispersion": {f"{row['window_s']:g}s": row["index_of_dispersion"]
                                    for row in self.dispersion.iter_rows(named=True)},
        }
        for row in self.lengths.iter_rows(named=True):
            prefix = row["field"]
            for stat in ("mean", "p50", "p90", "p99", "max"):
                out[f"{prefix}_{stat}"] = row[stat]
        out["sessions"] = o.get("sessions") if self.sessions is not None else None
        if self.sessions is not None and self.sessions.height:
            turns = self.sessions["requests"]
            out["session_requests_mean"] = float(turns.mean())
            out["session_requests_p50"] = float(turns.quantile(0.5, interpolation="linear"))
            out["session_requests_max"] = int(turns.max())
            out["multi_request_session_share"] = float((turns >= 2).mean())
        out["types"] = ({row["type"]: row["requests"] for row in self.types.iter_rows(named=True)}
                        if self.types is not None else None)
        out["max_turn"] = int(self.turns["turn"].max()) if self.turns is not None else None
        return out


def analyze_workload(trace, *, window_s: float | None = None,
                     dispersion_windows_s=DEFAULT_DISPERSION_WINDOWS_S) -> WorkloadResult:
    """Arrival process, burstiness, lengths, sessions/turns/types of ``trace``."""
    with _one_thread(trace):
        return _workload(trace, window_s, dispersion_windows_s)


def _workload(trace, window_s, dispersion_windows_s) -> WorkloadResult:
    overview = _row(_query(trace, "workload_overview"))
    duration = float(overview.get("duration_s") or 0.0)
    if window_s is None:
        window_s = default_window_s(duration)
    window_s = float(window_s)
    if not window_s > 0:
        raise ConfigError(f"window_s={window_s} must be positive", field="window_s")
    arrivals = _query(trace, "workload_arrivals", window_s=window_s)

    frames = []
    for w in dispersion_windows_s:
        w = float(w)
        if not w > 0:
            raise ConfigError(f"dispersion window {w} must be positive", field="dispersion_windows_s")
        if 2 <= duration / w <= MAX_DISPERSION_WINDOWS:  # at least two complete windows
            frames.append(_query(trace, "workload_dispersion", window_s=w))
    dispersion = (pl.concat(frames) if frames else pl.DataFrame(schema={
        "window_s": pl.Float64, "windows": pl.Int64, "mean_requests": pl.Float64,
        "var_requests": pl.Float64, "index_of_dispersion": pl.Float64,
        "max_requests": pl.Float64, "peak_to_mean": pl.Float64}))

    lengths = _query(trace, "workload_lengths")
    quantiles = (_query(trace, "workload_length_quantiles", probs=list(QUANTILE_PROBS))
                 if overview.get("requests") else
                 pl.DataFrame(schema={"prob": pl.Float64, "input_len": pl.Float64,
                                      "output_len": pl.Float64}))
    return WorkloadResult(
        overview=overview, arrivals=arrivals, arrival_window_s=window_s, dispersion=dispersion,
        interarrival=_row(_query(trace, "workload_interarrival")), lengths=lengths,
        length_quantiles=quantiles,
        types=_query(trace, "workload_types") if overview.get("requests_with_type") else None,
        sessions=_query(trace, "workload_sessions") if overview.get("requests_with_session") else None,
        turns=_query(trace, "workload_turns") if overview.get("requests_with_turn") else None)
