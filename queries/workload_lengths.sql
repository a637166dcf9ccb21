-- Input and output length statistics in tokens, one row per field. Quantiles are
-- quantile_cont (linear interpolation between order statistics), the four of a field from one
-- aggregate (one selection pass; the same values as four separate calls).
WITH q AS (
    SELECT count(input_len) AS in_n, avg(input_len) AS in_mean, stddev_pop(input_len) AS in_std,
           min(input_len) AS in_min, max(input_len) AS in_max,
           quantile_cont(input_len, [0.5, 0.9, 0.95, 0.99]) AS in_q,
           count(output_len) AS out_n, avg(output_len) AS out_mean, stddev_pop(output_len) AS out_std,
           min(output_len) AS out_min, max(output_len) AS out_max,
           quantile_cont(output_len, [0.5, 0.9, 0.95, 0.99]) AS out_q
    FROM requests
)
SELECT 'input_len' AS field, in_n AS requests, in_mean AS mean, in_std AS std, in_min AS min,
       in_q[1] AS p50, in_q[2] AS p90, in_q[3] AS p95, in_q[4] AS p99, in_max AS max
FROM q
UNION ALL
SELECT 'output_len', out_n, out_mean, out_std, out_min, out_q[1], out_q[2], out_q[3], out_q[4], out_max
FROM q
