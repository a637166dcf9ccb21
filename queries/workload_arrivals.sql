-- Arrivals per time window of $window_s seconds: window w covers [w * $window_s, (w+1) * $window_s).
-- Every window from 0 to the one holding the last request is listed (empty windows as zeros);
-- "complete" is false for the last window when the trace ends inside it.
WITH span AS (
    SELECT coalesce(max(ts), 0.0) AS duration_s,
           CAST(floor(coalesce(max(ts), 0.0) / $window_s) AS BIGINT) AS last_window
    FROM requests
), windows AS (
    SELECT unnest(range(0, last_window + 1)) AS window_idx FROM span
), per_window AS (
    SELECT CAST(floor(ts / $window_s) AS BIGINT) AS window_idx,
           count(*)        AS requests,
           CAST(sum(input_len) AS BIGINT)  AS input_tokens,
           CAST(sum(output_len) AS BIGINT) AS output_tokens
    FROM requests
    GROUP BY 1
)
SELECT
    w.window_idx,
    w.window_idx * $window_s                           AS start_s,
    coalesce(p.requests, 0)                            AS requests,
    coalesce(p.input_tokens, 0)                        AS input_tokens,
    coalesce(p.output_tokens, 0)                       AS output_tokens,
    coalesce(p.requests, 0) / $window_s                AS requests_per_s,
    coalesce(p.input_tokens, 0) / $window_s            AS input_tokens_per_s,
    (w.window_idx + 1) * $window_s <= s.duration_s     AS complete
FROM windows w
CROSS JOIN span s
LEFT JOIN per_window p USING (window_idx)
ORDER BY w.window_idx
