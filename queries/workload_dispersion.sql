-- Index of dispersion of arrival counts at one window size: variance / mean of the request
-- count per window, over the complete windows [w * $window_s, (w+1) * $window_s) that end
-- at or before the last request (the trailing partial window is left out). 1 for a Poisson
-- process, > 1 for bursty arrivals.
WITH span AS (
    SELECT CAST(floor(coalesce(max(ts), 0.0) / $window_s) AS BIGINT) AS complete_windows
    FROM requests
), windows AS (
    SELECT unnest(range(0, complete_windows)) AS window_idx FROM span
), per_window AS (
    SELECT CAST(floor(ts / $window_s) AS BIGINT) AS window_idx, count(*) AS requests
    FROM requests
    GROUP BY 1
), counts AS (
    SELECT CAST(coalesce(p.requests, 0) AS DOUBLE) AS n
    FROM windows w LEFT JOIN per_window p USING (window_idx)
)
SELECT
    CAST($window_s AS DOUBLE)                 AS window_s,
    count(*)                                  AS windows,
    avg(n)                                    AS mean_requests,
    var_pop(n)                                AS var_requests,
    CASE WHEN avg(n) > 0 THEN var_pop(n) / avg(n) END AS index_of_dispersion,
    max(n)                                    AS max_requests,
    CASE WHEN avg(n) > 0 THEN max(n) / avg(n) END     AS peak_to_mean
FROM counts
