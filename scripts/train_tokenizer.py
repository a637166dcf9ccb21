"""Train the small byte-level BPE tokenizer shipped in datasets/tokenizer-bpe-4k (see
datasets/README.md): 4,096 tokens learned with the ``tokenizers`` library from the synthetic
chat text of ``kvctrace.synth_prompts`` (seeded), written as a model folder with a ChatML chat
template. Offline and deterministic: the same seed writes the same files.

    python scripts/train_tokenizer.py datasets/tokenizer-bpe-4k [--seed 0] [--vocab-size 4096]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kvctrace.synth_prompts import write_tokenizer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vocab-size", type=int, default=4096)
    args = parser.parse_args()
    folder = write_tokenizer(args.folder, seed=args.seed, vocab_size=args.vocab_size)
    print(f"wrote {folder}/tokenizer.json and {folder}/tokenizer_config.json")


if __name__ == "__main__":
    main()
