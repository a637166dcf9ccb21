-- The prefix tree (the blocks table) as int32 columns in block-id order, for the prefix
-- analysis. No ORDER BY: a plain scan returns the rows in insertion order (DuckDB's
-- preserve_insertion_order), which is block order; the reader checks the block column.
SELECT block::INTEGER AS block, COALESCE(parent_block, -1)::INTEGER AS parent, depth,
       first_req::INTEGER AS first_req, tokens
FROM blocks
