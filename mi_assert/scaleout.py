"""Scale-out settings: which device an xdist worker uses, and remote (NDIF) execution.

Pure functions so the plugin stays glue and the rules are testable without GPUs.
"""

from __future__ import annotations

import re

from mi_assert.errors import MiAssertInputError

_WORKER = re.compile(r"^gw(\d+)$")
REMOTE_CHOICES = ("ndif", "local")


def worker_device(device: str | None, worker_id: str | None, n_gpus: int) -> str | None:
    """``--mi-device cuda`` under ``pytest -n N``: worker ``gwK`` gets ``cuda:(K mod n_gpus)``.

    Anything else (``cpu``, ``auto``, an explicit ``cuda:1``, no xdist, no GPU) is unchanged.
    """
    if device != "cuda" or not worker_id or n_gpus <= 0:
        return device
    m = _WORKER.match(worker_id)
    if not m:
        return device
    return f"cuda:{int(m.group(1)) % n_gpus}"


def remote_value(option: str | None) -> bool | str | None:
    """``--mi-remote`` → what nnsight's ``trace(remote=...)`` takes.

    ``ndif`` (the bare flag) → True: ship traces to the configured NDIF host; ``local`` →
    ``"local"``: nnsight 0.8's local simulation (serialise, deserialise with user modules
    hidden, run here); ``http(s)://HOST`` → that host. None/empty: run locally as usual.
    """
    if option is None or option == "":
        return None
    if option == "ndif":
        return True
    if option == "local":
        return "local"
    if option.startswith(("http://", "https://")):
        return option
    raise MiAssertInputError(
        f"--mi-remote {option!r} not understood; allowed: ndif (NDIF's configured host), "
        "local (nnsight's local simulation of the remote path), or an http(s):// host URL")
