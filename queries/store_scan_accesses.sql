-- Every access in the table's own (insertion) order, which an ingest writes in CSR order
-- (request, then position); store.iter_access_chunks checks that order as it reads and falls
-- back to store_load_accesses' ORDER BY (a sort) for a table written otherwise.
SELECT req_id, pos, block FROM accesses
