-- One row per session (requests with a session id): its requests (turns), time span and
-- token totals, longest sessions first.
SELECT
    session_id,
    count(*)                 AS requests,
    min(ts)                  AS first_ts,
    max(ts)                  AS last_ts,
    max(ts) - min(ts)        AS span_s,
    CAST(sum(input_len) AS BIGINT)  AS input_tokens,
    CAST(sum(output_len) AS BIGINT) AS output_tokens
FROM requests
WHERE session_id IS NOT NULL
GROUP BY session_id
ORDER BY requests DESC, session_id
