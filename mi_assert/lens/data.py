"""Token windows cut from running text: the prompts a lens is trained and measured on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from mi_assert.errors import MiAssertInputError
from mi_assert.loading import resolve_model
from mi_assert.tokenization import encode


def text_windows(model: Any, texts: str | Sequence[str], n_tokens: int, *,
                 max_windows: int | None = None) -> Tensor:
    """``[n, n_tokens]`` token ids: each text cut into consecutive windows of ``n_tokens - 1``
    tokens, BOS first (where the model has one; else ``n_tokens`` tokens). A text's tail shorter
    than a window is dropped; ``max_windows`` keeps the first ones."""
    handle = resolve_model(model)
    if isinstance(texts, str):
        texts = [texts]
    if isinstance(n_tokens, bool) or not isinstance(n_tokens, int) or not 2 <= n_tokens <= handle.n_ctx:
        raise MiAssertInputError(f"n_tokens must be an int in 2..{handle.n_ctx} (the model's "
                                 f"context); got {n_tokens!r}")
    tok = handle.tokenizer
    if tok is None:
        raise MiAssertInputError(f"model {handle.spec!r} has no tokenizer: pass token ids")
    bos = handle.bos_token_id
    width = n_tokens - (1 if bos is not None else 0)
    rows: list[list[int]] = []
    for text in texts:
        ids = encode(tok, text)
        for start in range(0, len(ids) - width + 1, width):
            rows.append(([bos] if bos is not None else []) + ids[start:start + width])
            if max_windows is not None and len(rows) >= max_windows:
                return torch.tensor(rows, dtype=torch.long)
    if not rows:
        raise MiAssertInputError(f"no text is {width} tokens long: give longer texts or a "
                                 "smaller n_tokens")
    return torch.tensor(rows, dtype=torch.long)
