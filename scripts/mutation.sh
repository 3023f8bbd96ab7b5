#!/usr/bin/env bash
# Mutation testing of the statistics core and the verdict paths with mutmut 3.x
# (docs/mutation.md). Config: [tool.mutmut] in pyproject.toml; the mutants run are the ones
# whose names match PATTERNS below.
#
#   bash scripts/mutation.sh                      # everything (about 1 h on 2 cores)
#   bash scripts/mutation.sh 'mi_assert.stats.*'  # only the mutants matching these patterns
#   MUTATION_RESUME=1 bash scripts/mutation.sh    # finish an interrupted run (same patterns)
#
# Env: MUTATION_JOBS (parallel mutants, default 2), MUTATION_OUT (default reports/mutation),
# MUTATION_RESUME=1 (keep mutants/ and its results, run only the mutants without a result),
# PYTHON (default .venv/bin/python). Writes $MUTATION_OUT/summary.txt (the score per module),
# survivors.txt (one "status<TAB>mutant" line per mutant not killed), survivors.diff (their
# diffs) and results.json. Exit status 0 when the run completed, whatever the score.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-$ROOT/.venv/bin/python}
OUT=${MUTATION_OUT:-$ROOT/reports/mutation}
JOBS=${MUTATION_JOBS:-2}
"$PY" -c "import mutmut" 2>/dev/null || "$PY" -m pip install -q "mutmut==3.3.1"

# Mutant names are <module>.x_<function>__mutmut_<n> or <module>.xǁ<Class>ǁ<method>__mutmut_<n>.
PATTERNS=(
    'mi_assert.stats.*'
    'mi_assert.verdict.*'
    'mi_assert.comparison.*'
    'mi_assert.report.compare.*'
    'mi_assert.report.readout.*'
    'mi_assert.causal.recovery.*'
    'mi_assert.sae.resample.*'
    # causal/metrics.py: the per-prompt metric values (not names, factories, position checks)
    'mi_assert.causal.metrics.xǁMetricǁselect*'
    'mi_assert.causal.metrics.xǁMetricǁ__call__*'
    'mi_assert.causal.metrics.x*ǁat_position*'
    'mi_assert.causal.metrics.xǁKLToCleanǁ__init__*'
    'mi_assert.causal.metrics.x__gather*'
    'mi_assert.causal.metrics.x_metric_for_prompts*'
    'mi_assert.causal.metrics.x_evaluate_metric*'
    # sae/metrics.py: the statistics (not SAE loading, hooks, descriptions)
    'mi_assert.sae.metrics.x_explained_variances*'
    'mi_assert.sae.metrics.x_reconstruction_samples*'
    'mi_assert.sae.metrics.x_per_token_ce*'
    'mi_assert.sae.metrics.x_ce_recovered*'
    'mi_assert.sae.metrics.x_ce_per_prompt*'
    'mi_assert.sae.metrics.x_max_cosine_per_feature*'
    'mi_assert.sae.metrics.x_clean_sae_zero*'
)
if [ "$#" -gt 0 ]; then PATTERNS=("$@"); fi

# One thread per process (mutants run in forked children: 2 cores, 2 children); the mutated copy
# under mutants/ comes first on every path, also for the tests' subprocesses (else they would
# import the editable install, the unmutated code).
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MPLBACKEND=Agg
# A test's subprocess started during the stats run must run the original code: mutmut's stats
# hook needs the config only the mutmut process has (the sitecustomize below clears the mode).
export PYTHONPATH="$ROOT/mutants:$ROOT/mutants/.site${PYTHONPATH:+:$PYTHONPATH}"
export MI_ASSERT_REPORTS="$ROOT/mutants/reports"

# a fresh run unless resuming (stale stats would map functions to the wrong tests); mutants/
# must exist before Python starts, or the import system caches the PYTHONPATH entry as missing
RESUME=${MUTATION_RESUME:-0}
if [ "$RESUME" != 1 ] || [ ! -f mutants/mutmut-stats.json ]; then RESUME=0; rm -rf mutants; fi
mkdir -p mutants/.site "$OUT"
cat > mutants/.site/sitecustomize.py <<'PY'
import os

if os.environ.get("MUTANT_UNDER_TEST") == "stats":
    os.environ["MUTANT_UNDER_TEST"] = ""
