"""Intermediate checkpoints of zoo models, and checkpoint patterns for sweeps.

``checkpoints_of("attn-only-2l-induction@s0")`` lists the saved training steps as loadable
specs (``attn-only-2l-induction@s0:step100``, ...), in step order.

:func:`expand_checkpoints` turns what a user writes (``--mi-checkpoints`` or
``@pytest.mark.mi_checkpoints(...)``) into an ordered list of :class:`CheckpointRef`:

* zoo specs, with globs in the seed/step part: ``attn-only-2l-induction@s0:step*``,
  ``attn-only-2l-induction@s*:step*``; a spec without globs is taken as is;
* local folders (a checkpoint folder with ``config.json``), as a path or a filesystem glob
  (``runs/ckpt-*``), relative to ``base_dir``;
* several of these, comma-separated or as a list.
"""

from __future__ import annotations

import fnmatch
import glob
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mi_assert.errors import MiAssertInputError
from mi_assert.zoo.registry import CHECKPOINT_ROOT, available, get, parse_spec

_STEP_FILE = re.compile(r"^step(\d+)\.safetensors$")
_TRAILING_INT = re.compile(r"(\d+)$")
_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class CheckpointRef:
    """One checkpoint of a sweep: what to load and where it sits on the trajectory."""

    spec: str  #: what load_model gets
    label: str  #: short name shown in reports (``step100``, a folder name)
    series: str  #: the run it belongs to (``attn-only-2l-induction@s0``, a parent folder)
    step: int | None  #: training step when known
    order: int  #: position in the sweep
    param_id: str  #: the pytest parameter id

    def as_context(self) -> dict[str, object]:
        return {"spec": self.spec, "label": self.label, "series": self.series,
                "step": self.step, "order": self.order, "param_id": self.param_id}


def _seed_dirs(name: str, root: Path) -> list[tuple[int, Path]]:
    out = []
    for d in (root / name).glob("s*"):
        if d.is_dir() and d.name[1:].isdigit():
            out.append((int(d.name[1:]), d))
    return sorted(out)


def checkpoints_of(spec: str, root: Path = CHECKPOINT_ROOT) -> list[str]:
    """Loadable specs of every saved training step of a zoo model seed, in step order."""
    parsed = parse_spec(spec)
    seed = parsed.seed if parsed.seed is not None else 0
    hf_steps = get(parsed.name).hf_steps()
    if hf_steps:
        return [f"{parsed.name}:step{k}" for k in hf_steps]
    folder = root / parsed.name / f"s{seed}"
    steps = sorted(int(m.group(1)) for p in folder.glob("step*.safetensors")
                   if (m := _STEP_FILE.match(p.name)))
    return [f"{parsed.name}@s{seed}:step{k}" for k in steps]


def _zoo_candidates(name: str, root: Path) -> list[str]:
    if get(name).hf_steps():
        return [name, *checkpoints_of(name, root)]
    specs = []
    for seed, _ in _seed_dirs(name, root):
        specs.append(f"{name}@s{seed}")
        specs += checkpoints_of(f"{name}@s{seed}", root)
    return specs


def _expand_zoo(item: str, root: Path) -> list[tuple[str, str, str, int | None]]:
    name = re.split(r"[@:]", item, maxsplit=1)[0]
    if not _GLOB_CHARS & set(item):
        parsed = parse_spec(item)  # validates, with suggestions
        series = f"{parsed.name}@s{parsed.seed if parsed.seed is not None else 0}"
        label = f"step{parsed.step}" if parsed.step is not None else "final"
        return [(str(parsed), label, series, parsed.step)]
    matches = [s for s in _zoo_candidates(name, root) if fnmatch.fnmatchcase(s, item)]
    out = []
    for s in matches:
        parsed = parse_spec(s)
        out.append((s, f"step{parsed.step}" if parsed.step is not None else "final",
                    f"{parsed.name}@s{parsed.seed if parsed.seed is not None else 0}", parsed.step))
    return out


def _expand_path(item: str, base_dir: Path) -> list[tuple[str, str, str, int | None]]:
    pattern = item if Path(item).expanduser().is_absolute() else str(base_dir / item)
    pattern = str(Path(pattern).expanduser())
    paths = [Path(p) for p in glob.glob(pattern)] if _GLOB_CHARS & set(item) else [Path(pattern)]
    out = []
    for p in paths:
        if p.is_dir() and (p / "config.json").exists():
            m = _TRAILING_INT.search(p.name)
            out.append((str(p), p.name, str(p.parent), int(m.group(1)) if m else None))
    return out


def _is_zoo_item(item: str) -> bool:
    name = re.split(r"[@:]", item, maxsplit=1)[0]
    return name in available()


def expand_checkpoints(patterns: str | Sequence[str], base_dir: str | Path = ".",
                       root: Path = CHECKPOINT_ROOT) -> list[CheckpointRef]:
    """Checkpoint patterns → ordered refs (by series, then step, then name). Errors when a
    pattern matches nothing, naming what exists."""
    items = ([p.strip() for p in patterns.split(",")] if isinstance(patterns, str)
             else [str(p).strip() for p in patterns])
    items = [i for i in items if i]
    if not items:
        raise MiAssertInputError("no checkpoints given: pass a zoo spec glob like "
                                 "'attn-only-2l-induction@s0:step*' or a folder glob like 'runs/step*'")
    found: dict[str, tuple[str, str, str, int | None]] = {}
    for item in items:
        hits = _expand_zoo(item, root) if _is_zoo_item(item) else _expand_path(item, Path(base_dir))
        if not hits:
            if _is_zoo_item(item):
                have = _zoo_candidates(re.split(r"[@:]", item, maxsplit=1)[0], root)
                detail = f"saved checkpoints: {', '.join(have)}" if have else "no checkpoints are saved for it yet"
            else:
                detail = (f"no folder with a config.json matches {item!r} under {Path(base_dir).resolve()}; "
                          f"zoo models: {', '.join(available())}")
            raise MiAssertInputError(f"checkpoint pattern {item!r} matches nothing: {detail}")
        for hit in hits:
            found.setdefault(hit[0], hit)
    ordered = sorted(found.values(), key=lambda h: (h[2], h[3] is None, h[3] or 0, h[1]))
    refs = []
    ids: set[str] = set()
    for order, (spec, label, series, step) in enumerate(ordered):
        pid = spec if _is_zoo_item(spec) else label
        if pid in ids:
            pid = f"{pid}~{order}"
        ids.add(pid)
        refs.append(CheckpointRef(spec, label, series, step, order, pid))
    return refs
