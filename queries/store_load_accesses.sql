-- Dense block ids of every access in CSR order (request, then position).
SELECT block FROM accesses ORDER BY req_id, pos