PY
start=$(date +%s)
set +e
"$PY" - "$JOBS" "$RESUME" "${PATTERNS[@]}" <<'PY'
"""Run mutmut with three fixes for mutmut 3.3.1:

* the stats run records each test's duration as its *teardown* time only (the last phase
  overwrites the others); mutmut derives every mutant's timeout from these, so slow tests
  made survivors look like timeouts. Here each test's duration is setup + call + teardown.
* tests_dir entries that are paths and do not exist are dropped (older checkouts).
* a child killed by the hard CPU limit exits -9, which mutmut has no status for: timeout.
* its stats collector reads ``item._nodeid``, which pytest 9 no longer has (``item.nodeid``).
* an exit status it has no name for (a child ended by a signal, e.g. -15) aborts the whole
  run: here it is "suspicious" (-9, the hard CPU limit: "timeout").
* resuming: mutmut rewrites every result file when it regenerates the mutants; here the
  results are read first, only the mutants without one run, and the old results are put back.
* its wall-clock timeout checker compares every running child of a file against the estimate
  of *each* mutant of that file, so any child outliving the cheapest mutant's limit (15 s for
  a function with no or fast tests) is killed as a "timeout". Here each child is held to its
  own mutant's limit, (estimate + 1) * 15 s, as mutmut intends.
"""
import collections
import contextlib
import fnmatch
import json
import os
import signal
import sys
import time
from datetime import datetime
from pathlib import Path

import mutmut
import mutmut.__main__ as mm
from _pytest.nodes import Node

if not hasattr(Node, "_nodeid"):
    Node._nodeid = property(lambda self: self.nodeid)

jobs, resume, patterns = sys.argv[1], sys.argv[2] == "1", sys.argv[3:]


class Statuses(dict):
    def __missing__(self, code):
        return "suspicious"


mm.status_by_exit_code = Statuses({**mm.status_by_exit_code, -9: "timeout", 137: "timeout"})

_load_config = mm.load_config


def load_config():
    config = _load_config()
    config.tests_dir = [t for t in config.tests_dir
                        if not t.startswith("tests") or "::" in t or Path(t).exists()]
    return config


mm.load_config = load_config
_execute = mm.PytestRunner.execute_pytest


def execute_pytest(self, params, **kwargs):
    if os.environ.get("MUTANT_UNDER_TEST") != "stats":
        return _execute(self, params, **kwargs)
    totals = collections.defaultdict(float)

    class Durations:
        def pytest_runtest_logreport(self, report):
            totals[report.nodeid] += report.duration

    kwargs["plugins"] = [*kwargs.get("plugins", []), Durations()]
    code = _execute(self, params, **kwargs)
    mutmut.duration_by_test.update(totals)
    return code


mm.PytestRunner.execute_pytest = execute_pytest


def timeout_checker(mutants):
    files = list({id(m): m for m, _, _ in mutants}.values())

    def check():
        while True:
            time.sleep(1)
            now = datetime.now()
            for m in files:
                with mm.START_TIMES_BY_PID_LOCK:
                    started, keys = dict(m.start_time_by_pid), dict(m.key_by_pid)
                for pid, start in started.items():
                    key = keys.get(pid)
                    limit = (m.estimated_time_of_tests_by_mutant.get(key, 0.0) + 1) * 15
                    if key is not None and (now - start).total_seconds() > limit:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGXCPU)
    return check


mm.timeout_checker = timeout_checker


def read_results():
    return {meta: json.loads(meta.read_text())["exit_code_by_key"]
            for meta in Path("mutants").rglob("*.py.meta")}


names = patterns
if resume:
    before = read_results()
    names = [name for codes in before.values() for name, code in codes.items()
             if code in (None, 2) and any(fnmatch.fnmatch(name, p) for p in patterns)]
    print(f"resuming: {len(names)} mutants without a result")
try:
    if names:
        mm.cli.main(args=["run", "--max-children", jobs, *names], prog_name="mutmut",
                    standalone_mode=False)
finally:
    if resume:
        for meta in Path("mutants").rglob("*.py.meta"):
            data = json.loads(meta.read_text())
            for name, code in before.get(meta, {}).items():
                if code not in (None, 2) and data["exit_code_by_key"].get(name) is None:
                    data["exit_code_by_key"][name] = code
            meta.write_text(json.dumps(data, indent=4))
