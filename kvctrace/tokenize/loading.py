"""Loading a tokenizer and its chat template from local files only (``--tokenizer``,
``--chat-template``); see docs/text-inputs.md.

``--tokenizer`` is ``bytes`` (UTF-8 bytes as tokens: an approximation, labelled as such), a
Hugging Face ``tokenizer.json`` file, or a model folder holding ``tokenizer.json`` and
optionally ``tokenizer_config.json`` (``chat_template``, ``bos_token``, ``eos_token``) and
``chat_template.jinja``. The ``tokenizers`` library reads the file; nothing is downloaded: a
name that is not a local path but looks like a hub model (``org/name``) gets an error that
says how to download the files."""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import KvctraceError

BYTES = "bytes"
BYTES_LABEL = "bytes (approximation: UTF-8 bytes as tokens)"

# Used when neither --chat-template nor the tokenizer's files give a template (docs/text-inputs.md).
DEFAULT_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n\n{% endfor %}"
    "{% if add_generation_prompt %}assistant: {% endif %}"
)

_HUB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")


class TokenizerError(KvctraceError):
    """A --tokenizer or --chat-template that cannot be used."""


@dataclass(frozen=True)
class TokenizerFiles:
    """What ``--tokenizer`` / ``--chat-template`` resolved to."""
    spec: str                    # as given
    label: str                   # for meta, info, summary, report
    sha256: str | None           # of tokenizer.json (None for bytes)
    tokenizer: object | None     # tokenizers.Tokenizer (None for bytes)
    chat_template: str           # Jinja source
    chat_template_source: str    # where it came from
    bos_token: str
    eos_token: str

    @property
    def is_bytes(self) -> bool:
        return self.tokenizer is None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _missing(spec: str) -> TokenizerError:
    if _HUB_NAME.match(spec):
        name = spec.rsplit("/", 1)[-1]
        return TokenizerError(
            f"'{spec}' is not a local file or folder; kvctrace reads tokenizers from local files only "
            "and never downloads", field="--tokenizer",
            hint=f"download it first: huggingface-cli download {spec} tokenizer.json tokenizer_config.json "
                 f"--local-dir {name}, then pass --tokenizer {name}")
    return TokenizerError("no such file or folder", path=spec, field="--tokenizer",
                          hint="pass a tokenizer.json, a model folder holding one, or 'bytes'")


def _token_text(value, name: str, config: Path) -> str:
    """``bos_token``/``eos_token`` of tokenizer_config.json: a string, an AddedToken dict or null."""
    if value is None:
        return ""
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return value["content"]
    if isinstance(value, str):
        return value
    raise TokenizerError(f"'{name}' should be a string or {{\"content\": ...}}, got {type(value).__name__}",
                         path=str(config), field=name, hint="fix or remove the entry")


