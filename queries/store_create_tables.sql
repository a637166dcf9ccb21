-- The kvctrace store (docs/data-model.md "Tables"). Created inside the ingest transaction.
-- blocks is the prefix tree: parent_block is the block before this one in the request where it
-- first appeared (NULL at depth 0), depth its position there, tokens the tokens it holds.
CREATE TABLE requests (
    req_id     BIGINT PRIMARY KEY,
    ts         DOUBLE NOT NULL,
    input_len  BIGINT NOT NULL,
    output_len BIGINT NOT NULL,
    n_blocks   BIGINT NOT NULL,
    session_id VARCHAR,
    parent_id  BIGINT,
    turn       BIGINT,
    type       VARCHAR,
    line_no    BIGINT NOT NULL,
    -- text traces only (docs/text-inputs.md), else NULL
    tokens                 INTEGER[],
    msg_offsets            INTEGER[],
    msg_roles              VARCHAR[],
    cached_tokens          BIGINT,
    reported_prompt_tokens BIGINT,
    model                  VARCHAR
);
CREATE TABLE accesses (
    req_id BIGINT NOT NULL,
    pos    INTEGER NOT NULL,
    block  BIGINT NOT NULL
);
CREATE TABLE blocks (
    block        BIGINT NOT NULL,
    raw_hash     UBIGINT NOT NULL,
    first_req    BIGINT NOT NULL,
    parent_block BIGINT,
    depth        INTEGER NOT NULL,
    tokens       INTEGER NOT NULL
);
CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR);
-- rejects: raw is the line as text (bytes that are not UTF-8 shown as U+FFFD), raw_bytes the
-- line exactly as it was in the file.
CREATE TABLE rejects (line_no BIGINT, raw VARCHAR, reason VARCHAR, raw_bytes BLOB);
