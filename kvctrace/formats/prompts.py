"""Text request logs (format ``prompts``): one request per record, as the prompts and chat
requests an application or gateway sent (docs/text-inputs.md).

A record holds ``prompt`` (a string) or ``messages`` (an OpenAI-style chat list whose
``content`` is a string or a list of parts; text parts are joined with newlines, other parts
are skipped and counted), and optionally ``timestamp`` (seconds, or ISO-8601 text),
``session_id`` (or ``user``), ``output_length`` (or ``output_tokens``), ``model``,
``cached_tokens``, ``prompt_tokens`` and ``tools``. The gateway-log shape
``{"created" | "timestamp", "request": {...}, "response": {"usage": {...}}}`` takes the
request fields from ``request`` and ``completion_tokens``, ``prompt_tokens`` and
``prompt_tokens_details.cached_tokens`` from ``response.usage``.

Records are rendered (chat template) as they are read, so a record the template cannot
render is a bad line like any other; their texts are tokenized in parallel batches in a
background thread while reading goes on (``kvctrace.tokenize``), then hashed with the
chained-hash kernel at ``--block-size`` (default
16, last partial block dropped by default as vLLM does): the ids equal those of the
``tokens`` format for the same token lists. Each request keeps its tokens, where each
message starts (token offset) and its role, ``cached_tokens`` and ``model`` as request
columns (``Columns.extra``)."""
from __future__ import annotations

import functools
import types
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa

from ..errors import TraceFormatError
from ..kernels.hashing import hash_token_blocks
from ..progress import status
from ..tokenize import TemplateFailed, TextPipeline, load_tokenizer
from .common import (MAX_TOKENS, BadLine, Columns, check_timestamp, datetime_ns, get_count, get_str, get_timestamp,
                     tokens_column)

NAME = "prompts"
DEFAULT_BLOCK_SIZE = 16
SIGNATURE = "prompt or messages (or request with created/timestamp)"
CSV = False  # messages are nested
DEFAULT_PARTIAL_BLOCK = "drop"
TEXT_PART_TYPES = ("text", "input_text", "output_text")
TS_NAMES = ("timestamp", "created")
PROMPT_ROLE = "prompt"  # msg_roles of a prompt record


def matches(keys) -> bool:
    keys = set(keys)
    return bool({"prompt", "messages"} & keys) or ("request" in keys and bool(set(TS_NAMES) & keys))


def bind(settings: dict):
    """This reader with the command's text settings (``tokenizer``, ``chat_template``,
    ``partial_block`` as given or None, ``progress``, ``path``)."""
    return types.SimpleNamespace(NAME=NAME, DEFAULT_BLOCK_SIZE=DEFAULT_BLOCK_SIZE, SIGNATURE=SIGNATURE, CSV=CSV,
                                 matches=matches, options=functools.partial(_options, settings=settings),
                                 schema=schema, from_frame=from_frame, parse_record=parse_record,
                                 from_rows=from_rows)


def options(first_record: dict, block_size: int | None, partial: str, text_cells: bool = False) -> dict:
    """The reader without settings (``bind`` gives them): a text trace needs --tokenizer."""
    return _options(first_record, block_size, partial, settings={})


def _options(first_record: dict, block_size: int | None, partial: str, text_cells: bool = False, *,
             settings: dict) -> dict:
    if settings.get("tokenizer") is None:
        raise TraceFormatError("a text trace (format prompts) needs --tokenizer", path=settings.get("path"),
                               hint="--tokenizer MODEL_FOLDER or PATH/tokenizer.json, or --tokenizer bytes "
                                    "(UTF-8 bytes as tokens, an approximation)")
    files = load_tokenizer(settings["tokenizer"], settings.get("chat_template"))
    return {"block_size": block_size or DEFAULT_BLOCK_SIZE,
            "partial": settings.get("partial_block") or DEFAULT_PARTIAL_BLOCK,
            "pipeline": TextPipeline(files, settings.get("progress")), "progress": settings.get("progress"),
            "has_ts": _first_present(first_record, TS_NAMES) is not None if isinstance(first_record, dict) else True}


def schema(opts: dict):
    """None: text records are nested; every record goes through ``parse_record``."""
    return None


def from_frame(df, line_no, opts):
    return None


# ---- one record -----------------------------------------------------------------------------

def _first_present(rec: dict, names):
    return next((n for n in names if rec.get(n) is not None), None)


def _request(rec: dict) -> dict:
    """The object holding prompt/messages: ``request`` of a gateway record, else the record."""
    inner = rec.get("request")
    return inner if isinstance(inner, dict) and "prompt" not in rec and "messages" not in rec else rec


