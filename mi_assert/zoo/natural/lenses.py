"""The tuned lens of ``kjv-gpt2-4l``'s final checkpoint, trained on training-chapter text and
saved beside the checkpoint (``stepK/lenses/tuned/``; ``mi_assert.load_lens("kjv-gpt2-4l")``).

``python -m mi_assert.zoo.natural.lenses`` (about a minute on one core; needs the Debian corpus
package for the training text).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mi_assert.zoo.natural.prompts import NAME, TRAIN, text_windows

#: training windows (BOS + 127 tokens of running text) and Adam steps
N_WINDOWS = 512
N_TOKENS = 127
STEPS = 400
SEED = 0


def train_and_save(spec: str = NAME, steps: int = STEPS) -> Path:
    from mi_assert import load_model
    from mi_assert.lens.store import save_lens
    from mi_assert.lens.train import train_tuned_lens

    handle = load_model(spec, backend="transformer_lens", device="cpu")
    tokens = text_windows(N_WINDOWS, N_TOKENS, TRAIN, seed=SEED)
    lens = train_tuned_lens(handle, tokens, steps=steps, seed=SEED)
    return save_lens(lens, spec, "tuned")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="train and save kjv-gpt2-4l's tuned lens")
    parser.add_argument("--spec", default=NAME)
    parser.add_argument("--steps", type=int, default=STEPS)
    args = parser.parse_args(argv)
    print(train_and_save(args.spec, args.steps))


if __name__ == "__main__":
    main()
