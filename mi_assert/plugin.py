"""pytest glue: options, markers, fixtures and the terminal summary.

Everything scientific lives in plain modules; this file only translates pytest's world
(options, markers, fixtures) into calls to them. Heavy libraries are imported inside fixtures,
never at plugin import time, so ``pytest --help`` stays fast for every project.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

_OPTIONS: list[tuple[str, str, str | None]] = [
    ("mi_model", "model: a zoo name (mi_assert.zoo.available()), a local checkpoint folder, or a hub name", None),
    ("mi_backend", "backend: transformer_lens | bridge | nnsight (default: by what the model spec is)", None),
    ("mi_device", "device: auto (cuda when available) | cpu | cuda | cuda:N", "auto"),
    ("mi_dtype", "dtype: float32 | bfloat16 | float16 | float64 (default: the checkpoint's)", None),
    ("mi_seeds", "comma-separated sampling seeds that mi_seed is parametrized over (e.g. 0,1,2)", "0,1,2"),
    ("mi_report", "directory to write the JSON + HTML report to", None),
]

_MODEL_CACHE_KEY = pytest.StashKey[dict]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mi-assert", "mi-assert: mechanistic-interpretability claims")
    for name, help_text, default in _OPTIONS:
        flag = "--" + name.replace("_", "-")
        group.addoption(flag, dest=name, default=None, help=f"{help_text} [ini: {name}]")
        parser.addini(name, help=help_text, default=default)


def get_option(config: pytest.Config, name: str) -> Any:
    """The command-line value if given, else the ini value (which holds the default)."""
    value = config.getoption(name, default=None)
    if value is None:
        value = config.getini(name) or None
    return value


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "mi_model(spec, **load_kwargs): model for the mi_model fixture in this test/module "
        "(overrides --mi-model)",
    )
    config.addinivalue_line("markers", "mi_seeds(*seeds): sampling seeds mi_seed is parametrized over")
    config.addinivalue_line("markers", "mi_hooks(*hooks): hooks mi_cache computes in one forward pass")
    config.addinivalue_line(
        "markers", "mi_prompts(kind='repeated', **kwargs): the prompt generator behind mi_prompts"
    )
    config.stash[_MODEL_CACHE_KEY] = {}


def parse_seeds(value: Any) -> list[int]:
    if isinstance(value, (list, tuple)):
        return [int(v) for v in value]
    try:
        return [int(s) for s in str(value).replace(" ", "").split(",") if s != ""]
    except ValueError as exc:
        raise pytest.UsageError(f"--mi-seeds must be comma-separated integers, got {value!r}") from exc


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "mi_seed" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("mi_seeds")
    if marker is not None:
        seeds = parse_seeds(list(marker.args[0]) if len(marker.args) == 1 and
                            isinstance(marker.args[0], (list, tuple)) else list(marker.args))
    else:
        seeds = parse_seeds(get_option(metafunc.config, "mi_seeds"))
    metafunc.parametrize("mi_seed", seeds, indirect=True, ids=[f"seed{s}" for s in seeds])


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
    if spec is None:
        raise pytest.UsageError(
            "the mi_model fixture needs a model: pass --mi-model NAME (zoo: see "
            "`python -m mi_assert.zoo list`), set mi_model in the ini file, or mark the test "
            "with @pytest.mark.mi_model('NAME')"
        )
    kwargs.setdefault("backend", get_option(request.config, "mi_backend"))
    kwargs.setdefault("device", get_option(request.config, "mi_device"))
    kwargs.setdefault("dtype", get_option(request.config, "mi_dtype"))
    return str(spec), kwargs


@pytest.fixture
def mi_model(request: pytest.FixtureRequest) -> Any:
    """The model handle for this test, loaded once per (spec, backend, device, dtype, kwargs).

    Weights that cannot be found (offline, no local copy) skip the test with the reason.
    """
    from mi_assert.errors import ModelUnavailableError
    from mi_assert.loading import load_model

    spec, kwargs = _model_request(request)
    key = (spec, tuple(sorted((k, repr(v)) for k, v in kwargs.items())))
    cache = request.config.stash[_MODEL_CACHE_KEY]
    if key not in cache:
        try:
            cache[key] = load_model(spec, **kwargs)
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


@pytest.fixture(autouse=True)
def _mi_record_context(request: pytest.FixtureRequest) -> Iterator[None]:
    """Tag evidence recorded during a test with its node id (cheap: no heavy imports)."""
    import sys

    record = sys.modules.get("mi_assert.record")
    if record is None:
        from mi_assert import record
    record.set_context(nodeid=request.node.nodeid)
    yield
    record.set_context(nodeid=None)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    import sys

    record = sys.modules.get("mi_assert.record")
    if record is None:
        return
    from mi_assert.report.summary import summary_lines

    lines = summary_lines([r for r in record.peek()])
    if lines:
        terminalreporter.write_sep("=", "mi-assert claims")
        for line in lines:
            terminalreporter.write_line(line)
