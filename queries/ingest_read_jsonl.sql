-- Fast path of the JSON-lines readers: the file's records as typed columns, in file order
-- (blank lines skipped). $columns maps field names to DuckDB types; other keys are ignored.
-- The file is already decompressed and type-checked strictly (kernels/jsonscan.py), since
-- read_json converts leniently ("600" -> 600).
SELECT *
FROM read_json($path, format = 'newline_delimited', columns = $columns, compression = 'none',
               maximum_object_size = 1073741824)
