"""kv-cache-tester agentic-coding sessions (github.com/callanjfox/kv-cache-tester, traces/): one
JSON document per conversation,
``{"id", "models", "block_size": 64, "hash_id_scope": "local", "requests": [...], ...}``, each
request ``{"t": s from the conversation start, "type": "n" | "s", "model", "in", "out",
"hash_ids": [...], "think_time", "api_time"?, ...}``, and a sub-agent an entry
``{"t", "type": "subagent", "agent_id", "requests": [...]}`` whose requests' ``t`` count from the
sub-agent's ``t``.

* Input: one file (a document, a JSON array of documents, or one document per line; optionally
  .gz/.zst) or a folder of such files (``*.json``/``*.jsonl``, optionally compressed, read in
  name order; other files such as a LICENSE are ignored).
* ``hash_ids`` are chained prefix ids of full 64-token blocks (``len == in // block_size``).
  With ``hash_id_scope: local`` ids are namespaced per conversation (two conversations never
  share a block): the stored id is ``fmix64(id ^ fmix64(conversation + 0x9E3779B97F4A7C15))``
  (``kernels.hashing``'s mixer), a bijection per conversation.
* Sessions: a conversation is a session (``session_id`` = its ``id``); a sub-agent's requests
  form their own session ``<id>/<agent_id>`` (a separate context). ``type``, ``model``,
  ``think_time`` and ``api_time`` are request columns.
* Time line: every conversation starts at t = 0; ``sessions.place_sessions`` puts them on one
  time line (``--session-start``, ``--seed``; the default is described there).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np
import pyarrow as pa

from ..errors import TraceFormatError
from ..kernels.intlists import namespace_ids, parse_int_lists
from .common import BadLine, Columns, csr_offsets, get_int, get_int_list, get_number, get_str, ids_array
from .sessions import session_starts  # noqa: F401 - the time line of its conversations (tests, docs)
from .source import Source, open_source

NAME = "kv-cache-tester"
DEFAULT_BLOCK_SIZE = 64
SIGNATURE = "requests+hash_id_scope (or block_size)"
CSV = False  # nested conversation documents
SCOPES = ("local", "global")
_TRACE_SUFFIXES = (".json", ".jsonl")
_COMPRESSED = (".gz", ".zst", ".zstd")


def matches(keys) -> bool:
    keys = set(keys)
    return "requests" in keys and ("hash_id_scope" in keys or "block_size" in keys)


def options(first_record: dict, block_size: int | None, partial: str, text_cells: bool = False) -> dict:
    given = first_record.get("block_size")
    fallback = given if isinstance(given, int) and not isinstance(given, bool) and given > 0 else DEFAULT_BLOCK_SIZE
    return {"block_size": block_size or fallback}


def schema(opts: dict) -> dict:
    return {}  # nested documents: no columnar fast path (from_frame declines)


def from_frame(df, line_no: np.ndarray, opts: dict) -> Columns | None:
    return None


# ---- one conversation -------------------------------------------------------------------------

def _at(where: str, getter, entry: dict, name: str, **kw):
    """``getter(entry, name)`` with the field named by its path in the document."""
    try:
        return getter(entry, name, **kw)
    except BadLine as err:
        path = f"{where}.{name}" if where else name
        raise BadLine(err.reason.replace(f"'{name}'", f"'{path}'"), path, err.hint) from None


def _hash_ids(entry: dict, where: str, lists) -> np.ndarray:
    value = entry.get("hash_ids")
    if lists is not None and isinstance(value, str) and value.startswith(lists[0]):
        k = int(value[len(lists[0]):])  # a list parsed by extract_hash_ids
        return lists[1][lists[2][k]:lists[2][k] + lists[3][k]]
    # Checking element types in C (map) keeps 100M ids fast; any odd element goes to the exact check.
    if not isinstance(value, list) or (value and set(map(type, value)) != {int}):
        return ids_array(_at(where, get_int_list, entry, "hash_ids"))
    try:
        return np.array(value, np.int64)
    except OverflowError:
        return ids_array(_at(where, get_int_list, entry, "hash_ids")).view(np.int64)


def _entries(value, where: str) -> list:
    if not isinstance(value, list):
        raise BadLine(f"field '{where}' should be a list of request objects, got {type(value).__name__}", where,
                      "a conversation holds a 'requests' list")
    return value


def _walk(entries: list, where: str, base_t: float, session: str, block_size: int, out: dict, lists) -> None:
    """Append every request of ``entries`` (sub-agents' requests included) to ``out``."""
    for i, entry in enumerate(entries):
        here = f"{where}[{i}]"
        if not isinstance(entry, dict):
            raise BadLine(f"field '{here}' should be an object", here, "each request is a JSON object")
        t = base_t + _at(here, get_number, entry, "t")
        kind = _at(here, get_str, entry, "type", optional=True)
        if kind == "subagent":
            agent = _at(here, get_str, entry, "agent_id", optional=True) or f"subagent{i}"
            nested = _entries(entry.get("requests"), f"{here}.requests")
            _walk(nested, f"{here}.requests", t, f"{session}/{agent}", block_size, out, lists)
            continue
        n_in = _at(here, get_int, entry, "in")
        ids = _hash_ids(entry, here, lists)
        if ids.shape[0] != n_in // block_size:
            raise BadLine(f"field '{here}.hash_ids' has {ids.shape[0]} ids but in {n_in} at block size "
                          f"{block_size} needs {n_in} // {block_size} = {n_in // block_size} (full blocks only)",
                          f"{here}.hash_ids", "the trace's block size may differ: check its block_size")
        out["ts"].append(t)
        out["input_len"].append(n_in)
        out["output_len"].append(_at(here, get_int, entry, "out", optional=True))
        out["ids"].append(ids)
        out["session"].append(session)
        out["type"].append(kind)
        out["model"].append(_at(here, get_str, entry, "model", optional=True))
        out["think_time"].append(_optional_number(entry, "think_time", here))
        out["api_time"].append(_optional_number(entry, "api_time", here))


def _optional_number(entry: dict, name: str, where: str):
    return None if entry.get(name) is None else _at(where, get_number, entry, name)


def parse_record(rec: dict, opts: dict) -> dict:
    """One conversation document: its requests (in document order) and its id scope."""
    block_size = opts["block_size"]
    own = rec.get("block_size")
    if own is not None and own != block_size:
        raise BadLine(f"field 'block_size' is {own!r} but the trace is read at block size {block_size}",
                      "block_size", "every conversation of a trace needs the same block size")
    scope = get_str(rec, "hash_id_scope", optional=True) or "local"
    if scope not in SCOPES:
        raise BadLine(f"field 'hash_id_scope' is {scope!r}", "hash_id_scope", f"use one of: {', '.join(SCOPES)}")
    conv_id = get_str(rec, "id", optional=True)
    out = {k: [] for k in ("ts", "input_len", "output_len", "ids", "session", "type", "model", "think_time",
                           "api_time")}
    _walk(_entries(rec.get("requests"), "requests"), "requests", 0.0, conv_id or "", block_size, out,
          opts.get("hash_id_lists"))
    out["scope"] = scope
    out["id"] = conv_id
    return out


def _block_ids(rows: list) -> tuple[np.ndarray, np.ndarray]:
    """(ids, CSR offsets) of every request, local ids namespaced by conversation (one
    conversation at a time, so temporaries stay small)."""
    offsets = csr_offsets([x.shape[0] for c in rows for x in c["ids"]])
    ids = np.empty(int(offsets[-1]), np.uint64)
    pos = 0
    for k, c in enumerate(rows):
        n = sum(x.shape[0] for x in c["ids"])
        if n:
            part = ids[pos:pos + n]
            np.concatenate([x.view(np.uint64) for x in c["ids"]], out=part)
            if c["scope"] == "local":
                namespace_ids(part, k)
        pos += n
    return ids, offsets


def from_rows(rows: list, line_no: np.ndarray, opts: dict) -> Columns:
    """Columns of the parsed conversations (``parse_record``), conversation after conversation;
    ``line_no`` is each conversation's line, given to all its requests."""
    per = [len(c["ts"]) for c in rows]
    ids, offsets = _block_ids(rows)
    sessions = []
    for k, c in enumerate(rows):
        default = c["id"] or f"conversation{k}"
        sessions += [s if not s.startswith("/") and s else default + s for s in c["session"]]

    def flat(key, dtype=None):
        values = [v for c in rows for v in c[key]]
        return np.array(values, dtype) if dtype is not None else values

    extra = {"model": pa.array(flat("model"), pa.string()),  # None -> NULL
             **{key: pa.array(flat(key), pa.float64()) for key in ("think_time", "api_time")}}
    return Columns(format=NAME, block_size=opts["block_size"], ts=flat("ts", np.float64),
                   input_len=flat("input_len", np.int64), output_len=flat("output_len", np.int64),
                   line_no=np.repeat(np.asarray(line_no, np.int64), per),
                   offsets=offsets, ids=ids,
                   session_id=sessions, type=flat("type"), partial_dropped=True,
                   conversation=np.repeat(np.arange(len(rows), dtype=np.int64), per), extra=extra)


# ---- files and folders ------------------------------------------------------------------------

def trace_files(folder: Path) -> list[Path]:
    """The trace files of a folder, in name order: ``*.json``/``*.jsonl``, optionally .gz/.zst."""
    def is_trace(p: Path) -> bool:
        name = p.name.lower()
        for suffix in _COMPRESSED:
            if name.endswith(suffix):
                name = name[: -len(suffix)]
        return p.is_file() and not p.name.startswith(".") and name.endswith(_TRACE_SUFFIXES)
    files = sorted((p for p in folder.iterdir() if is_trace(p)), key=lambda p: p.name)
    if not files:
        raise TraceFormatError("the directory holds no trace files (*.json, *.jsonl, optionally .gz/.zst)",
                               path=str(folder), hint="pass a folder of kv-cache-tester conversation files")
    return files


def _folder_digest(files) -> str:
    """sha256 over (file name, file sha256 hex) pairs in name order."""
    digest = hashlib.sha256()
    for name, file_hex in files:
        digest.update(name.encode() + b"\0" + file_hex.encode() + b"\n")
    return digest.hexdigest()


def folder_sha256(folder: Path) -> str:
    """sha256 of a folder's trace files (their names and contents, in name order)."""
    return _folder_digest((p.name, hashlib.sha256(p.read_bytes()).hexdigest()) for p in trace_files(Path(folder)))


class _Digest:
    def __init__(self, value: str):
        self._value = value

    def value(self) -> str:
        return self._value


_HASH_LIST = re.compile(rb'"hash_ids"\s*:\s*\[([^\[\]]*)\]')


def extract_hash_ids(data: bytes) -> tuple[bytes, tuple | None]:
    """``data`` with every strict integer ``hash_ids`` list replaced by a marker string, and
    (marker prefix, flat ids, CSR offsets) of those lists (``kernels.intlists``). A JSON key
    ``"hash_ids"`` cannot occur inside a JSON string (its quotes would be escaped), so the
    pattern finds keys only; lists it cannot parse strictly stay for ``json.loads`` and the exact
    checks. Line breaks inside a list are kept, so line numbers do not move."""
    matches = list(_HASH_LIST.finditer(data))
    if not matches:
        return data, None
    starts = np.fromiter((m.start(1) for m in matches), np.int64, len(matches))
    ends = np.fromiter((m.end(1) for m in matches), np.int64, len(matches))
    values, first, counts, ok = parse_int_lists(data, starts, ends)
    nonce = os.urandom(6).hex()  # a marker no real trace holds
    pieces, prev = [], 0
    for k, (m, good) in enumerate(zip(matches, ok.tolist())):
        if good:
            pieces += [data[prev:m.start()], b'"hash_ids":"\\u0000%s:%d"' % (nonce.encode(), k),
                       b"\n" * data.count(b"\n", m.start(), m.end())]
            prev = m.end()
    pieces.append(data[prev:])
    return b"".join(pieces), (f"\x00{nonce}:", values, first, counts)


def _documents(src: Source) -> tuple[list, tuple | None]:
    """(line, raw text, parsed value) of each document: the whole file, the elements of a JSON
    array, or one per non-blank line; and the ``hash_ids`` lists parsed out of the text."""
    text, lists = extract_hash_ids(src.data)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        if err.msg != "Extra data":
            _malformed(src)
        out = []
        for number, (line, raw) in enumerate(zip(text.split(b"\n"), src.data.split(b"\n")), 1):
            if line.strip():
                try:
                    out.append((number, raw, json.loads(line)))
                except json.JSONDecodeError:
                    bad = _decode_error(raw)
                    out.append((number, raw, BadLine(f"malformed JSON ({bad.msg} at column {bad.colno})", None,
                                                     "each line must be one conversation document")))
        return out, lists
    except UnicodeDecodeError:
        raise TraceFormatError("not UTF-8 text", path=str(src.path), line=1, hint="is this a trace file?") from None
    if isinstance(doc, list):
        return [(1, json.dumps(d), d) for d in doc], lists
    return [(1, src.data, doc)], lists


def _decode_error(data: bytes) -> json.JSONDecodeError:
    """The error ``json.loads`` gives for the original text (exact line and column)."""
    try:
        json.loads(data)
    except json.JSONDecodeError as err:
        return err
    except UnicodeDecodeError as err:
        return json.JSONDecodeError(f"not UTF-8 text ({err.reason})", data.decode("utf-8", "replace"), err.start)
    return json.JSONDecodeError("malformed JSON", "", 0)


def _malformed(src: Source):
    err = _decode_error(src.data)
    raise TraceFormatError(f"malformed JSON ({err.msg} at column {err.colno})", path=str(src.path),
                           line=err.lineno, hint="each file holds one conversation document "
                           "(or a JSON array of them, or one per line)") from None


def _conversations(src: Source, opts: dict, skip_bad_lines: bool, rows: list, line_no: list, rejects: list,
                   documents: tuple):
    docs, lists = documents
    opts = {**opts, "hash_id_lists": lists}
    for number, raw, doc in docs:
        try:
            if isinstance(doc, BadLine):
                raise doc
            if not isinstance(doc, dict):
                raise BadLine(f"expected a conversation object, got a JSON {type(doc).__name__}", None,
                              "each document is one conversation {\"id\", \"requests\": [...], ...}")
            rows.append(parse_record(doc, opts))
            line_no.append(number)
        except BadLine as err:
            if not skip_bad_lines:
                raise TraceFormatError(err.reason, path=str(src.path), line=number, field=err.field,
                                       hint=err.hint) from None
            text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
            rejects.append((number, text, f"{src.path.name}: {err.reason}"))


def sniff(src: Source) -> bool:
    """True when the file's first document is a kv-cache-tester conversation."""
    if src.kind not in ("json", "jsonl"):
        return False
    first = next((line for _, line in src.iter_lines() if line.strip()), b"")
    # ValueError: not JSON, not UTF-8, or a number beyond int()'s digit limit; RecursionError:
    # nested too deep (the reader that is chosen instead names the problem)
    try:
        doc = json.loads(extract_hash_ids(first)[0])  # only the keys matter: skip parsing the ids
    except (ValueError, RecursionError):
        if src.kind != "json":
            return False
        try:
            doc = json.loads(extract_hash_ids(src.data)[0])  # one document over several lines
        except (ValueError, RecursionError):
            return False
    if isinstance(doc, list):
        doc = doc[0] if doc else None
    return isinstance(doc, dict) and matches(doc.keys())


def read_path(path, block_size: int | None = None, skip_bad_lines: bool = False,
              src: Source | None = None, detect: bool = False) -> tuple[Columns, Source]:
    """Read a kv-cache-tester file (``src``: already opened) or folder of files into canonical
    columns (conversations in file-name order, then document order). The returned ``Source``
    names the file or folder and carries its sha256 (``folder_sha256`` for a folder).
    ``detect``: the format was not given, so a folder's first file must look like one."""
    path = Path(path)
    files = trace_files(path) if path.is_dir() else [path]
    rows, line_no, rejects, opts, digests = [], [], [], None, []
    for file in files:
        src = src if src is not None and not path.is_dir() else open_source(file, skip_bad_lines=skip_bad_lines)
        digests.append((file.name, src.sha256))
        if detect and opts is None and path.is_dir() and not sniff(src):
            raise TraceFormatError(f"is a directory, and its first trace file ({file.name}) is not a "
                                   "kv-cache-tester conversation", path=str(path),
                                   hint="a directory is read as kv-cache-tester conversations; pass one trace "
                                        "file otherwise (or --format kv-cache-tester to see what is wrong)")
        if src.kind == "parquet" or src.kind == "csv":
            raise TraceFormatError("a kv-cache-tester trace is JSON", path=str(file), line=1,
                                   hint="pass the conversation .json files (or a folder of them)")
        documents = _documents(src)
        if opts is None:
            first = next((d for _, _, d in documents[0] if isinstance(d, dict)), {})
            opts = options(first, block_size, "drop")
        rejects += [(n, raw, f"{file.name}: {reason}") for n, raw, reason in src.pre_rejects]
        _conversations(src, opts, skip_bad_lines, rows, line_no, rejects, documents)
        src.data = b""
    if not rows:
        raise TraceFormatError(f"no valid conversations: {len(rejects):,} documents rejected", path=str(path),
                               hint="check the format (--format kv-cache-tester)")
    cols = from_rows(rows, np.array(line_no, np.int64), opts)
    cols.rejects = rejects
    digest = (_Digest(_folder_digest((name, sha.value()) for name, sha in digests)) if path.is_dir()
              else digests[0][1])
    return cols, Source(path=path, kind="folder" if path.is_dir() else "json", sha256=digest)