PY
rc=$?
set -e
wall=$(( $(date +%s) - start ))
if [ "$rc" -ne 0 ]; then echo "mutmut failed (exit $rc) after ${wall}s" >&2; exit "$rc"; fi

"$PY" - "$OUT" "$wall" "${PATTERNS[@]}" <<'PY'
"""Score per module from mutmut's result files (mutants/**/*.py.meta)."""
import collections
import difflib
import fnmatch
import json
import sys
from pathlib import Path

import mutmut.__main__ as mm

out, wall, patterns = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
out.mkdir(parents=True, exist_ok=True)
UNTESTED = ("no tests", "skipped", "not checked")
mm.ensure_config_loaded()
status_of = dict(mm.status_by_exit_code)
status_of.update({-9: "timeout", 137: "timeout"})
results = {}
for meta in sorted(Path("mutants").rglob("*.py.meta")):
    for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
        if any(fnmatch.fnmatch(name, p) for p in patterns):
            results[name] = status_of.get(code, f"exit {code}")


def module(name):
    return name.split(".x_")[0].split(".xǁ")[0]


by_module = collections.defaultdict(collections.Counter)
for name, status in results.items():
    by_module[module(name)][status] += 1
lines = [f"mutation score = killed / tested (tested: all but 'no tests', 'skipped', 'not "
         f"checked'; a timeout counts as not killed); wall {wall}s",
         f"{'module':<28} {'total':>5} {'killed':>6} {'surv':>5} {'t/o':>4} {'no-t':>4}  score"]
total = collections.Counter()
for mod, c in sorted(by_module.items()):
    total.update(c)
    n, tested = sum(c.values()), sum(c.values()) - sum(c[s] for s in UNTESTED)
    score = f"{100 * c['killed'] / tested:5.1f}%" if tested else "   -"
    lines.append(f"{mod:<28} {n:>5} {c['killed']:>6} {c['survived']:>5} {c['timeout']:>4} "
                 f"{c['no tests']:>4}  {score}")
n, tested = sum(total.values()), sum(total.values()) - sum(total[s] for s in UNTESTED)
lines.append(f"{'TOTAL':<28} {n:>5} {total['killed']:>6} {total['survived']:>5} "
             f"{total['timeout']:>4} {total['no tests']:>4}  "
             f"{100 * total['killed'] / max(tested, 1):5.1f}%")
other = {s: k for s, k in total.items() if s not in ("killed", "survived", "timeout", "no tests")}
if other:
    lines.append(f"other statuses: {other}")
summary = "\n".join(lines)
print(summary)
(out / "summary.txt").write_text(summary + "\n")
left = sorted(n for n, s in results.items() if s != "killed")
(out / "survivors.txt").write_text("".join(f"{results[n]}\t{n}\n" for n in left))
# mutmut's get_diff_for_mutant re-parses the whole file per mutant (minutes for hundreds):
# parse each mutated file once
path_of = {}
for meta in Path("mutants").rglob("*.py.meta"):
    for name in json.loads(meta.read_text())["exit_code_by_key"]:
        path_of[name] = Path(str(meta.relative_to("mutants"))[:-len(".meta")])
parsed = {}
diffs = []
for name in left:
    path = path_of[name]
    if path not in parsed:
        parsed[path] = mm.read_mutants_module(path)
    module = parsed[path]
    orig = mm.cst.Module([mm.read_original_function(module, name)]).code.strip()
    mutant = mm.cst.Module([mm.read_mutant_function(module, name)]).code.strip()
    diff = "\n".join(difflib.unified_diff(orig.split("\n"), mutant.split("\n"), str(path),
                                          str(path), lineterm=""))
    diffs.append(f"# {name}: {results[name]}\n{diff}\n\n")
(out / "survivors.diff").write_text("".join(diffs))
(out / "results.json").write_text(json.dumps(
    {"wall_s": wall, "patterns": patterns, "status": results}, indent=1, ensure_ascii=False))
print(f"{len(left)} not killed: {out / 'survivors.txt'} (diffs: {out / 'survivors.diff'})")
PY
