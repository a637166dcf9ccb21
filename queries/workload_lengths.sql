-- Input and output length statistics in tokens, one row per field. Quantiles are
-- quantile_cont (linear interpolation between order statistics).
SELECT 'input_len' AS field, count(input_len) AS requests, avg(input_len) AS mean,
       stddev_pop(input_len) AS std, min(input_len) AS min,
       quantile_cont(input_len, 0.5) AS p50, quantile_cont(input_len, 0.9) AS p90,
       quantile_cont(input_len, 0.95) AS p95, quantile_cont(input_len, 0.99) AS p99,
       max(input_len) AS max
FROM requests
UNION ALL
SELECT 'output_len', count(output_len), avg(output_len), stddev_pop(output_len), min(output_len),
       quantile_cont(output_len, 0.5), quantile_cont(output_len, 0.9),
       quantile_cont(output_len, 0.95), quantile_cont(output_len, 0.99), max(output_len)
FROM requests
