-- kvctrace export --partitions: every access with its block's partition (kvctrace_block_parts,
-- registered from numpy: block -> fmix64 hash partition), one Parquet folder per partition.
-- Row order inside a file is not guaranteed; readers sort by (req_id, pos).
COPY (
    SELECT a.req_id, a.pos, a.block, p.part
    FROM accesses a JOIN kvctrace_block_parts p USING (block)
) TO $dir (FORMAT parquet, PARTITION_BY (part))
