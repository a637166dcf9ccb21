-- Per-request columns of a stored trace, in arrival order (the Trace arrays).
SELECT ts, input_len, output_len, n_blocks FROM requests ORDER BY req_id
