"""A small byte-level BPE tokenizer trained with ``tokenizers`` on local text, written as a
Hugging Face model folder (``tokenizer.json`` + ``tokenizer_config.json`` with a ChatML chat
template). kvctrace ships one (datasets/tokenizer-bpe-4k, made by scripts/train_tokenizer.py)
and the tests train theirs the same way, offline, in well under a second."""
from __future__ import annotations

import json
from pathlib import Path

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def train_bpe(texts, vocab_size: int = 4096, special_tokens=SPECIAL_TOKENS):
    """A byte-level BPE ``tokenizers.Tokenizer`` (GPT-2 style pre-tokenizer, no prefix space)
    trained on ``texts`` (an iterable of strings). Same texts, same tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                                  special_tokens=list(special_tokens),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    return tok


def write_tokenizer_folder(tokenizer, folder, *, chat_template: str | None = CHATML_TEMPLATE,
                           bos_token: str | None = None, eos_token: str | None = "<|im_end|>") -> Path:
    """Write ``tokenizer.json`` and ``tokenizer_config.json`` into ``folder`` (created)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # pretty-printed: a readable, diffable file (the library's default is one long line)
    (folder / "tokenizer.json").write_text(json.dumps(json.loads(tokenizer.to_str()), indent=1,
                                                      ensure_ascii=False) + "\n", encoding="utf-8")
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": bos_token, "eos_token": eos_token,
              "model_max_length": 1 << 20}
    if chat_template is not None:
        config["chat_template"] = chat_template
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return folder
