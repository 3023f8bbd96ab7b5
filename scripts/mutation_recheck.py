"""Re-check mutmut's surviving mutants against the pinned-output tests, in one process.

mutmut runs every mutant against the tests that reach its function, one pytest process per
mutant; for the mutants that survive that is the slow part (every covering test runs to the
end). The pinned-output tests (``tests/*/test_*snapshot.py``, see ``tests/snapshot.py``) are
plain functions of fixed inputs, so a survivor can be re-checked by switching it on with
mutmut's own trampoline (``MUTANT_UNDER_TEST``) and rendering every case: a mutant whose
output differs from the unmutated output fails its snapshot test, i.e. it is killed.

    python scripts/mutation_recheck.py [MUTANTS_DIR] [SURVIVORS] [OUT]

``MUTANTS_DIR`` (default ``mutants``) is the folder ``scripts/mutation.sh`` left;
``SURVIVORS`` (default ``reports/mutation/survivors.txt``) its survivors list; ``OUT`` (default
``reports/mutation/recheck.json``) gets ``{mutant: [the cases that changed]}`` (empty list:
still alive). The unmutated output is rendered from the same copy, so the copy may come from
an older commit than the tests, as long as every case runs on it.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SNAPSHOT_MODULES = {
    "engine": "tests.stats.test_engine_snapshot",
    "report": "tests.report.test_report_snapshot",
    "sae": "tests.sae.test_sae_statistics_snapshot",
    "metrics": "tests.causal.test_metrics_snapshot",
}


def _cases_for(mutant: str) -> list[str]:
    """Which pinned case groups can reach a mutant's module (all of them for the engine)."""
    if mutant.startswith(("mi_assert.stats", "mi_assert.verdict", "mi_assert.comparison")):
        return ["engine", "report", "sae"]
    if mutant.startswith("mi_assert.report"):
        return ["report"]
    if mutant.startswith(("mi_assert.sae", "mi_assert.causal.recovery")):
        return ["sae"]
    if mutant.startswith("mi_assert.causal.metrics"):
        return ["metrics"]
    return list(SNAPSHOT_MODULES)


def _render(cases: dict[str, dict[str, Callable[[], Any]]], groups: list[str],
            jsonable: Callable[[Any], Any]) -> dict[str, str]:
    out = {}
    for group in groups:
        for name, case in cases[group].items():
            try:
                out[f"{group}/{name}"] = json.dumps(jsonable(case()), sort_keys=True, default=str)
            except Exception as exc:  # noqa: BLE001 - a mutant that raises changed the output
                out[f"{group}/{name}"] = f"raised {type(exc).__name__}: {exc}"
    return out


def main(mutants: Path, survivors: Path, out: Path) -> int:
    # the mutated package from MUTANTS_DIR, the tests from this tree (mutants/ has its own copy)
    tests_only = Path(tempfile.mkdtemp(prefix="mutation-recheck-"))
    (tests_only / "tests").symlink_to(ROOT / "tests")
    sys.path[:0] = [str(tests_only), str(mutants.resolve())]
    os.environ["MUTANT_UNDER_TEST"] = ""
    import mi_assert

    if not Path(mi_assert.__file__).resolve().is_relative_to(mutants.resolve()):
        raise SystemExit(f"mi_assert imported from {mi_assert.__file__}, not from {mutants}")
    from tests.snapshot import jsonable

    cases = {key: importlib.import_module(mod).CASES for key, mod in SNAPSHOT_MODULES.items()}
    unmutated = _render(cases, list(SNAPSHOT_MODULES), jsonable)
    names = [line.split("\t")[-1].strip() for line in survivors.read_text().splitlines()
             if line.strip()]
    changed: dict[str, list[str]] = {}
    for i, name in enumerate(names):
        os.environ["MUTANT_UNDER_TEST"] = name
        try:
            got = _render(cases, _cases_for(name), jsonable)
        finally:
            os.environ["MUTANT_UNDER_TEST"] = ""
        changed[name] = [key for key, value in got.items() if value != unmutated[key]]
        status = "killed" if changed[name] else "alive"
        print(f"{i + 1}/{len(names)} {status} {name}", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(changed, indent=1, ensure_ascii=False) + "\n")
    alive = sum(1 for v in changed.values() if not v)
    print(f"{len(names) - alive} of {len(names)} survivors killed by the pinned outputs; "
          f"{alive} alive: {out}")
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    sys.exit(main(Path(args[0]) if args else ROOT / "mutants",
                  Path(args[1]) if len(args) > 1 else ROOT / "reports/mutation/survivors.txt",
                  Path(args[2]) if len(args) > 2 else ROOT / "reports/mutation/recheck.json"))
