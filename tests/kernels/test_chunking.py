"""Memory estimates and chunk sizes."""

from __future__ import annotations

import torch

from benchmarks.support.testing import random_tl_model
from mi_assert.kernels.chunking import bytes_per_variant, chunks, variants_per_chunk
from mi_assert.kernels.functional import functional_model


def test_estimate_grows_with_batch_positions_and_logits():
    fm = functional_model(random_tl_model())
    base = bytes_per_variant(fm, 4, 8, 1, 4)
    assert bytes_per_variant(fm, 8, 8, 1, 4) > base
    assert bytes_per_variant(fm, 4, 16, 1, 4) > base
    assert bytes_per_variant(fm, 4, 8, 8, 4) > base  # full-position logits
    assert bytes_per_variant(fm, 4, 8, 1, 2) == base // 2


def test_chunk_size_respects_budget_and_bounds():
    cpu = torch.device("cpu")
    assert variants_per_chunk(1000, 144, 10_000, cpu) == 10
    assert variants_per_chunk(1000, 144, 1, cpu) == 1  # never zero
    assert variants_per_chunk(1000, 144, 10**12, cpu) == 144  # never more than there are
    assert variants_per_chunk(1000, 144, 10**12, cpu, max_variants=7) == 7
    assert [len(r) for r in chunks(10, 4)] == [4, 4, 2]
    assert [i for r in chunks(10, 4) for i in r] == list(range(10))
