-- Requests per turn number (rows with a turn only), with mean lengths per turn.
SELECT
    turn,
    count(*)          AS requests,
    avg(input_len)    AS mean_input_len,
    avg(output_len)   AS mean_output_len
FROM requests
WHERE turn IS NOT NULL
GROUP BY turn
ORDER BY turn
