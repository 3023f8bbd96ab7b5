"""pytest glue: options, markers, fixtures, hooks and the terminal summary.

Everything scientific lives in plain modules; this file only translates pytest's world
(options, markers, fixtures, reports) into calls to them. Heavy libraries are imported inside
fixtures and hooks that need them, never at plugin import time, so ``pytest --help`` stays fast
for every project.

Evidence flow: ``pytest_configure`` installs one :class:`mi_assert.record.Recorder` per
session (per xdist worker), ``pytest_unconfigure`` uninstalls it; outside pytest none is
installed and nothing accumulates. Assertions call :func:`mi_assert.record.record`; the
autouse ``_mi_record_context`` fixture tags records with the running test; after each test
phase ``pytest_runtest_makereport`` drains the session's recorder into plain dicts attached to
the test report (``report.mi_records``, JSON text). Reports reach the controller both in serial
runs and from xdist workers, where :class:`MiSession` collects them and, at the end, writes the
report, saves/compares baselines and prints the tables.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

_OPTIONS: list[tuple[str, str, str | None]] = [
    ("mi_model", "model: a zoo name (mi_assert.zoo.available()), a local checkpoint folder, or a hub name", None),
    ("mi_backend", "backend: transformer_lens | bridge | nnsight (default: by what the model spec is)", None),
    ("mi_device", "device: auto (cuda when available) | cpu | cuda | cuda:N; 'cuda' under "
     "pytest -n N spreads workers over GPUs (gwK -> cuda:K mod n_gpus)", "auto"),
    ("mi_dtype", "dtype: float32 | bfloat16 | float16 | float64 (default: the checkpoint's)", None),
    ("mi_seeds", "comma-separated sampling seeds that mi_seed is parametrized over (e.g. 0,1,2)", "0,1,2"),
    ("mi_report", "directory to write report.json + a self-contained report.html to", None),
    ("mi_save_baseline", "save this run's evidence as baseline NAME (one JSON per model under "
     "--mi-baseline-dir/NAME)", None),
    ("mi_baseline_dir", "where baselines live (relative paths: to the rootdir)", ".mi_baselines"),
    ("mi_compare", "compare this run's claims with baseline NAME and print a diff table", None),
    ("mi_search_db", "where counterexample searches keep the examples that broke a claim, "
     "replayed first on the next run (the mi_search_db fixture; relative paths: to the rootdir)",
     ".mi_search_db"),
    ("mi_checkpoints", "parametrize mi_model over checkpoints: zoo spec globs "
     "(attn-only-2l-induction@s0:step*) and/or local folder globs, comma-separated", None),
]
_FLAGS: list[tuple[str, str]] = [
    ("mi_compare_fail", "with --mi-compare: fail the run when a claim regressed beyond tolerance"),
    ("mi_baseline_overwrite", "allow --mi-save-baseline to replace an existing baseline's files"),
    ("mi_require_models", "fail, instead of skip, tests whose model or SAE weights are unavailable "
     "(for CI, where a skip would hide a lost cache)"),
]

_MODEL_CACHE_KEY = pytest.StashKey[dict]()
_SWEEP_CACHE_KEY = pytest.StashKey[dict]()
_RECORDER_KEY = pytest.StashKey[tuple]()
_ITEM_RECORDS_KEY = pytest.StashKey[dict]()
_SEEDS_KEY = pytest.StashKey[list]()
_SESSION_PLUGIN = "mi-assert-session"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mi-assert", "mi-assert: mechanistic-interpretability claims")
    for name, help_text, default in _OPTIONS:
        flag = "--" + name.replace("_", "-")
        group.addoption(flag, dest=name, default=None, help=f"{help_text} [ini: {name}]")
        parser.addini(name, help=help_text, default=default)
    for name, help_text in _FLAGS:
        group.addoption("--" + name.replace("_", "-"), dest=name, action="store_true",
                        default=None, help=f"{help_text} [ini: {name}]")
        parser.addini(name, help=help_text, type="bool", default=False)
    group.addoption("--mi-tolerance", dest="mi_tolerance", action="append", default=None,
                    metavar="METRIC:TOL",
                    help="allowed drop per metric for --mi-compare (repeatable; a bare number is "
                    "the default for all metrics; default 0) [ini: mi_tolerance, one per line]")
    parser.addini("mi_tolerance", help="METRIC:TOL lines for --mi-compare", type="linelist", default=[])
    group.addoption("--mi-remote", dest="mi_remote", nargs="?", const="ndif", default=None,
                    metavar="ndif|local|URL",
                    help="run nnsight traces remotely: bare flag or 'ndif' = NDIF, 'local' = "
                    "nnsight's local simulation of the remote path, or a host URL [ini: mi_remote]")
    parser.addini("mi_remote", help="ndif | local | host URL", default=None)
    parser.addini("mi_summary", help="print the claims table at the end of the run (default true)",
                  type="bool", default=True)
    group.addoption("--mi-shard", dest="mi_shard", default=None, metavar="I/N",
                    help="run shard I of N (1-based): test files dealt out by size, the same "
                    "split on every machine; merge the reports with python -m mi_assert.report "
                    "merge")
    group.addoption("--mi-shard-allow-empty", dest="mi_shard_allow_empty", action="store_true",
                    default=False, help="with --mi-shard: let a shard that selects no tests "
                    "(fewer test files than shards) pass instead of exiting with status 5")


def get_option(config: pytest.Config, name: str) -> Any:
    """The command-line value if given, else the ini value (which holds the default)."""
    value = config.getoption(name, default=None)
    if value is None:
        value = config.getini(name) or None
    return value


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "mi_model(spec, **load_kwargs): model for the mi_model fixture in this test/module "
        "(overrides --mi-model; kwargs such as n_devices=2 or device_map go to load_model; "
        "bos_token_id= and special_token_ids= declare a tokenizer-less model's special ids)",
    )
    config.addinivalue_line("markers", "mi_seeds(*seeds): sampling seeds mi_seed is parametrized over")
    config.addinivalue_line("markers", "mi_hooks(*hooks): hooks mi_cache computes in one forward pass")
    config.addinivalue_line(
        "markers", "mi_prompts(kind='repeated', **kwargs): the prompt generator behind mi_prompts"
    )
    config.addinivalue_line(
        "markers", "mi_checkpoints(*patterns): parametrize mi_model over these checkpoints "
        "(zoo spec globs like 'attn-only-2l-induction@s0:step*' or folder globs; overrides "
        "--mi-checkpoints)")
    check_run_options(config)
    config.stash[_MODEL_CACHE_KEY] = {}
    config.stash[_SWEEP_CACHE_KEY] = {}
    _install_recorder(config)
    if not _is_worker(config) and config.pluginmanager.get_plugin(_SESSION_PLUGIN) is None:
        try:
            config.pluginmanager.register(MiSession.from_config(config), _SESSION_PLUGIN)
        except BaseException:
            _uninstall_recorder(config)
            raise


def pytest_unconfigure(config: pytest.Config) -> None:
    session_plugin = config.pluginmanager.get_plugin(_SESSION_PLUGIN)
    if session_plugin is not None:
        session_plugin.close()
        config.pluginmanager.unregister(session_plugin)
    _uninstall_recorder(config)


def _install_recorder(config: pytest.Config) -> None:
    from mi_assert import record

    if _RECORDER_KEY in config.stash:
        return
    recorder = record.Recorder()
    previous = record.current()
    config.stash[_RECORDER_KEY] = (recorder, record.install(recorder), previous)


def _uninstall_recorder(config: pytest.Config) -> None:
    from mi_assert import record

    entry = config.stash.get(_RECORDER_KEY, None)
    if entry is None:
        return
    del config.stash[_RECORDER_KEY]
    recorder, token, previous = entry
    try:
        record.uninstall(token)
    except (ValueError, RuntimeError):  # unconfigured in another context than configured
        if record.current() is recorder:
            record.install(previous)


def session_recorder(config: pytest.Config) -> Any:
    """The :class:`~mi_assert.record.Recorder` this session installed (None before configure)."""
    entry = config.stash.get(_RECORDER_KEY, None)
    return entry[0] if entry is not None else None


def _usage_error(exc: Exception) -> pytest.UsageError:
    return pytest.UsageError(f"mi-assert: {exc}")


@dataclass(eq=False)  # registered as a pluggy plugin: must stay hashable
class MiSession:
    """Controller-side state: records from every test report, and what to do at the end."""

    config: pytest.Config
    report_dir: Path | None = None
    baseline_dir: Path | None = None
    save_name: str | None = None
    overwrite: bool = False
    compare_name: str | None = None
    compare_fail: bool = False
    tolerances: dict[str, float] = field(default_factory=dict)
    baseline_records: list[dict[str, Any]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    comparison: dict[str, Any] | None = None
    messages: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    report: Any = None  # a report.session_report.SessionReport, with --mi-report
    _signals: Any = None  # the report.interrupt.SignalFlush writing it on SIGTERM/SIGINT
    _previous_sink: Any = None
    # node id -> model/SAE name, from reports tagged mi_missing_weights
    missing_skipped: dict[str, str] = field(default_factory=dict)
    missing_failed: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: pytest.Config) -> MiSession:
        """Check every report/baseline option before any test runs (clear usage errors)."""
        self = cls(config)
        report = get_option(config, "mi_report")
        save = get_option(config, "mi_save_baseline")
        compare = get_option(config, "mi_compare")
        compare_fail = bool(get_option(config, "mi_compare_fail"))
        tolerance = config.getoption("mi_tolerance", default=None) or config.getini("mi_tolerance")
        remote = get_option(config, "mi_remote")
        if compare_fail and not compare:
            raise pytest.UsageError("mi-assert: --mi-compare-fail needs --mi-compare NAME")
        try:
            if remote:
                from mi_assert.scaleout import remote_value

                remote_value(remote)
            if report:
                from mi_assert.report.atomic import ensure_writable_dir

                self.report_dir = ensure_writable_dir(_rooted(config, report, invocation=True))
            if save or compare:
                from mi_assert.report import baseline as bl

                self.baseline_dir = _rooted(config, get_option(config, "mi_baseline_dir"))
                if save:
                    self.save_name = save
                    self.overwrite = bool(get_option(config, "mi_baseline_overwrite"))
                    bl.check_can_save(self.baseline_dir, save, self.overwrite)
                if compare:
                    from mi_assert.report.compare import parse_tolerances

                    self.compare_name = compare
                    self.compare_fail = compare_fail
                    self.tolerances = parse_tolerances(tolerance or [])
                    self.baseline_records = bl.load_baseline(self.baseline_dir, compare)
        except ValueError as exc:  # MiAssertInputError
            raise _usage_error(exc) from exc
        self._install_progress_sink()
        return self

    # ----- progress --------------------------------------------------------------------------
    def _install_progress_sink(self) -> None:
        from mi_assert.report import progress

        config = self.config

        def sink(line: str) -> None:
            tr = config.pluginmanager.get_plugin("terminalreporter")
            capman = config.pluginmanager.get_plugin("capturemanager")
            if tr is None:
                print(line, file=sys.stderr, flush=True)
                return
            if capman is not None:
                with capman.global_and_fixture_disabled():
                    tr.write_line(line)
            else:
                tr.write_line(line)

        self._previous_sink = progress.set_sink(sink)

    def close(self) -> None:
        from mi_assert.report import progress

        if self._signals is not None:
            self._signals.restore()
        progress.set_sink(self._previous_sink)

    # ----- a stopped run ---------------------------------------------------------------------
    @pytest.hookimpl
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """With --mi-report: the session's report, and SIGTERM/SIGINT handlers that write it
        before the run stops (restored by :meth:`close`)."""
        if self.report_dir is None:
            return
        from mi_assert.report.interrupt import SignalFlush
        from mi_assert.report.session_report import SessionReport

        self.report = SessionReport(self.report_dir)
        self._signals = SignalFlush(self._write_on_signal)
        self._signals.install()

    def _write_on_signal(self, signal_name: str) -> None:
        self.report.write_on_signal(signal_name, self.records, self._meta(), self.comparison)

    # ----- collecting ------------------------------------------------------------------------
    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        missing = getattr(report, "mi_missing_weights", None)
        if missing is not None:
            (self.missing_failed if report.failed else self.missing_skipped)[report.nodeid] = missing
        payload = getattr(report, "mi_records", None)
        if payload:
            self.records.extend(json.loads(payload))
        if self.report is not None:
            self.report.note_crash(report)
            self.report.write_partial(self.records, self._meta())

    def _meta(self) -> dict[str, Any]:
        import mi_assert
        from mi_assert import shard

        workers = getattr(self.config.option, "numprocesses", None)
        missing = [{"nodeid": nodeid, "model": model, "outcome": outcome}
                   for outcome, by_test in (("skipped", self.missing_skipped),
                                            ("failed", self.missing_failed))
                   for nodeid, model in sorted(by_test.items())]
        return {"mi_assert": mi_assert.__version__, "workers": workers,
                "duration_s": round(time.monotonic() - self.started, 3),
                "argv": list(self.config.invocation_params.args), **shard.meta(self.config),
                "missing_weights": missing}

    # ----- the end ---------------------------------------------------------------------------
    def _collect_leftovers(self) -> None:
        """Evidence recorded outside any test phase (collection, session teardown)."""
        recorder = session_recorder(self.config)
        leftover = recorder.drain() if recorder is not None else []
        if leftover:
            from mi_assert.report.collect import to_records

            for rec in to_records(leftover):
                rec["test_outcome"] = None
                self.records.append(rec)

    @pytest.hookimpl
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        from mi_assert import shard

        self._collect_leftovers()
        shard_line = shard.finish(self.config, session)
        if shard_line is not None:
            self.messages.append(shard_line)
        if self.compare_name is not None:
            from mi_assert.report.compare import compare

            self.comparison = compare(self.baseline_records, self.records, self.tolerances,
                                      self.compare_name)
            regressed = self.comparison["counts"]["REGRESSED"]
            if regressed and self.compare_fail:
                self.messages.append(
                    f"{regressed} claim(s) REGRESSED beyond tolerance against baseline "
                    f"{self.compare_name!r}: failing the run (--mi-compare-fail)")
                if session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
                    session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if self.save_name is not None:
            from mi_assert.report.baseline import save_baseline

            interrupted = session.shouldstop or session.exitstatus in (
                pytest.ExitCode.INTERRUPTED, 143)
            if not self.records:
                self.messages.append(f"baseline {self.save_name!r} not saved: no claims were recorded")
            elif interrupted:
                # a stopped run holds only some of the suite's claims: saved, it would turn the
                # rest into "missing" rows of every later comparison
                self.messages.append(f"baseline {self.save_name!r} not saved: the run was stopped "
                                     "before it finished; rerun it to completion to save")
            else:
                assert self.baseline_dir is not None
                files = save_baseline(self.baseline_dir, self.save_name, self.records, self.overwrite)
                n_failed = sum(1 for r in self.records if not r["evidence"].get("passed"))
                self.messages.append(
                    f"baseline {self.save_name!r} saved: {len(self.records)} claim(s) in "
                    f"{len(files)} file(s) under {files[0].parent}"
                    + (f" (note: {n_failed} of them FAILED in this run)" if n_failed else ""))
        if self.report is not None:
            from mi_assert.report.session_report import exit_status_when_unwritten

            message, written = self.report.write_final(
                self.records, self._meta(), self.comparison,
                pytest_interrupted=session.exitstatus == pytest.ExitCode.INTERRUPTED)
            self.messages.append(message)
            if not written:
                session.exitstatus = exit_status_when_unwritten(session.exitstatus)

    @pytest.hookimpl
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        from mi_assert.report.schema import sort_records
        from mi_assert.report.summary import summary_lines

        lines = summary_lines(sort_records(self.records))
        if lines and terminalreporter.config.getini("mi_summary"):
            terminalreporter.write_sep("=", "mi-assert claims")
            for line in lines:
                terminalreporter.write_line(line)
        if self.comparison is not None:
            from mi_assert.report.compare import format_table

            terminalreporter.write_sep("=", f"mi-assert compare with baseline {self.compare_name!r}")
            for line in format_table(self.comparison):
                terminalreporter.write_line(line)
        for message in self.messages:
            terminalreporter.write_line(f"mi-assert: {message}")
        terminalreporter.write_line(self._totals_line())

    def _totals_line(self) -> str:
        """Always printed, last: the claims' totals and the tests skipped for missing weights
        (a green run whose models were absent checked nothing)."""
        from mi_assert.report.summary import totals_line

        n_skipped = len(self.missing_skipped)
        line = (f"mi-assert: {totals_line(self.records)}; {_tests(n_skipped)} skipped for "
                "missing weights")
        if n_skipped:
            line += f" ({_names(self.missing_skipped)}); --mi-require-models makes them fail"
        if self.missing_failed:
            line += (f"; {_tests(len(self.missing_failed))} failed for missing weights "
                     f"({_names(self.missing_failed)}) under --mi-require-models")
        return line


def _tests(n: int) -> str:
    return f"{n} test" if n == 1 else f"{n} tests"


def _names(by_test: dict[str, str], shown: int = 5) -> str:
    names = sorted(set(by_test.values()))  # xdist workers finish in any order
    more = f", ... (+{len(names) - shown} more)" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def _rooted(config: pytest.Config, path: str, invocation: bool = False) -> Path:
    p = Path(path).expanduser()
    if p.is_absolute():
        return p
    return (config.invocation_params.dir if invocation else config.rootpath) / p


# ----- option checks -----------------------------------------------------------------------

_SEEDS_FORM = "comma-separated distinct non-negative integers, e.g. 0,1,2"
_DEVICE_FORM = "auto, cpu, cuda, cuda:N"


def check_run_options(config: pytest.Config) -> None:
    """Check the options every test reads before any test runs: a bad value is one usage error
    at startup instead of a setup error repeated per test (or, for seeds, a run that checks
    nothing). Torch is imported only when a dtype or a non-cpu device is asked for."""
    config.stash[_SEEDS_KEY] = parse_seeds(_seeds_value(config), _option_source(config, "mi_seeds"))
    _check_choice(config, "mi_backend", "backend", _backend_names)
    _check_choice(config, "mi_dtype", "dtype", _dtype_names)
    _check_device(config)
    _check_shard(config)


def _check_shard(config: pytest.Config) -> None:
    from mi_assert.shard import configure

    try:
        configure(config)
    except ValueError as exc:  # MiAssertInputError
        raise _usage_error(exc) from exc


@pytest.hookimpl(trylast=True)  # after -k / -m deselection: shards split what would run
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from mi_assert import shard

    shard.apply(config, items)


@pytest.hookimpl(optionalhook=True)  # pytest-xdist: a worker's shard plan reaches the controller
def pytest_testnodedown(node: Any, error: Any) -> None:
    from mi_assert import shard

    shard.receive_worker_plan(node)


def _option_source(config: pytest.Config, name: str) -> str:
    """How messages name an option: the flag when given on the command line, else the ini key."""
    if config.getoption(name, default=None) is not None:
        return "--" + name.replace("_", "-")
    return f"ini {name}"


def _seeds_value(config: pytest.Config) -> Any:
    # not get_option: an empty ini value must be an error, not the default
    value = config.getoption("mi_seeds", default=None)
    return config.getini("mi_seeds") if value is None else value


def _backend_names() -> tuple[str, ...]:
    from mi_assert.backends import BACKENDS

    return BACKENDS


def _dtype_names() -> tuple[str, ...]:
    from mi_assert.loading import DTYPES

    return tuple(DTYPES)


def _check_choice(config: pytest.Config, name: str, what: str,
                  allowed: Callable[[], Sequence[str]]) -> None:
    value = get_option(config, name)
    if value is None:
        return
    names = allowed()
    if value not in names:
        from mi_assert.errors import suggest

        raise pytest.UsageError(
            f"mi-assert: {_option_source(config, name)} {value!r} is not a known {what}; "
            f"allowed: {', '.join(names)}.{suggest(str(value), names)}")


def _check_device(config: pytest.Config) -> None:
    value = get_option(config, "mi_device")
    if value is None or value in ("auto", "cpu"):
        return
    import torch

    from mi_assert.errors import suggest

    source = _option_source(config, "mi_device")
    try:
        device = torch.device(value)
    except (RuntimeError, ValueError) as exc:
        raise pytest.UsageError(
            f"mi-assert: {source} {value!r} is not a device; allowed: {_DEVICE_FORM}."
            f"{suggest(str(value), ('auto', 'cpu', 'cuda'))}") from exc
    if device.type != "cuda":  # mps, xpu, ...: torch checks them when the model is placed
        return
    n_gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if n_gpus == 0:
        raise pytest.UsageError(
            f"mi-assert: {source} {value!r} asks for CUDA, but CUDA is not available here; "
            "use auto or cpu")
    if device.index is not None and device.index >= n_gpus:
        raise pytest.UsageError(
            f"mi-assert: {source} {value!r}: this host has {n_gpus} GPU(s); allowed: auto, cpu, "
            f"cuda, cuda:0 .. cuda:{n_gpus - 1}")


def parse_seeds(value: Any, source: str = "--mi-seeds") -> list[int]:
    """Seeds from a comma-separated string or a sequence of integers.

    Anything else is a :class:`pytest.UsageError` naming ``source``, the value and the allowed
    form: no seeds would skip every ``mi_seed`` test, and a dropped or repeated seed would
    quietly change how many draws a claim rests on.
    """
    items = list(value) if isinstance(value, (list, tuple)) else str(value).split(",")
    seeds = [_seed(item) for item in items]
    problem = _seeds_problem(items, seeds)
    if problem is not None:
        raise pytest.UsageError(
            f"mi-assert: {source} must be {_SEEDS_FORM}; got {value!r} ({problem})")
    return [seed for seed in seeds if seed is not None]


def _seed(item: Any) -> int | None:
    """``item`` as a seed; None when it is not a non-negative integer."""
    if isinstance(item, bool):
        return None
    if isinstance(item, int):
        return item if item >= 0 else None
    text = str(item).strip()
    return int(text) if text.isascii() and text.isdigit() else None


def _seeds_problem(items: list[Any], seeds: list[int | None]) -> str | None:
    if not any(str(item).strip() for item in items):
        return "no seeds"
    for item, seed in zip(items, seeds, strict=True):
        if seed is None:
            return "an empty entry" if not str(item).strip() else f"{item!r} is not a non-negative integer"
    known = [seed for seed in seeds if seed is not None]
    repeated = sorted({seed for seed in known if known.count(seed) > 1})
    if repeated:
        return f"{', '.join(map(str, repeated))} repeated"
    return None


# ----- parametrization ---------------------------------------------------------------------

def _marker_seeds(metafunc: pytest.Metafunc, marker: pytest.Mark) -> list[int]:
    args = marker.args
    value = args[0] if len(args) == 1 and isinstance(args[0], (list, tuple, str)) else list(args)
    return parse_seeds(value, f"@pytest.mark.mi_seeds on {metafunc.definition.nodeid}")


def _checkpoint_refs(metafunc: pytest.Metafunc) -> list[Any] | None:
    marker = metafunc.definition.get_closest_marker("mi_checkpoints")
    if marker is not None:
        patterns = [p for a in marker.args for p in (a if isinstance(a, (list, tuple)) else [a])]
        base = Path(str(metafunc.definition.path)).parent
    else:
        option = get_option(metafunc.config, "mi_checkpoints")
        if not option:
            return None
        patterns, base = [option], metafunc.config.invocation_params.dir
    cache = metafunc.config.stash[_SWEEP_CACHE_KEY]
    key = (tuple(str(p) for p in patterns), str(base))
    if key not in cache:
        from mi_assert.zoo.checkpoint_list import expand_checkpoints

        cache[key] = expand_checkpoints([str(p) for p in patterns], base)
    return cache[key]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "mi_model" in metafunc.fixturenames:
        refs = _checkpoint_refs(metafunc)
        if refs is not None:
            metafunc.parametrize("mi_model", refs, indirect=True, ids=[r.param_id for r in refs])
    if "mi_seed" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("mi_seeds")
    if marker is not None:
        seeds = _marker_seeds(metafunc, marker)
    else:
        seeds = metafunc.config.stash[_SEEDS_KEY]
    metafunc.parametrize("mi_seed", seeds, indirect=True, ids=[f"seed{s}" for s in seeds])


# ----- fixtures ----------------------------------------------------------------------------

@pytest.fixture
def mi_seed(request: pytest.FixtureRequest) -> int:
    """The sampling seed of this test instance; torch, numpy and random are seeded with it."""
    from mi_assert.seeding import seed_everything

    seed = int(getattr(request, "param", 0))
    seed_everything(seed)
    return seed


def _model_request(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    marker = request.node.get_closest_marker("mi_model")
    kwargs: dict[str, Any] = {}
    spec = get_option(request.config, "mi_model")
    if marker is not None:
        if not marker.args:
            raise pytest.UsageError("@pytest.mark.mi_model needs a model spec as its first argument")
        spec, kwargs = marker.args[0], dict(marker.kwargs)
    sweep = getattr(request, "param", None)
    if sweep is not None:  # a checkpoint of --mi-checkpoints / mi_checkpoints(...)
        spec = sweep.spec
    if spec is None:
        raise pytest.UsageError(
            "the mi_model fixture needs a model: pass --mi-model NAME (zoo: see "
            "`python -m mi_assert.zoo list`), set mi_model in the ini file, or mark the test "
            "with @pytest.mark.mi_model('NAME')"
        )
    kwargs.setdefault("backend", get_option(request.config, "mi_backend"))
    device = kwargs.get("device", get_option(request.config, "mi_device"))
    if device == "cuda" and os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        from mi_assert.scaleout import worker_device

        device = worker_device(device, os.environ["PYTEST_XDIST_WORKER"], torch.cuda.device_count())
    kwargs["device"] = device
    kwargs.setdefault("dtype", get_option(request.config, "mi_dtype"))
    return str(spec), kwargs


@pytest.fixture
def mi_search_db(request: pytest.FixtureRequest) -> Path:
    """The example database of counterexample searches (``--mi-search-db``, default
    ``.mi_search_db`` under the rootdir): ``assert_holds_for_all(..., database=mi_search_db)``
    replays a counterexample found in one run first in the next, so it becomes a regression
    test (in CI, cache or commit the folder)."""
    return _rooted(request.config, str(get_option(request.config, "mi_search_db")))


@pytest.fixture
def mi_model(request: pytest.FixtureRequest) -> Any:
    """The model handle for this test, loaded once per (spec, backend, device, dtype, kwargs).

    Weights that cannot be found (offline, no local copy) skip the test with the reason
    (fail it under ``--mi-require-models``).
    Under a checkpoint sweep each checkpoint is one parameter of this fixture.
    """
    from mi_assert.backends import as_handle
    from mi_assert.errors import ModelUnavailableError
    from mi_assert.loading import load_model

    spec, kwargs = _model_request(request)
    remote_opt = get_option(request.config, "mi_remote")
    key = (spec, tuple(sorted((k, repr(v)) for k, v in kwargs.items())), remote_opt)
    cache = request.config.stash[_MODEL_CACHE_KEY]
    if key not in cache:
        sweep = getattr(request, "param", None)
        if sweep is not None:
            from mi_assert.report.progress import emit

            emit(f"[mi-assert] loading checkpoint {sweep.label} ({sweep.spec})")
        try:
            # declared for models without a tokenizer: as_handle applies them, not the loader
            declared = {k: kwargs.pop(k) for k in ("bos_token_id", "special_token_ids") if k in kwargs}
            handle: Any = as_handle(load_model(spec, **kwargs), **declared)
            if remote_opt:
                from mi_assert.errors import MiAssertInputError
                from mi_assert.scaleout import remote_value

                if handle.backend != "nnsight":  # running locally instead would hide it
                    raise MiAssertInputError(
                        f"--mi-remote {remote_opt}: model {spec!r} is on backend "
                        f"{handle.backend!r}, which has no remote execution; only the nnsight "
                        "backend sends traces to NDIF. Use --mi-backend nnsight (or "
                        "backend='nnsight' in its mi_model marker), or drop --mi-remote")
                # the nnsight backend reads handle.remote and passes it to trace(remote=...)
                handle.remote = remote_value(remote_opt)
                handle.load_kwargs["remote"] = handle.remote
            cache[key] = handle
        except ModelUnavailableError as exc:
            cache[key] = exc
    value = cache[key]
    if isinstance(value, ModelUnavailableError):
        # chained, so that the report hook sees missing weights (and fails under --mi-require-models)
        raise pytest.skip.Exception(f"model {spec!r} unavailable: {value}") from value
    return value


@pytest.fixture
def mi_prompts(request: pytest.FixtureRequest, mi_model: Any) -> Any:
    """A :class:`~mi_assert.prompts.SplitPrompts` (``fit``/``heldout``) for ``mi_model``.

    Seeded by ``mi_seed`` when the test uses it (else seed 0); the generator and its settings
    come from ``@pytest.mark.mi_prompts(kind, **kwargs)`` (default: repeated random tokens).
    """
    from mi_assert.prompts.generators import make_split

    seed = request.getfixturevalue("mi_seed") if "mi_seed" in request.fixturenames else 0
    marker = request.node.get_closest_marker("mi_prompts")
    kind = marker.args[0] if marker is not None and marker.args else "repeated"
    kwargs = dict(marker.kwargs) if marker is not None else {}
    return make_split(mi_model, kind, seed=seed, **kwargs)


@pytest.fixture
def mi_cache(request: pytest.FixtureRequest, mi_model: Any, mi_prompts: Any) -> Any:
    """A lazy activation cache over ``mi_prompts.heldout.clean``: only hooks read are computed
    (``@pytest.mark.mi_hooks(...)`` names hooks to compute together)."""
    from mi_assert.cache import LazyActivationCache

    marker = request.node.get_closest_marker("mi_hooks")
    prefetch = list(marker.args) if marker is not None else []
    return LazyActivationCache(mi_model, mi_prompts.heldout.clean, prefetch)


def _sweep_context(item: Any) -> dict[str, Any] | None:
    callspec = getattr(item, "callspec", None)
    ref: Any = callspec.params.get("mi_model") if callspec is not None else None
    return ref.as_context() if hasattr(ref, "as_context") else None


@pytest.fixture(autouse=True)
def _mi_record_context(request: pytest.FixtureRequest) -> Iterator[None]:
    """Tag evidence recorded during a test with its node id, checkpoint and worker (cheap)."""
    recorder = session_recorder(request.config)
    if recorder is None:
        yield
        return
    recorder.set_context(nodeid=request.node.nodeid, checkpoint=_sweep_context(request.node),
                         worker=os.environ.get("PYTEST_XDIST_WORKER"))
    yield
    recorder.set_context(nodeid=None, checkpoint=None, worker=None)


# ----- reports -----------------------------------------------------------------------------

def _fallback_model(item: pytest.Item) -> Any:
    def describe() -> Any:
        handle = getattr(item, "funcargs", {}).get("mi_model")
        describe_fn = getattr(handle, "describe", None)
        return describe_fn() if callable(describe_fn) else None

    return describe


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    """A claim's cost counts from the test body on: loading the model in a fixture is not the
    first claim's cost."""
    recorder = session_recorder(item.config)
    if recorder is not None:
        recorder.restart_cost()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    report: Any = yield
    _note_missing_weights(item, call, report)
    recorder = session_recorder(item.config)
    recorded = recorder.drain() if recorder is not None else []
    if not recorded:
        return report
    from mi_assert.report.collect import junit_properties, to_records

    records = to_records(recorded, _fallback_model(item))
    # A FAIL verdict inside a test that passed (pytest.raises) or xfailed is an expected
    # failure: the report says so instead of counting it as a broken claim.
    outcome = "xfailed" if hasattr(report, "wasxfail") else report.outcome
    # per item: how often each key was claimed (the same claim twice gets "#2"), and how
    # many records its earlier phases had (their junit properties are mi.0 .. mi.K-1)
    seen = item.stash.setdefault(_ITEM_RECORDS_KEY, {})
    offset = sum(seen.values())
    for k, rec in enumerate(records):
        rec["test_outcome"] = outcome
        rec["phase"] = call.when
        rec["seq"] = offset + k
        if rec["nodeid"] == "<outside a test>":  # recorded by a fixture during setup
            rec["nodeid"] = f"{item.nodeid} ({call.when})"
        count = seen.get(rec["key"], 0)
        seen[rec["key"]] = count + 1
        if count:
            rec["key"] = f"{rec['key']}#{count + 1}"
    report.mi_records = json.dumps(records, allow_nan=False)
    # junit-xml reads properties from the teardown report, which copies item.user_properties
    props = junit_properties(records)
    item.user_properties.extend(
        (_shift_property(name, offset), value) for name, value in props)
    return report