def _config_template(value, config: Path) -> str | None:
    """``chat_template`` is a string, or a list of {"name", "template"} (the "default" is used)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list):
        named = {t.get("name"): t.get("template") for t in value if isinstance(t, dict)}
        chosen = named.get("default")
        if isinstance(chosen, str):
            return chosen
    raise TokenizerError("'chat_template' should be a string or a list with a 'default' entry",
                         path=str(config), field="chat_template", hint="or pass --chat-template FILE.jinja")


def _read_config(folder: Path) -> dict:
    config = folder / "tokenizer_config.json"
    if not config.is_file():
        return {}
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise TokenizerError(f"not valid JSON ({str(err).splitlines()[0]})", path=str(config),
                             hint="fix the file or remove it") from None
    if not isinstance(data, dict):
        raise TokenizerError("expected a JSON object", path=str(config), hint="fix the file or remove it")
    return {"chat_template": _config_template(data.get("chat_template"), config),
            "bos_token": _token_text(data.get("bos_token"), "bos_token", config),
            "eos_token": _token_text(data.get("eos_token"), "eos_token", config)}


def _read_tokenizer(path: Path):
    from tokenizers import Tokenizer
    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as err:  # the library raises a plain Exception for any unreadable file
        first = (str(err).splitlines() or ["unreadable"])[0][:160]
        raise TokenizerError(f"not a Hugging Face tokenizer.json ({first})", path=str(path),
                             field="--tokenizer", hint="pass the tokenizer.json of a model, or 'bytes'") from None
    # tokens of the whole request are wanted: a truncation or padding setting saved with the
    # tokenizer would cut or pad them
    tok.no_truncation()
    tok.no_padding()
    return tok


def _template_file(path: str) -> tuple[str, str]:
    file = Path(path)
    if not file.is_file():
        raise TokenizerError("no such file", path=path, field="--chat-template",
                             hint="pass a Jinja chat template file (.jinja)")
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise TokenizerError("not UTF-8 text", path=path, field="--chat-template",
                             hint="pass a Jinja chat template file (.jinja)") from None
    return text, f"--chat-template {file} (sha256 {_sha256(file)[:16]})"


def load_tokenizer(spec: str | Path, chat_template: str | Path | None = None) -> TokenizerFiles:
    """Resolve ``--tokenizer`` and ``--chat-template`` (see the module docstring). The template
    is ``chat_template`` (a file) > the folder's ``chat_template.jinja`` > ``chat_template``
    of its ``tokenizer_config.json`` > ``DEFAULT_CHAT_TEMPLATE``."""
    spec = str(spec)
    given = _template_file(str(chat_template)) if chat_template is not None else None
    if spec == BYTES:
        text, source = given or (DEFAULT_CHAT_TEMPLATE, "default (plain 'role: content' template)")
        return TokenizerFiles(spec, BYTES_LABEL, None, None, text, source, "", "")
    path = Path(spec)
    if not path.exists():
        raise _missing(spec)
    config: dict = {}
    folder_template = None
    if path.is_dir():
        file = path / "tokenizer.json"
        if not file.is_file():
            raise TokenizerError("the folder has no tokenizer.json", path=spec, field="--tokenizer",
                                 hint="kvctrace reads Hugging Face tokenizer.json files (not tokenizer.model "
                                      "or vocab files); pass a folder or file that has one, or 'bytes'")
        config = _read_config(path)
        jinja = path / "chat_template.jinja"
        if jinja.is_file():
            folder_template = (jinja.read_text(encoding="utf-8"), f"{jinja.name} in {spec}")
    else:
        file = path
    tok = _read_tokenizer(file)
    sha = _sha256(file)
    if given is None:
        given = folder_template
    if given is None and config.get("chat_template"):
        given = (config["chat_template"], f"tokenizer_config.json in {spec}")
    text, source = given or (DEFAULT_CHAT_TEMPLATE, "default (plain 'role: content' template)")
    return TokenizerFiles(spec, f"{spec} (tokenizer.json sha256 {sha})", sha, tok, text, source,
                          config.get("bos_token", ""), config.get("eos_token", ""))


def recorded_tokenizer(spec: str, sha256: str | None):
    """The tokenizer a store's meta names (a tokenizer.json or a folder holding one), when it is
    still here and, given ``sha256``, unchanged; else None (results then show token ids)."""
    path = Path(spec)
    file = path / "tokenizer.json" if path.is_dir() else path
    if not file.is_file() or (sha256 and _sha256(file) != sha256):
        return None
    try:
        return _read_tokenizer(file)
    except TokenizerError:
        return None


def fingerprint(spec, chat_template=None) -> dict:
    """What identifies a tokenization for the store's options key: the specs and the sha256 of
    the files they name (a missing file is left to the reader, which reports it properly)."""
    def digest(path: Path) -> str | None:
        return _sha256(path) if path.is_file() else None
    out: dict = {"tokenizer": None if spec is None else str(spec), "chat_template": None}
    if spec is not None and str(spec) != BYTES:
        path = Path(spec)
        files = [path / n for n in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja")] \
            if path.is_dir() else [path]
        out["tokenizer_files"] = {f.name: digest(f) for f in files}
    if chat_template is not None:
        out["chat_template"] = [str(chat_template), digest(Path(chat_template))]
    return out
