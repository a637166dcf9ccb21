-- Requests per request type (rows with a type only): count, share of typed requests and
-- length statistics, most frequent type first.
SELECT
    type,
    count(*)                                       AS requests,
    count(*) / sum(count(*)) OVER ()               AS share,
    avg(input_len)                                 AS mean_input_len,
    quantile_cont(input_len, 0.5)                  AS p50_input_len,
    avg(output_len)                                AS mean_output_len,
    quantile_cont(output_len, 0.5)                 AS p50_output_len
FROM requests
WHERE type IS NOT NULL
GROUP BY type
ORDER BY requests DESC, type
