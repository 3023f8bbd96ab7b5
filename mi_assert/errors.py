"""Exceptions raised by mi-assert.

User mistakes raise :class:`MiAssertInputError` (a ``ValueError``) whose message says what was
wrong and what is allowed; a claim that does not hold raises a plain ``AssertionError`` (see
:mod:`mi_assert.stats.evidence`) so pytest reports it as a test failure, not an error.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class MiAssertInputError(ValueError):
    """Bad input: the message names what is wrong and what is allowed."""


class UnknownHookError(MiAssertInputError, KeyError):
    """A hook name that the model does not have."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class ModelUnavailableError(RuntimeError):
    """Weights could not be found locally nor downloaded (offline machine, missing path).

    Inside pytest the ``mi_model`` fixture turns this into a skip with the same reason.
    """


class UnsupportedModelError(MiAssertInputError):
    """A model type or architecture that no backend can handle."""


def suggest(name: str, allowed: Iterable[str], n: int = 3) -> str:
    """A short 'did you mean' phrase for error messages ('' when nothing is close)."""
    close = difflib.get_close_matches(name, list(allowed), n=n, cutoff=0.6)
    return f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def check_finite(name: str, tensor: object) -> None:
    """Raise a clear error when an activation or score tensor holds NaN or inf."""
    import torch

    if isinstance(tensor, torch.Tensor) and tensor.is_floating_point():
        if tensor.numel() and bool(torch.isfinite(tensor.sum())):
            return  # NaN or inf anywhere makes the sum non-finite: one pass on the common path
        bad = ~torch.isfinite(tensor)
        if bool(bad.any()):
            n_bad = int(bad.sum())
            raise MiAssertInputError(
                f"{name} contains {n_bad} non-finite value(s) (NaN or inf) out of "
                f"{tensor.numel()}; mi-assert needs finite activations. Check the model's "
                "weights and dtype (fp16 overflow is a common cause)."
            )
