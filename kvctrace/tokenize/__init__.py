"""Text to tokens for text request logs (format ``prompts``): tokenizers and chat templates
read from local files, rendering, exact parallel tokenization (docs/text-inputs.md).

Layer: between ``kernels`` and ``formats`` (imports only the base layer and ``tokenizers`` /
``jinja2``)."""
from __future__ import annotations

from .encoder import BytesEncoder, Encoder, piece_path_problem
from .loading import (BYTES, BYTES_LABEL, DEFAULT_CHAT_TEMPLATE, TokenizerError, TokenizerFiles, fingerprint,
                      load_tokenizer)
from .pipeline import TextPipeline, Tokenized
from .template import ChatTemplate, TemplateFailed

__all__ = ["BYTES", "BYTES_LABEL", "BytesEncoder", "ChatTemplate", "DEFAULT_CHAT_TEMPLATE", "Encoder",
           "TemplateFailed", "TextPipeline", "Tokenized", "TokenizerError", "TokenizerFiles", "fingerprint",
           "load_tokenizer", "piece_path_problem"]
