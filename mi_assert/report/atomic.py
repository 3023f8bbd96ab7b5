"""Atomic file writes: a killed run leaves either the old file or the new one, never half.

A write that fails (a full disk, a folder that became read-only) raises the ``OSError`` and
leaves the old file as it was; the temp file is removed.

The temp file lives in the target's own directory so ``os.replace`` is a same-filesystem
rename (atomic on POSIX and Windows).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TextIO

from mi_assert.errors import MiAssertInputError


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` via a temp file in the same folder + ``os.replace``."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding=encoding) as fh:
            # mkstemp makes 0600 files; give the file the mode a plain open() would
            os.chmod(tmp, _existing_mode(target))
            _write_synced(fh, text)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return target


def _write_synced(fh: TextIO, text: str) -> None:
    """Write ``text`` and wait until it is on disk (where a full disk shows up, as OSError)."""
    fh.write(text)
    fh.flush()
    os.fsync(fh.fileno())


def _existing_mode(target: Path) -> int:
    try:
        return target.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def ensure_writable_dir(path: str | Path, what: str = "report directory") -> Path:
    """Create ``path`` if needed and check a file can be written in it; clear error if not."""
    folder = Path(path).expanduser()
    if folder.exists() and not folder.is_dir():
        raise MiAssertInputError(f"{what} {str(folder)!r} exists and is not a directory; give a directory path")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".mi-write-check.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise MiAssertInputError(
            f"{what} {str(folder)!r} cannot be written ({type(exc).__name__}: {exc.strerror or exc}); "
            "give a directory you can write to"
        ) from exc
    return folder
