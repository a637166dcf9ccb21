"""kvctrace.tokenize: local tokenizer loading (no network), sandboxed chat templates, and exact
tokenization: the piece-cached batch path gives the ids ``tokenizers`` gives for the whole
text, and message starts follow their definition (common prefix with the rendering of the
conversation before the message). Tokenizers are trained here, offline, as the shipped one."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

from kvctrace.synth_prompts import training_texts, write_tokenizer
from kvctrace.tokenize import (BYTES_LABEL, DEFAULT_CHAT_TEMPLATE, ChatTemplate, Encoder, TemplateFailed,
                               TextPipeline, TokenizerError, TokenizerFiles, load_tokenizer, piece_path_problem)
from kvctrace.tokenize.encoder import PiecePathMismatch, lcp
from kvctrace.tokenize.train import CHATML_TEMPLATE, SPECIAL_TOKENS, train_bpe

LLAMA_LIKE = ("{{ bos_token }}{% for m in messages %}<|im_start|>{{ m['role'] }}<|im_end|>\n\n{{ m['content'] | trim }}"
              "{{ eos_token }}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant<|im_end|>\n\n{% endif %}")
# Renders earlier turns differently once there are later ones: prefixes are not prefixes.
COUNTING = "[{{ messages | length }} messages]{% for m in messages %}\n{{ m.role }}: {{ m.content }}{% endfor %}"
TEMPLATES = [CHATML_TEMPLATE, DEFAULT_CHAT_TEMPLATE, LLAMA_LIKE, COUNTING]


@pytest.fixture(scope="module")
def bpe():
    return train_bpe(training_texts(0, n_texts=60, words=200), vocab_size=600)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_tokenizer(tmp_path_factory.mktemp("tok") / "bpe", vocab_size=600)


@pytest.fixture(scope="module")
def metaspace():
    """A SentencePiece-style tokenizer whose pre-tokenizer marks only the text's first piece
    with a word start (not piece-local: pieces after an added token differ)."""
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="first")
    tok.decoder = decoders.Metaspace(prepend_scheme="first")
    tok.train_from_iterator(training_texts(1, n_texts=60, words=200) + ["日本 é !? 42 \t"], trainers.BpeTrainer(
        vocab_size=600, special_tokens=["<unk>", *SPECIAL_TOKENS], show_progress=False))
    return tok


def with_bos(base):
    tok = Tokenizer.from_str(base.to_str())
    tok.post_processor = processors.TemplateProcessing(single="<|endoftext|> $A", special_tokens=[("<|endoftext|>", 0)])
    return tok


def with_normalizer(base):
    """Normalized pieces (as Qwen's NFC), added tokens matched on raw text: still piece-local."""
    tok = Tokenizer.from_str(base.to_str())
    tok.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Lowercase()])
    return tok


# ---- loading ----------------------------------------------------------------------------------

def test_folder_file_and_bytes(folder):
    files = load_tokenizer(folder)
    assert files.chat_template == CHATML_TEMPLATE and files.eos_token == "<|im_end|>" and files.bos_token == ""
    assert files.sha256 in files.label and str(folder) in files.label
    assert "tokenizer_config.json" in files.chat_template_source
    single = load_tokenizer(folder / "tokenizer.json")  # a file alone: no config, the default template
    assert single.chat_template == DEFAULT_CHAT_TEMPLATE and single.sha256 == files.sha256
    raw = load_tokenizer("bytes")
    assert raw.is_bytes and raw.label == BYTES_LABEL and "approximation" in raw.label


