-- Every access in stored order, with its place: a plain scan returns the rows in insertion
-- order (DuckDB's preserve_insertion_order), which for a kvctrace store is CSR order (request,
-- then position). The reader checks that it is and falls back to store_load_accesses (sorted).
SELECT req_id, pos, block FROM accesses