def _note_missing_weights(item: pytest.Item, call: pytest.CallInfo[None], report: Any) -> None:
    """Tag a skip for missing weights with the model/SAE name (``report.mi_missing_weights``,
    which reaches the xdist controller with the report) and, under ``--mi-require-models``,
    turn it into a failure with the same reason."""
    missing = _unavailable_weights(call)
    if missing is None:
        return
    report.mi_missing_weights = _weights_name(missing)
    if get_option(item.config, "mi_require_models"):
        assert call.excinfo is not None
        reason = str(call.excinfo.value)
        if str(missing) not in reason:
            reason += f"\n{missing}"
        report.outcome = "failed"
        report.longrepr = (f"{reason}\n(--mi-require-models: unavailable weights fail the test "
                           "instead of skipping it)")


def _unavailable_weights(call: pytest.CallInfo[None]) -> BaseException | None:
    """The ModelUnavailableError behind a skip: pytest.skip raised from it (``mi_model``) or
    while handling it (``except ModelUnavailableError: pytest.skip(...)`` in a test)."""
    if call.excinfo is None or not call.excinfo.errisinstance(pytest.skip.Exception):
        return None
    from mi_assert.errors import ModelUnavailableError

    cause: BaseException | None = call.excinfo.value
    seen: set[int] = set()
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, ModelUnavailableError):
            return cause
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return None


def _weights_name(exc: BaseException) -> str:
    """The model or SAE a ModelUnavailableError names (its first quoted name, or the
    release/id of a hub SAE); else the start of the message."""
    import re

    text = str(exc)
    found = re.search(r"'([^']+)'", text) or re.search(r"\bSAE (\S+)", text)
    return found.group(1) if found else text[:40]


def _shift_property(name: str, offset: int) -> str:
    if not offset:
        return name
    prefix, index, rest = name.split(".", 2)
    return f"{prefix}.{int(index) + offset}.{rest}"
