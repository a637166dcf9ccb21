-- Ingest metadata as key/value text (empty when the table is missing is handled by the caller).
SELECT key, value FROM meta ORDER BY key
