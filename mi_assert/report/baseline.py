"""Baselines: the evidence of a run saved as JSON, one file per model/checkpoint.

Layout: ``<baseline dir>/<NAME>/<model slug>.json`` where the baseline dir defaults to
``.mi_baselines/`` in the pytest rootdir (commit it next to the suites). The slug comes from the
model's spec: a zoo spec or hub name, a path's folder, or for a model passed in as an object its
identity ``custom-<own name>-<hash>`` (:attr:`mi_assert.backends.base.ModelHandle.spec`), so
two such models never write the same file. Each file holds the
model's description (spec, checkpoint hash, backend) and slim records (no figures, no
per-seed rows); a composite claim's record keeps every member (``members``, each with its own
numbers), so a comparison sees a member that moved even when the headline did not. Saving
never overwrites silently: a NAME that already has files needs ``overwrite=True``
(``--mi-baseline-overwrite``), which replaces the files of the models in this run and keeps
the others.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mi_assert.errors import MiAssertInputError
from mi_assert.report.atomic import atomic_write_text, ensure_writable_dir
from mi_assert.report.schema import (
    BASELINE_KIND,
    REPORT_SCHEMA_VERSION,
    check_document,
    dedupe_keys,
    sort_records,
)

DEFAULT_DIR = ".mi_baselines"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SLIM_FIELDS = ("claim", "metric", "estimate", "low", "high", "bound", "n", "unit", "threshold",
                "alternative", "alpha", "passed", "reason", "deciding", "composite", "summary")


def check_name(name: str) -> str:
    if not _NAME_RE.match(name or ""):
        raise MiAssertInputError(
            f"baseline name {name!r} is not allowed: use letters, digits, '.', '_' and '-' "
            "(starting with a letter or digit), e.g. 'main' or 'v1.2'")
    return name


def model_slug(spec: str, checkpoint: str | None = None) -> str:
    """A file-name-safe, collision-resistant name for a model (spec + short hash for paths)."""
    base = re.sub(r"[^A-Za-z0-9._@-]+", "_", spec.rstrip("/").split("/")[-1] or "model").strip("_")
    if "/" in spec or len(base) > 80:
        base = f"{base[:60]}-{hashlib.sha1(spec.encode()).hexdigest()[:8]}"
    return base or "model"


def _slim_evidence(ev: Mapping[str, Any]) -> dict[str, Any]:
    out = {f: ev.get(f) for f in _SLIM_FIELDS}
    out["members"] = [_slim_evidence(m) for m in ev.get("family") or [] if isinstance(m, Mapping)]
    return out


def slim(rec: Mapping[str, Any]) -> dict[str, Any]:
    """A record as stored in a baseline: provenance + the evidence's numbers and members."""
    ev = rec["evidence"]
    ck = rec.get("checkpoint") or {}
    out = {"key": rec["key"], "test": rec.get("test"), "nodeid": rec.get("nodeid"),
           "checkpoint_label": ck.get("label"), "checkpoint_series": ck.get("series"),
           "checkpoint_step": ck.get("step"), "checkpoint_order": ck.get("order")}
    out.update(_slim_evidence(ev))
    out["model"] = {k: (ev.get("model") or {}).get(k) for k in ("spec", "checkpoint", "backend")}
    return out


def check_can_save(folder: Path, name: str, overwrite: bool) -> Path:
    """Fail early (before the run) when saving would overwrite an existing baseline."""
    target = Path(folder) / check_name(name)
    existing = sorted(target.glob("*.json")) if target.is_dir() else []
    if existing and not overwrite:
        raise MiAssertInputError(
            f"baseline {name!r} already exists in {target} ({len(existing)} file(s)); nothing "
            "was overwritten. Pass --mi-baseline-overwrite to replace it, or save under a new "
            "name (e.g. --mi-save-baseline " + name + "-v2)")
    ensure_writable_dir(target, "baseline directory")
    return target


def save_baseline(folder: Path, name: str, records: Iterable[Mapping[str, Any]],
                  overwrite: bool = False) -> list[Path]:
    """Write one JSON per model (spec + checkpoint hash); returns the files written."""
    target = check_can_save(folder, name, overwrite=True) if overwrite else Path(folder) / check_name(name)
    target.mkdir(parents=True, exist_ok=True)
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for rec in dedupe_keys(sort_records(dict(r) for r in records)):
        s = slim(rec)
        groups.setdefault((str(s["model"]["spec"]), str(s["model"]["checkpoint"])), []).append(s)
    specs = [spec for spec, _ in groups]
    written = []
    for (spec, ckpt), recs in sorted(groups.items()):
        slug = model_slug(spec)
        if specs.count(spec) > 1:  # same spec, different weights within one run
            slug = f"{slug}-{ckpt[:8]}"
        doc = {"kind": BASELINE_KIND, "schema_version": REPORT_SCHEMA_VERSION, "name": name,
               "model": dict(recs[0]["model"]),
               "records": sorted(recs, key=lambda r: (r["key"], str(r["checkpoint_series"]),
                                                      str(r["checkpoint_label"])))}
        written.append(atomic_write_text(target / f"{slug}.json",
                                         json.dumps(doc, indent=1, sort_keys=True) + "\n"))
    return written


def available_baselines(folder: Path) -> list[str]:
    return sorted(p.name for p in Path(folder).glob("*") if p.is_dir() and any(p.glob("*.json")))


def load_baseline(folder: Path, name: str) -> list[dict[str, Any]]:
    """All records of baseline ``name``; clear errors for missing, corrupt or foreign files."""
    target = Path(folder) / check_name(name)
    files = sorted(target.glob("*.json")) if target.is_dir() else []
    if not files:
        names = available_baselines(folder)
        raise MiAssertInputError(
            f"baseline {name!r} not found in {folder}"
            + (f"; available: {', '.join(names)}" if names else " (no baselines saved there yet)")
            + ". Save one with --mi-save-baseline NAME, or point --mi-baseline-dir at the right folder")
    records: list[dict[str, Any]] = []
    for path in files:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise MiAssertInputError(
                f"baseline file {path} is not valid JSON (line {exc.lineno}, column {exc.colno}: "
                f"{exc.msg}); restore it from version control or re-save with "
                "--mi-save-baseline NAME --mi-baseline-overwrite") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise MiAssertInputError(f"baseline file {path} cannot be read: {exc}") from exc
        check_document(doc, BASELINE_KIND, f"baseline file {path}")
        for rec in doc["records"]:
            rec = dict(rec)
            rec.setdefault("model", doc.get("model") or {})
            rec["source"] = path.name
            records.append(rec)
    return records
