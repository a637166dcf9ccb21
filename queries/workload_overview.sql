-- Workload overview: request count, time span and token totals of the whole trace.
-- ts is seconds from the first request. No parameters.
SELECT
    count(*)                                   AS requests,
    coalesce(max(ts) - min(ts), 0.0)           AS duration_s,
    CAST(coalesce(sum(input_len), 0) AS BIGINT)              AS input_tokens,
    CAST(coalesce(sum(output_len), 0) AS BIGINT)              AS output_tokens,
    count(session_id)                          AS requests_with_session,
    count(DISTINCT session_id)                 AS sessions,
    count(type)                                AS requests_with_type,
    count(DISTINCT type)                       AS types,
    count(turn)                                AS requests_with_turn
FROM requests