def _usage(rec: dict) -> dict:
    response = rec.get("response")
    usage = response.get("usage") if isinstance(response, dict) else None
    return usage if isinstance(usage, dict) else {}


def _timestamp(rec: dict, opts: dict):
    name = _first_present(rec, TS_NAMES)
    if name is None:
        if opts["has_ts"]:
            raise BadLine("missing field 'timestamp'", "timestamp",
                          "the first record has a timestamp, so every record needs one")
        return None
    if not opts["has_ts"]:
        raise BadLine(f"field '{name}' is given but the first record has no timestamp", name,
                      "give every record a timestamp, or none (then record order is used)")
    value = rec[name]
    if isinstance(value, datetime):  # a Parquet timestamp column
        value = value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
        return check_timestamp(value.timestamp(), name)
    if isinstance(value, str):
        return check_timestamp(datetime_ns(value, name) / 1e9, name)
    return get_timestamp(rec, name)


def _content(content, i: int) -> tuple[str, int]:
    """A message's text and its number of skipped non-text parts."""
    if content is None or isinstance(content, str):
        return content or "", 0
    if not isinstance(content, list):
        raise BadLine(f"message {i} 'content' should be a string or a list of parts, got "
                      f"{type(content).__name__}", "messages", "write content as text or [{\"type\": \"text\", \"text\": ...}]")
    texts, skipped = [], 0
    for j, part in enumerate(content):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise BadLine(f"message {i} content part {j} should be an object with a 'type'", "messages",
                          "parts look like {\"type\": \"text\", \"text\": ...}")
        if part["type"] not in TEXT_PART_TYPES:
            skipped += 1
            continue
        if not isinstance(part.get("text"), str):
            raise BadLine(f"message {i} content part {j} ('{part['type']}') has no text string", "messages",
                          "a text part needs \"text\": \"...\"")
        texts.append(part["text"])
    return "\n".join(texts), skipped


def _messages(value) -> tuple[list, list, int]:
    """(messages for the template, roles, skipped parts)."""
    if not isinstance(value, list) or not value:
        raise BadLine("field 'messages' should be a non-empty list of messages", "messages",
                      "write messages as [{\"role\": \"user\", \"content\": \"...\"}]")
    out, roles, skipped = [], [], 0
    for i, message in enumerate(value):
        if not isinstance(message, dict):
            raise BadLine(f"message {i} should be an object, got {type(message).__name__}", "messages",
                          "each message is {\"role\": ..., \"content\": ...}")
        role = message.get("role")
        if not isinstance(role, str):
            raise BadLine(f"message {i} has no 'role'" if role is None else f"message {i} 'role' should be a string",
                          "messages", "each message needs a role such as system, user or assistant")
        text, n = _content(message.get("content"), i)
        out.append({**message, "content": text})
        roles.append(role)
        skipped += n
    return out, roles, skipped


def _reported(rec: dict, usage, name: str) -> int | None:
    """A token count the server reported: the record's own ``name``, else the usage's, else None."""
    if rec.get(name) is not None:
        return get_count(rec, name)
    return get_count(usage, name) if isinstance(usage, dict) and usage.get(name) is not None else None


def _checked_length(text: str, field: str) -> str:
    # byte-level tokens (and bytes) never outnumber the text's UTF-8 bytes, at most 4 per
    # character: this bound keeps every request within MAX_TOKENS tokens
    if len(text) * 4 > MAX_TOKENS:
        raise BadLine(f"field '{field}' holds {len(text):,} characters, beyond the limit of "
                      f"{MAX_TOKENS // 4:,} per request", field, "split the request")
    return text


