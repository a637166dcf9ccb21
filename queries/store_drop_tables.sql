-- Replace a store that holds another trace or other options (inside the ingest transaction).
DROP TABLE IF EXISTS requests;
DROP TABLE IF EXISTS accesses;
DROP TABLE IF EXISTS blocks;
DROP TABLE IF EXISTS meta;
DROP TABLE IF EXISTS rejects;
