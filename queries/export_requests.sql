-- kvctrace export --partitions: the per-request columns the partitioned analysis needs.
COPY (
    SELECT req_id, ts, input_len, output_len, n_blocks FROM requests ORDER BY req_id
) TO $path (FORMAT parquet)
