"""What a reader sees first, and how claims group: shared by the HTML page and the terminal.

Sections, in reading order: claims that failed without their test expecting it, regressions
against the baseline, tests skipped for missing weights, passes, then expected failures
(``pytest.raises`` / strict xfail), collapsed. Within a section claims group by suite file →
model → test. Every claim has a stable anchor id (from its key and checkpoint), so a link to a
claim survives reruns.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mi_assert.report.readout import is_expected_failure

#: (family, words that mark it in a claim's metric or claim text), first match wins
_FAMILIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("search", ("least margin", "counterexample")),
    ("edges", ("edge",)),
    ("sae", ("sae", "latent", "explained variance", "ce loss", "mmcs", "feature")),
    ("lens", ("lens",)),
    ("invariance", ("invariant", "directional", "under transform")),
    ("causal", ("recovery", "faithful", "marginal effect", "patching", "circuit", "logit_diff",
                "minimal", "complete")),
    ("heads", ("head", "induction", "previous-token", "duplicate-token", "attention", "bos",
               "ov ", "copying")),
)

SECTIONS = ("unexpected", "regressed", "missing_weights", "passed", "expected")
SECTION_TITLES = {
    "unexpected": "Failed claims",
    "regressed": "Regressions against the baseline",
    "missing_weights": "Skipped for missing weights",
    "passed": "Passed claims",
    "expected": "Expected failures (pytest.raises / xfail)",
}


def anchor_id(rec: Mapping[str, Any]) -> str:
    """Stable id of a record: its key and checkpoint, hashed (the same claim, same id, next run)."""
    ck = rec.get("checkpoint") or {}
    ident = f"{rec.get('key')}|{ck.get('series') or ''}|{ck.get('label') or ''}"
    return "c-" + hashlib.sha1(ident.encode()).hexdigest()[:12]


def family_of(ev: Mapping[str, Any]) -> str:
    """The claim family (heads, causal, sae, edges, search, ...): stated in the settings, else
    read off the metric and claim text."""
    stated = (ev.get("settings") or {}).get("family")
    if stated:
        return str(stated)
    text = f"{ev.get('metric', '')} {ev.get('claim', '')}".lower()
    for name, words in _FAMILIES:
        if any(w in text for w in words):
            return name
    return "other"


def suite_of(rec: Mapping[str, Any]) -> str:
    return str(rec.get("nodeid") or "").split("::")[0] or "(outside a test)"


def test_of(rec: Mapping[str, Any]) -> str:
    """The test function (parametrisation dropped: checkpoints of one test group together)."""
    parts = str(rec.get("nodeid") or "").split("::")
    return parts[-1].split("[")[0] if len(parts) > 1 else parts[0]


def model_of(rec: Mapping[str, Any]) -> str:
    model = rec["evidence"].get("model") or {}
    spec = str(model.get("spec") or "?")
    ck = rec.get("checkpoint") or {}
    series = ck.get("series")
    return str(series) if series and spec.startswith(str(series)) else spec


def section_of(rec: Mapping[str, Any]) -> str:
    if rec["evidence"].get("passed"):
        return "passed"
    return "expected" if is_expected_failure(rec) else "unexpected"


@dataclass
class Group:
    """Claims of one suite file, model and test (``records`` in report order)."""

    suite: str
    model: str
    test: str
    records: list[Mapping[str, Any]] = field(default_factory=list)


def grouped(records: Iterable[Mapping[str, Any]]) -> list[Group]:
    """Suite file → model → test, each in order of first appearance (records come sorted)."""
    groups: dict[tuple[str, str, str], Group] = {}
    for rec in records:
        k = (suite_of(rec), model_of(rec), test_of(rec))
        if k not in groups:
            groups[k] = Group(*k)
        groups[k].records.append(rec)
    return sorted(groups.values(), key=lambda g: (g.suite, g.model, g.test))


def by_section(records: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    out: dict[str, list[Mapping[str, Any]]] = {"unexpected": [], "passed": [], "expected": []}
    for rec in records:
        out[section_of(rec)].append(rec)
    return out


def missing_weights(meta: Mapping[str, Any]) -> list[dict[str, str]]:
    """Tests skipped (or failed, under ``--mi-require-models``) for weights not on this machine."""
    rows = meta.get("missing_weights") or []
    return sorted(({"nodeid": str(r.get("nodeid")), "model": str(r.get("model")),
                    "outcome": str(r.get("outcome") or "skipped")} for r in rows
                   if isinstance(r, Mapping)), key=lambda r: r["nodeid"])


def regressions(comparison: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    return [r for r in (comparison or {}).get("rows") or [] if r.get("status") == "REGRESSED"]
