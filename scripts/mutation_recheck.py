"""Re-check mutmut's surviving mutants against the pinned-output tests, in one process.

mutmut runs every mutant against the tests that reach its function, one pytest process per
mutant; for the mutants that survive that is the slow part (every covering test runs to the
end). The pinned-output tests (``tests/*/test_*snapshot.py``, see ``tests/snapshot.py``) are
plain functions of fixed inputs, so a survivor can be re-checked by switching it on with
mutmut's own trampoline (``MUTANT_UNDER_TEST``) and rendering every case: a mutant whose
output differs from the unmutated output fails its snapshot test, i.e. it is killed.

    python scripts/mutation_recheck.py [MUTANTS_DIR] [SURVIVORS] [OUT]

``MUTANTS_DIR`` (default ``mutants``) is the folder ``scripts/mutation.sh`` left;
``SURVIVORS`` (default ``reports/mutation/survivors.txt``) a list of mutant names (its
survivors, or any mutants); ``OUT`` (default ``reports/mutation/recheck.json``) gets
``{mutant: [the first case that changed]}`` (empty list: not killed). Only the cases that reach
the mutated function run (recorded in one unmutated pass, as mutmut's stats run does), and a
mutant stops at the first case it changes. The unmutated output is rendered from the same copy, so the copy may come from
an older commit than the tests, as long as every case runs on it.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: seconds one mutant may take over all its cases (unmutated: under 10 s for every case)
TIMEOUT_S = 60
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


def _render_one(case: Callable[[], Any], jsonable: Callable[[Any], Any]) -> str:
    try:
        return json.dumps(jsonable(case()), sort_keys=True, default=str)
    except MutantTimeout:
        raise
    except Exception as exc:  # noqa: BLE001 - a mutant that raises changed the output
        return f"raised {type(exc).__name__}: {exc}"


class MutantTimeout(Exception):
    """A mutant ran past its time (e.g. a loop whose exit condition was mutated)."""


def _on_alarm(signum: int, frame: object) -> None:
    raise MutantTimeout


def _function_of(name: str) -> str:
    """``pkg.mod.x_fn__mutmut_12`` / ``pkg.mod.x_fn__mutmut_orig`` -> ``pkg.mod.x_fn``."""
    return name.rsplit("__mutmut_", 1)[0]


def main(mutants: Path, names_file: Path, out: Path) -> int:
    # the mutated package from MUTANTS_DIR, the tests from this tree (mutants/ has its own copy)
    tests_only = Path(tempfile.mkdtemp(prefix="mutation-recheck-"))
    (tests_only / "tests").symlink_to(ROOT / "tests")
    sys.path[:0] = [str(tests_only), str(mutants.resolve())]
    os.environ["MUTANT_UNDER_TEST"] = ""
    import mutmut.__main__ as mutmut_main

    import mi_assert

    if not Path(mi_assert.__file__).resolve().is_relative_to(mutants.resolve()):
        raise SystemExit(f"mi_assert imported from {mi_assert.__file__}, not from {mutants}")
    from tests.snapshot import jsonable

    cases = {f"{key}/{name}": case for key, mod in SNAPSHOT_MODULES.items()
             for name, case in importlib.import_module(mod).CASES.items()}
    # one unmutated pass records which functions each case reaches (mutmut's "stats" mode)
    reached: dict[str, set[str]] = {}
    hits: set[str] = set()
    mutmut_main.record_trampoline_hit = lambda name: hits.add(_function_of(name))
    unmutated = {}
    os.environ["MUTANT_UNDER_TEST"] = "stats"
    for key, case in cases.items():
        hits.clear()
        unmutated[key] = _render_one(case, jsonable)
        reached[key] = set(hits)
    os.environ["MUTANT_UNDER_TEST"] = ""
    names = [line.split("\t")[-1].strip() for line in names_file.read_text().splitlines()
             if line.strip()]
    changed: dict[str, list[str]] = {}
    for i, name in enumerate(names):
        function = _function_of(name)
        relevant = [key for key in cases if function in reached[key]
                    and key.split("/")[0] in _cases_for(name)]
        os.environ["MUTANT_UNDER_TEST"] = name
        changed[name] = []
        timed_out = False
        signal.signal(signal.SIGALRM, _on_alarm)
        signal.alarm(TIMEOUT_S)
        try:
            for key in relevant:  # the first changed case kills it
                if _render_one(cases[key], jsonable) != unmutated[key]:
                    changed[name].append(key)
                    break
        except MutantTimeout:
            timed_out = True  # counted as not killed, as scripts/mutation.sh counts timeouts
        finally:
            signal.alarm(0)
            os.environ["MUTANT_UNDER_TEST"] = ""
        status = ("timeout" if timed_out else "killed" if changed[name]
                  else "alive" if relevant else "not reached")
        print(f"{i + 1}/{len(names)} {status} {name}", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(changed, indent=1, ensure_ascii=False) + "\n")
    alive = sum(1 for v in changed.values() if not v)
    print(f"{len(names) - alive} of {len(names)} mutants killed by the pinned outputs; "
          f"{alive} not: {out}")
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    sys.exit(main(Path(args[0]) if args else ROOT / "mutants",
                  Path(args[1]) if len(args) > 1 else ROOT / "reports/mutation/survivors.txt",
                  Path(args[2]) if len(args) > 2 else ROOT / "reports/mutation/recheck.json"))