def test_template_precedence_and_config_forms(folder, tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "tokenizer.json").write_bytes((folder / "tokenizer.json").read_bytes())
    (model / "tokenizer_config.json").write_text(json.dumps({
        "bos_token": {"__type": "AddedToken", "content": "<s>"}, "eos_token": "</s>",
        "chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]}))
    files = load_tokenizer(model)
    assert (files.bos_token, files.eos_token, files.chat_template) == ("<s>", "</s>", "D")
    (model / "chat_template.jinja").write_text("J")
    assert load_tokenizer(model).chat_template == "J"
    given = tmp_path / "mine.jinja"
    given.write_text("M")
    chosen = load_tokenizer(model, given)
    assert chosen.chat_template == "M" and "--chat-template" in chosen.chat_template_source


@pytest.mark.parametrize("spec, words", [
    ("meta-llama/Llama-3.1-8B", "huggingface-cli download meta-llama/Llama-3.1-8B tokenizer.json"),
    ("no/such/dir/tokenizer.json", "no such file or folder"),
])
def test_missing_tokenizer_says_what_to_do_without_network(spec, words, monkeypatch):
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError("kvctrace tried to use the network")
    monkeypatch.setattr(socket, "socket", no_network)
    with pytest.raises(TokenizerError) as info:
        load_tokenizer(spec)
    assert words in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("content, words", [
    (b'{"not": "a tokenizer"}', "not a Hugging Face tokenizer.json"),
    (b"\x00\x01binary", "not a Hugging Face tokenizer.json"),
])
def test_a_file_that_is_not_a_tokenizer(tmp_path, content, words):
    path = tmp_path / "tokenizer.json"
    path.write_bytes(content)
    with pytest.raises(TokenizerError) as info:
        load_tokenizer(path)
    assert words in str(info.value) and str(path) in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(TokenizerError, match="has no tokenizer.json"):
        load_tokenizer(tmp_path / "..")


def test_bad_tokenizer_config_and_template_file(folder, tmp_path):
    model = tmp_path / "m"
    model.mkdir()
    (model / "tokenizer.json").write_bytes((folder / "tokenizer.json").read_bytes())
    (model / "tokenizer_config.json").write_text("{oops")
    with pytest.raises(TokenizerError, match="tokenizer_config.json: not valid JSON"):
        load_tokenizer(model)
    with pytest.raises(TokenizerError, match="field '--chat-template': no such file"):
        load_tokenizer("bytes", tmp_path / "none.jinja")


# ---- templates ----------------------------------------------------------------------------------

def test_template_sandbox_helpers_and_errors():
    tpl = ChatTemplate("{{ strftime_now('%H:%M:%S') }} {{ messages | tojson }}{% generation %}G{% endgeneration %}", "t")
    assert tpl.render([{"role": "user", "content": "é"}], timestamp=3661.0) == '01:01:01 [{"role": "user", "content": "é"}]G'
    failing = ChatTemplate("{% if messages[0].role != 'system' %}{{ raise_exception('System message first,\n please') }}{% endif %}", "t")
    with pytest.raises(TemplateFailed) as info:
        failing.render([{"role": "user", "content": "x"}])
    assert str(info.value) == "chat template failed: System message first, please"
    sandboxed = ChatTemplate("{{ messages.__class__.__mro__ }}", "t")
    with pytest.raises(TemplateFailed, match="unsafe|not safely|access"):
        sandboxed.render([])
    with pytest.raises(TokenizerError, match="chat template line 1"):
        ChatTemplate("{% for m in messages %}", "t")


def naive_char_starts(tpl, messages, full):
    starts = [0]
    for k in range(1, len(messages)):
        try:
            prefix = tpl.render(messages[:k], add_generation_prompt=False)
        except TemplateFailed:
            prefix = None
        if prefix is not None and full.startswith(prefix):
            starts.append(len(prefix))
        else:
            common = len(os.path.commonprefix([prefix, full])) if prefix is not None else 0
            starts.append(max(starts[-1], common))
    return starts


def test_message_starts_prefix_and_fallback_with_cache():
    conv = [{"role": "system", "content": "S"}, {"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"},
            {"role": "user", "content": "again"}]
    chatml = ChatTemplate(CHATML_TEMPLATE, "t")
    for n in (2, 4, 4, 3):  # repeated and shorter conversations reuse the cached prefixes
        full = chatml.render(conv[:n])
        assert chatml.message_starts(conv[:n], full) == naive_char_starts(chatml, conv[:n], full)
    assert chatml.message_starts(conv, chatml.render(conv)) == [0, 31, 61, 96]  # "<|im_start|>system\nS<|im_end|>\n" is 31 characters
    assert chatml.fallback_requests == 0
    counting = ChatTemplate(COUNTING, "t")
    full = counting.render(conv)
    assert counting.message_starts(conv, full) == naive_char_starts(counting, conv, full) == [0, 1, 1, 1]
    assert counting.fallback_requests == 1


# ---- tokenization -------------------------------------------------------------------------------

def test_piece_path_problems(bpe, metaspace):
    assert piece_path_problem(bpe) is None
    assert "prepend_scheme" in piece_path_problem(metaspace)
    stripping = Tokenizer.from_str(bpe.to_str())
    from tokenizers import AddedToken
    stripping.add_special_tokens([AddedToken("<mask>", lstrip=True)])
    assert "lstrip" in piece_path_problem(stripping)
    normalized = Tokenizer.from_str(bpe.to_str())
    normalized.normalizer = normalizers.Lowercase()
    normalized.add_tokens([AddedToken("Hello", normalized=True)])
    assert "normalization" in piece_path_problem(normalized)


texts = st.lists(st.sampled_from(["Hello", " world", "\n", "\n\n", "  ", "é", "日本", "<|im_start|>", "<|im_end|>",
                                  "<|im_", "end|>", "42", "!?", "\t", "tilari", "Current time: 10:31:07.", "E\u0301", "İ"]),
                 max_size=20).map("".join)
messages = st.lists(st.fixed_dictionaries({"role": st.sampled_from(["system", "user", "assistant", "tool"]),
                                           "content": texts}), min_size=1, max_size=5)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(conversations=st.lists(messages, min_size=1, max_size=4), template=st.sampled_from(TEMPLATES),
       kind=st.sampled_from(["bpe", "metaspace", "bos", "normalized"]))
def test_tokens_and_message_starts_equal_tokenizers_on_whole_texts(bpe, metaspace, conversations, template, kind):
    tok = {"bpe": bpe, "metaspace": metaspace, "bos": with_bos(bpe), "normalized": with_normalizer(bpe)}[kind]
    tpl = ChatTemplate(template, "t", bos_token="<|endoftext|>", eos_token="<|im_end|>")
    encoder = Encoder(tok)
    assert (encoder.path == "pieces") == (kind != "metaspace")
    full = [tpl.render(m) for m in conversations]
    starts = [tpl.message_starts(m, f) for m, f in zip(conversations, full)]
    ids, offsets = encoder.chats(full, starts)
    for conv, text, got, got_starts, chars in zip(conversations, full, ids, offsets, starts):
        whole = tok.encode(text, add_special_tokens=False).ids
        assert got.tolist() == whole
        expected = [0]
        for c in chars[1:]:
            expected.append(max(expected[-1], lcp(np.array(whole), np.array(tok.encode(text[:c], add_special_tokens=False).ids))))
        assert got_starts.tolist() == expected
    prompts = [text for text in full]
    assert [p.tolist() for p in encoder.prompts(prompts)] == [tok.encode(p).ids for p in prompts]


def test_pieces_are_encoded_once_and_the_guard_catches_a_wrong_piece_path(bpe, metaspace):
    encoder = Encoder(bpe)
    assert encoder.path == "pieces"
    system = "<|im_start|>system\nYou are helpful.<|im_end|>\n"
    texts = [system + f"<|im_start|>user\nquestion {i}<|im_end|>\n" for i in range(5)]
    encoder.chats(texts, [[0]] * 5)
    assert "system\nYou are helpful." in encoder._cache and len(encoder._cache) == 1 + 1 + 5
    text = "a<|im_end|>b c"
    whole = metaspace.encode(text, add_special_tokens=False).ids
    assert Encoder(metaspace).chats([text], [[0]])[0][0].tolist() == whole
    with pytest.raises(PiecePathMismatch):  # forced onto the piece path it cannot take
        Encoder(metaspace, pieces=True).chats([text], [[0]])


def test_pipeline_restarts_on_whole_texts_when_the_guard_fires(metaspace, monkeypatch):
    import kvctrace.tokenize.pipeline as pipeline_module
    monkeypatch.setattr(pipeline_module, "Encoder", lambda tok, pieces: Encoder(tok, pieces=pieces is not False))
    files = TokenizerFiles("m", "m", None, metaspace, DEFAULT_CHAT_TEMPLATE, "default", "", "")
    out = TextPipeline(files).tokenize(["a<|im_end|>b c"], [[0]])
    assert "disagreed" in out.path
    assert out.tokens.tolist() == metaspace.encode("a<|im_end|>b c", add_special_tokens=False).ids


def test_batches_are_tokenized_in_the_background_in_record_order(bpe, monkeypatch):
    import kvctrace.tokenize.pipeline as pipeline_module
    monkeypatch.setattr(pipeline_module, "BATCH_CHARS", 50)
    files = TokenizerFiles("b", "b", None, bpe, CHATML_TEMPLATE, "t", "", "")
    pipeline = TextPipeline(files)
    texts = [f"<|im_start|>user\nquestion number {i} about ducks<|im_end|>\n" * (1 + i % 3) for i in range(40)]
    seen = []
    out = pipeline.tokenize(texts, [[0] if i % 2 else None for i in range(40)], seen.append)
    assert len(pipeline._jobs) > 5 and seen[-1].startswith("tokenizing") and pipeline._worker is None
    for i, text in enumerate(texts):
        got = out.tokens[out.offsets[i]:out.offsets[i + 1]].tolist()
        assert got == (bpe.encode(text, add_special_tokens=False) if i % 2 else bpe.encode(text)).ids


def test_bytes_are_utf8_and_message_starts_are_byte_offsets():
    pipeline = TextPipeline(load_tokenizer("bytes"))
    conv = [{"role": "user", "content": "é日"}, {"role": "assistant", "content": "x"}]
    text, chars = pipeline.render(conv)
    out = pipeline.tokenize([text, "héllo"], [chars, None])
    assert out.tokens[:out.offsets[1]].tolist() == list(text.encode())
    assert out.tokens[out.offsets[1]:].tolist() == list("héllo".encode())
    assert out.msg_offsets[:2].tolist() == [0, len(text[:chars[1]].encode())] and out.msg_offsets[2] == 0
