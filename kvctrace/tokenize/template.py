"""Chat templates: rendering in a Jinja2 sandbox as Hugging Face does, and where each message
starts in the rendering.

Rendering (``ChatTemplate.render``) uses ``jinja2.sandbox.ImmutableSandboxedEnvironment`` with
``trim_blocks``, ``lstrip_blocks`` and loop controls, the ``tojson`` filter and the
``raise_exception`` / ``strftime_now`` globals and ``{% generation %}`` tag that Hugging Face
templates use. Variables: ``messages``, ``add_generation_prompt``, ``bos_token``,
``eos_token``, ``tools`` and ``documents`` (None unless the record has them).
``strftime_now`` formats the request's own timestamp (UTC), not the wall clock, so a rendering
is reproducible.

Message starts (``ChatTemplate.message_starts``): message k (k >= 1) starts at character
``len(render(messages[:k], add_generation_prompt=False))`` when that rendering is a prefix of
the request's full rendering; message 0 starts at 0. When it is not a prefix (a template that
renders earlier turns differently once later ones exist, or that refuses a partial
conversation), the start falls back to the length of the longest common prefix of the two
renderings (never before the previous message's start) and the request is counted as a
fallback. Renderings of conversation prefixes are cached in a trie keyed by message content,
so a session's later turns render only their new prefixes: each request costs about three
renderings however long its history."""
from __future__ import annotations

import json
import os
from datetime import datetime, timezone

from .loading import TokenizerError


class TemplateFailed(Exception):
    """The chat template could not render a record; ``str()`` is one short line."""


def _one_line(err: BaseException, limit: int = 160) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _environment():
    from jinja2 import nodes
    from jinja2.exceptions import TemplateError
    from jinja2.ext import Extension, loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class GenerationTag(Extension):
        """``{% generation %}...{% endgeneration %}`` (marks assistant text for training
        masks in Hugging Face): renders its body unchanged."""
        tags = {"generation"}

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(lineno)

        def _body(self, caller):
            return caller()

    def raise_exception(message):
        raise TemplateError(message)

    def tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[GenerationTag, loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    return env


class _PrefixTrie:
    """Renderings of conversation prefixes. Node 0 is the empty conversation of one context;
    a child extends its parent by one message. A node keeps the length of its rendering and,
    when the parent's rendering is a prefix of it, only the text it adds (``tail``); otherwise
    the whole rendering (``whole``)."""

    def __init__(self):
        self.children: dict = {}
        self.length: list[int] = []
        self.tail: list[str | None] = []
        self.whole: dict[int, str] = {}

    def new_node(self, length: int, tail: str | None = None, whole: str | None = None) -> int:
        node = len(self.length)
        self.length.append(length)
        self.tail.append(tail)
        if whole is not None:
            self.whole[node] = whole
        return node


def _message_key(message: dict) -> tuple:
    extra = {k: v for k, v in message.items() if k not in ("role", "content")}
    return (message.get("role"), message.get("content"),
            json.dumps(extra, sort_keys=True, default=str) if extra else None)


class ChatTemplate:
    """A compiled chat template and its prefix-rendering cache (one per ingest)."""

    def __init__(self, source: str, label: str, bos_token: str = "", eos_token: str = ""):
        from jinja2.exceptions import TemplateSyntaxError
        self.label = label
        self._env = _environment()
        try:
            self._template = self._env.from_string(source)
        except TemplateSyntaxError as err:
            raise TokenizerError(f"chat template line {err.lineno}: {_one_line(err)}", path=label,
                                 field="chat_template", hint="fix the template's Jinja syntax") from None
        self._constants = {"bos_token": bos_token, "eos_token": eos_token}
        self._uses_clock = "strftime_now" in source
        self._trie = _PrefixTrie()
        self._roots: dict = {}
        self.fallback_requests = 0

    def render(self, messages: list, *, add_generation_prompt: bool = True, tools=None, documents=None,
               timestamp: float = 0.0) -> str:
        """The template's output for one request; ``TemplateFailed`` (one line) if it fails."""
        def strftime_now(fmt):
            return datetime.fromtimestamp(timestamp, timezone.utc).strftime(fmt)
        try:
            return self._template.render(messages=messages, add_generation_prompt=add_generation_prompt,
                                         tools=tools, documents=documents, strftime_now=strftime_now,
                                         **self._constants)
        except RecursionError:
            raise TemplateFailed("chat template failed: recursion too deep") from None
        except Exception as err:  # a template may raise anything (TypeError on bad data, ...)
            raise TemplateFailed(f"chat template failed: {_one_line(err)}") from None

    def _root(self, tools, documents, timestamp: float) -> int:
        # the context a prefix rendering depends on besides the messages themselves
        key = (json.dumps(tools, sort_keys=True, default=str), json.dumps(documents, sort_keys=True, default=str),
               timestamp if self._uses_clock else None)
        root = self._roots.get(key)
        if root is None:
            root = self._roots[key] = self._trie.new_node(0, tail="")
        return root

    def _prefix(self, messages, k, ctx) -> str | None:
        try:
            return self.render(messages[:k], add_generation_prompt=False, **ctx)
        except TemplateFailed:
            return None  # a template may refuse a partial conversation: the start falls back

    def message_starts(self, messages: list, full: str, *, tools=None, documents=None,
                       timestamp: float = 0.0) -> list[int]:
        """Character offset in ``full`` (this request's rendering) where each message starts
        (see the module docstring); counts the request in ``fallback_requests`` when any start
        fell back."""
        ctx = {"tools": tools, "documents": documents, "timestamp": timestamp}
        trie = self._trie
        node = self._root(tools, documents, timestamp)
        verified = True  # the rendering of the prefix up to ``node`` is full[:length[node]]
        starts = [0]
        fell_back = False
        for k in range(1, len(messages)):
            key = (node, _message_key(messages[k - 1]))
            child = trie.children.get(key)
            rendered = None
            if child is None:
                rendered = self._prefix(messages, k, ctx)
                child = trie.children[key] = self._add(node, rendered, full, verified)
            start = self._verified_start(child, node, verified, full)
            if start is None and trie.length[child] >= 0:
                if rendered is None:  # cached without a usable chain: this request's own rendering
                    rendered = self._prefix(messages, k, ctx)
                if rendered is not None and full.startswith(rendered):
                    start = len(rendered)
            verified = start is not None
            if start is None:
                fell_back = True
                common = len(os.path.commonprefix([rendered, full])) if rendered is not None else 0
                start = max(starts[-1], common)
            starts.append(start)
            node = child
        if fell_back:
            self.fallback_requests += 1
        return starts

    def _add(self, parent: int, rendered: str | None, full: str, parent_verified: bool) -> int:
        trie = self._trie
        if rendered is None:
            return trie.new_node(-1)  # the template refused this prefix: always falls back
        base = trie.length[parent]
        if parent_verified and base >= 0 and rendered.startswith(full[:base]):
            return trie.new_node(len(rendered), tail=rendered[base:])
        return trie.new_node(len(rendered), whole=rendered)

    def _verified_start(self, child: int, parent: int, parent_verified: bool, full: str) -> int | None:
        """The child's rendering length if that rendering is a prefix of ``full``, else None."""
        trie = self._trie
        length = trie.length[child]
        if length < 0 or length > len(full):
            return None
        whole = trie.whole.get(child)
        if whole is not None:
            return length if full.startswith(whole) else None
        if not parent_verified:
            return None
        return length if full.startswith(trie.tail[child], trie.length[parent]) else None