def parse_record(rec: dict, opts: dict) -> tuple:
    """(ts, session, output_len, model, cached_tokens, prompt_tokens, is a chat, roles, skipped
    parts); the record's text is queued for tokenizing (``TextPipeline.add``) as the last step,
    so every record returned has exactly one queued text."""
    req = _request(rec)
    usage = _usage(rec)
    ts = _timestamp(rec, opts)
    has_prompt, has_messages = req.get("prompt") is not None, req.get("messages") is not None
    if has_prompt == has_messages:
        raise BadLine("a text record needs 'prompt' or 'messages'" if not has_prompt else
                      "the record has both 'prompt' and 'messages'", "messages" if has_messages else "prompt",
                      "give the request text as \"prompt\": \"...\" or as chat \"messages\"")
    session = get_str(rec, "session_id", optional=True) or get_str(req, "user", optional=True) \
        or get_str(rec, "user", optional=True)
    model = get_str(req, "model", optional=True) or get_str(rec, "model", optional=True)
    output_name = _first_present(rec, ("output_length", "output_tokens"))
    output_len = get_count(rec, output_name) if output_name else get_count(usage, "completion_tokens", optional=True)
    cached = _reported(rec, usage.get("prompt_tokens_details"), "cached_tokens")
    prompt_tokens = _reported(rec, usage, "prompt_tokens")
    if has_prompt:
        if not isinstance(req["prompt"], str):
            raise BadLine(f"field 'prompt' should be a string, got {type(req['prompt']).__name__}", "prompt",
                          "write the prompt as text (or as chat 'messages')")
        opts["pipeline"].add(_checked_length(req["prompt"], "prompt"), None)
        return ts, session, output_len, model, cached, prompt_tokens, False, [PROMPT_ROLE], 0
    messages, roles, skipped = _messages(req["messages"])
    try:
        text, starts = opts["pipeline"].render(messages, tools=req.get("tools"), documents=req.get("documents"),
                                               timestamp=ts or 0.0)
    except TemplateFailed as err:
        raise BadLine(str(err), "messages", "check the chat template (--chat-template) against this record") from None
    opts["pipeline"].add(_checked_length(text, "messages"), starts)
    return ts, session, output_len, model, cached, prompt_tokens, True, roles, skipped


# ---- all records ----------------------------------------------------------------------------

def _list_array(values: np.ndarray, offsets: np.ndarray) -> pa.Array:
    return pa.LargeListArray.from_arrays(pa.array(offsets, pa.int64()), pa.array(values))


def _tokenized(opts: dict):
    if opts["progress"] is not None:
        return opts["pipeline"].tokenized(opts["progress"])
    with status("tokenizing") as update:
        return opts["pipeline"].tokenized(update)


def from_rows(rows: list, line_no: np.ndarray, opts: dict) -> Columns:
    (ts, session, output_len, model, cached, prompt_tokens, is_chat, roles, skipped) = \
        zip(*rows) if rows else ((),) * 9
    n = len(rows)
    tok = _tokenized(opts)
    ts = np.array(ts, np.float64) if opts["has_ts"] else np.arange(n, dtype=np.float64)
    if n:
        ts = ts - ts.min()  # epoch seconds lose precision as float64; keep them small
    ids, id_offsets = hash_token_blocks(tok.tokens.astype(np.int64), tok.offsets, opts["block_size"], opts["partial"])
    pipeline = opts["pipeline"]
    extra = {**tokens_column(tok.tokens, tok.offsets),
             "msg_offsets": _list_array(tok.msg_offsets, tok.msg_index),
             "msg_roles": pa.array(list(roles), pa.list_(pa.string())),
             "cached_tokens": pa.array(list(cached), pa.int64()),
             "reported_prompt_tokens": pa.array(list(prompt_tokens), pa.int64()),
             "model": pa.array(list(model), pa.string())}
    n_chat = sum(is_chat)
    meta = {"tokenizer": pipeline.files.label, "tokenizer_spec": pipeline.files.spec,
            "tokenizer_sha256": pipeline.files.sha256 or "",
            "chat_template_source": pipeline.files.chat_template_source if n_chat else "none (prompt records only)",
            "tokenize_path": tok.path, "text_records": f"{n_chat} messages, {n - n_chat} prompt",
            "non_text_parts_skipped": str(sum(skipped)),
            "message_start_fallbacks": str(pipeline.template.fallback_requests),
            "timestamps": "given" if opts["has_ts"] else "missing: record order, one second apart"}
    return Columns(format=NAME, block_size=opts["block_size"], ts=ts, input_len=np.diff(tok.offsets),
                   output_len=np.array(output_len, np.int64), line_no=line_no, offsets=id_offsets, ids=ids,
                   session_id=list(session) if any(s is not None for s in session) else None,
                   partial_dropped=opts["partial"] == "drop", extra=extra, meta=meta)


def text_facts(meta: dict) -> dict:
    """The facts of a text trace that every output shows (empty for other traces): the
    tokenizer (labelled an approximation for bytes), the chat template, skipped parts."""
    if not meta.get("tokenizer"):
        return {}
    return {"tokenizer": meta["tokenizer"], "chat_template": meta.get("chat_template_source"),
            "non_text_parts_skipped": int(meta.get("non_text_parts_skipped", 0)),
            "message_start_fallbacks": int(meta.get("message_start_fallbacks", 0))}
