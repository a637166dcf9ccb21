-- Inter-arrival gaps between consecutive requests (in arrival order, req_id): mean, spread,
-- coefficient of variation (stddev_pop / mean: 1 for Poisson arrivals, > 1 bursty) and
-- quantiles in seconds (one quantile_cont aggregate for the three: one selection pass).
-- Ties (gap 0) are counted: some traces quantise timestamps.
WITH gaps AS (
    SELECT ts - lag(ts) OVER (ORDER BY req_id) AS gap FROM requests
), stats AS (
    SELECT
        count(gap)                                    AS gaps,
        avg(gap)                                      AS mean_s,
        stddev_pop(gap)                               AS std_s,
        CASE WHEN avg(gap) > 0 THEN stddev_pop(gap) / avg(gap) END AS cv,
        avg(CASE WHEN gap = 0 THEN 1.0 ELSE 0.0 END)  AS zero_gap_share,
        quantile_cont(gap, [0.5, 0.9, 0.99])          AS q,
        max(gap)                                      AS max_s
    FROM gaps
    WHERE gap IS NOT NULL
)
SELECT gaps, mean_s, std_s, cv, zero_gap_share, q[1] AS p50_s, q[2] AS p90_s, q[3] AS p99_s, max_s
FROM stats
