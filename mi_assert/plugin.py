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
from collections.abc import Iterator
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
    ("mi_checkpoints", "parametrize mi_model over checkpoints: zoo spec globs "
     "(attn-only-2l-induction@s0:step*) and/or local folder globs, comma-separated", None),
]
_FLAGS: list[tuple[str, str]] = [
    ("mi_compare_fail", "with --mi-compare: fail the run when a claim regressed beyond tolerance"),
    ("mi_baseline_overwrite", "allow --mi-save-baseline to replace an existing baseline's files"),
]

_MODEL_CACHE_KEY = pytest.StashKey[dict]()
_SWEEP_CACHE_KEY = pytest.StashKey[dict]()
_RECORDER_KEY = pytest.StashKey[tuple]()
_ITEM_RECORDS_KEY = pytest.StashKey[dict]()
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
        "(overrides --mi-model; kwargs such as n_devices=2 or device_map go to load_model)",
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
    _last_partial: float = 0.0
    _previous_sink: Any = None

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

        progress.set_sink(self._previous_sink)

    # ----- collecting ------------------------------------------------------------------------
    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        payload = getattr(report, "mi_records", None)
        if not payload:
            return
        self.records.extend(json.loads(payload))
        if self.report_dir is not None and time.monotonic() - self._last_partial > 5.0:
            self._last_partial = time.monotonic()
            self._write(complete=False)

    def _meta(self) -> dict[str, Any]:
        import mi_assert

        workers = getattr(self.config.option, "numprocesses", None)
        return {"mi_assert": mi_assert.__version__, "workers": workers,
                "duration_s": round(time.monotonic() - self.started, 3),
                "argv": list(self.config.invocation_params.args)}

    def _write(self, complete: bool) -> None:
        from mi_assert.report.json_report import build_report, write_json, write_report

        assert self.report_dir is not None
        doc = build_report(self.records, self._meta(), self.comparison, complete=complete)
        if complete:
            paths = write_report(self.report_dir, doc)
            self.messages.append(f"report written: {paths[1]} (+ {paths[0].name})")
        else:
            write_json(self.report_dir, doc)

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
        self._collect_leftovers()
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

            if not self.records:
                self.messages.append(f"baseline {self.save_name!r} not saved: no claims were recorded")
            else:
                assert self.baseline_dir is not None
                files = save_baseline(self.baseline_dir, self.save_name, self.records, self.overwrite)
                n_failed = sum(1 for r in self.records if not r["evidence"].get("passed"))
                self.messages.append(
                    f"baseline {self.save_name!r} saved: {len(self.records)} claim(s) in "
                    f"{len(files)} file(s) under {files[0].parent}"
                    + (f" (note: {n_failed} of them FAILED in this run)" if n_failed else ""))
        if self.report_dir is not None:
            try:
                self._write(complete=session.exitstatus != pytest.ExitCode.INTERRUPTED)
            except OSError as exc:
                self.messages.append(f"ERROR: could not write the report to {self.report_dir}: {exc}")
                session.exitstatus = pytest.ExitCode.INTERNAL_ERROR

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


def _rooted(config: pytest.Config, path: str, invocation: bool = False) -> Path:
    p = Path(path).expanduser()
    if p.is_absolute():
        return p
    return (config.invocation_params.dir if invocation else config.rootpath) / p


# ----- parametrization ---------------------------------------------------------------------

def parse_seeds(value: Any) -> list[int]:
    if isinstance(value, (list, tuple)):
        return [int(v) for v in value]
    try:
        return [int(s) for s in str(value).replace(" ", "").split(",") if s != ""]
    except ValueError as exc:
        raise pytest.UsageError(f"--mi-seeds must be comma-separated integers, got {value!r}") from exc


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
        seeds = parse_seeds(list(marker.args[0]) if len(marker.args) == 1 and
                            isinstance(marker.args[0], (list, tuple)) else list(marker.args))
    else:
        seeds = parse_seeds(get_option(metafunc.config, "mi_seeds"))
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
def mi_model(request: pytest.FixtureRequest) -> Any:
    """The model handle for this test, loaded once per (spec, backend, device, dtype, kwargs).

    Weights that cannot be found (offline, no local copy) skip the test with the reason.
    Under a checkpoint sweep each checkpoint is one parameter of this fixture.
    """
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
            handle: Any = load_model(spec, **kwargs)
            if remote_opt:
                from mi_assert.scaleout import remote_value

                # the nnsight backend reads handle.remote and passes it to trace(remote=...)
                handle.remote = remote_value(remote_opt)
                handle.load_kwargs["remote"] = handle.remote
            cache[key] = handle
        except ModelUnavailableError as exc:
            cache[key] = exc
    value = cache[key]
    if isinstance(value, ModelUnavailableError):
        pytest.skip(f"model {spec!r} unavailable: {value}")
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


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    report: Any = yield
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


def _shift_property(name: str, offset: int) -> str:
    if not offset:
        return name
    prefix, index, rest = name.split(".", 2)
    return f"{prefix}.{int(index) + offset}.{rest}"
