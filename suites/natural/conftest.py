"""Fixtures for the natural-text suites: ``kjv-gpt2-4l`` (a GPT-2-style model trained on the King
James Bible by ``mi_assert.zoo.natural.train``) and what its manifest recorded."""

from __future__ import annotations

import pytest

MODEL = "kjv-gpt2-4l"


@pytest.fixture(scope="session")
def kjv_manifest():
    from mi_assert.zoo.natural import manifest

    try:
        return manifest.read()
    except FileNotFoundError as exc:
        pytest.skip(f"{MODEL} has no manifest: train it with `python -m mi_assert.zoo.natural.train` "
                    f"and write it with `python -m mi_assert.zoo.natural.manifest write` ({exc})")


@pytest.fixture(scope="module")
def kjv():
    """The final checkpoint on TransformerLens, with its own tokenizer (string prompts go
    through it end to end)."""
    from mi_assert import load_model
    from mi_assert.errors import ModelUnavailableError

    try:
        return load_model(MODEL, backend="transformer_lens", device="cpu")
    except ModelUnavailableError as exc:
        pytest.skip(f"{MODEL} checkpoint missing: {exc}")


@pytest.fixture(scope="session")
def discovered(kjv_manifest):
    """{role: [(layer, head, fit score), ...]} found by find_heads on the fit split."""
    return {role: [tuple(h) for h in heads] for role, heads in kjv_manifest["discovery"]["heads"].items()}
