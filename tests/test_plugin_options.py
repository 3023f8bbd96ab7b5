"""Plugin options that would let a CI run go green without checking anything (via pytester).

Bad seeds, dtypes, devices and backends are one usage error at startup; tests whose model or
SAE weights are missing are counted on the summary's last mi-assert line, and fail under
``--mi-require-models``. The outer process imports torch and mi_assert.loading first (see
tests/test_plugin.py for why).
"""

from __future__ import annotations

import pytest
import torch
import transformer_lens  # noqa: F401

import mi_assert.loading  # noqa: F401
import mi_assert.stats.claims  # noqa: F401

SEEDED = """
import pytest

def test_seeded(mi_seed):
    pass

@pytest.mark.mi_model("planted-induction")
def test_model(mi_model):
    pass
"""

# one skip through the mi_model fixture (a zoo step that was never trained), one through a
# test's own `except ModelUnavailableError: pytest.skip(...)`, as the suites do
MISSING = """
import pytest
from mi_assert.errors import ModelUnavailableError

def test_present():
    pass

@pytest.mark.mi_model("attn-only-2l-induction@s0:step150")
def test_fixture_skip(mi_model):
    pass

def test_own_skip():
    try:
        raise ModelUnavailableError("model 'gpt2' could not be loaded: offline")
    except ModelUnavailableError as exc:
        pytest.skip(str(exc))
"""

OWN_SKIPS = """
import pytest
from mi_assert.errors import ModelUnavailableError

@pytest.mark.parametrize("message", [
    "model 'gpt2' could not be loaded: offline",
    "SAE gpt2-small-res-jb/blocks.8.hook_resid_pre could not be loaded: offline",
])
def test_own_skip(message):
    try:
        raise ModelUnavailableError(message)
    except ModelUnavailableError:
        pytest.skip("weights not cached")

def test_unrelated_skip():
    pytest.skip("not this platform")
"""

SEEDS_FORM = "must be comma-separated distinct non-negative integers, e.g. 0,1,2"


def assert_usage_error(result: pytest.RunResult, pattern: str) -> None:
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str() + result.stderr.str()
    result.stderr.fnmatch_lines([f"ERROR: mi-assert: {pattern}"])


def mi_lines(result: pytest.RunResult) -> list[str]:
    return [line for line in result.outlines if line.startswith("mi-assert: ")]


NO_CLAIMS = "mi-assert: 0 claim(s): 0 passed, 0 failed unexpectedly, 0 expected failure(s); "


def assert_last_mi_line(result: pytest.RunResult, expected: str) -> None:
    """``expected`` is the last mi-assert line, and only pytest's own summary follows it."""
    lines = result.outlines
    assert mi_lines(result)[-1] == expected, mi_lines(result)
    after = lines[lines.index(expected) + 1:]
    assert after and after[0].startswith("="), after


# ----- seeds -------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "problem"), [
    ("", "no seeds"),
    ("0,,1", "an empty entry"),
    ("a,b", "'a' is not a non-negative integer"),
    ("0,0", "0 repeated"),
    ("-1,2", "'-1' is not a non-negative integer"),
    ("0 1", "'0 1' is not a non-negative integer"),
])
def test_bad_cli_seeds_are_a_usage_error(pytester, value, problem):
    pytester.makepyfile(SEEDED)
    result = pytester.runpytest(f"--mi-seeds={value}")
    assert_usage_error(result, f"--mi-seeds {SEEDS_FORM}; got {value!r} ({problem})")


@pytest.mark.parametrize(("value", "problem"), [("", "no seeds"), ("1,2,1", "1 repeated")])
def test_bad_ini_seeds_are_a_usage_error(pytester, value, problem):
    pytester.makeini(f"[pytest]\nmi_seeds = {value}\n")
    pytester.makepyfile(SEEDED)
    assert_usage_error(pytester.runpytest(), f"ini mi_seeds {SEEDS_FORM}; got {value!r} ({problem})")


@pytest.mark.parametrize(("args", "shown"), [
    ("0, 0", "[0, 0] (0 repeated)"),
    ("", "[] (no seeds)"),
    ("'1,x'", "'1,x' ('x' is not a non-negative integer)"),
    ("-3", "[-3] (-3 is not a non-negative integer)"),
])
def test_bad_marker_seeds_stop_collection_naming_the_test(pytester, args, shown):
    pytester.makepyfile(f"""
        import pytest

        @pytest.mark.mi_seeds({args})
        def test_marked(mi_seed):
            pass
        """)
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    out = result.stdout.str()  # not fnmatch: the values hold brackets
    assert "UsageError: mi-assert: @pytest.mark.mi_seeds on " in out
    assert f"::test_marked {SEEDS_FORM}; got {shown}" in out


def test_good_seeds_with_spaces_and_a_marker_string(pytester):
    pytester.makepyfile("""
        import pytest

        def test_option(mi_seed):
            assert mi_seed in (2, 5)

        @pytest.mark.mi_seeds("7, 8")
        def test_marker(mi_seed):
            assert mi_seed in (7, 8)
        """)
    pytester.runpytest("--mi-seeds", " 2, 5 ").assert_outcomes(passed=4)


# ----- dtype, backend, device ----------------------------------------------------------------

@pytest.mark.parametrize(("flag", "value", "pattern"), [
    ("--mi-dtype", "float33", "--mi-dtype 'float33' is not a known dtype; allowed: float32, fp32, "
     "*Did you mean 'float32'*"),
    ("--mi-dtype", "", "--mi-dtype '' is not a known dtype; allowed: float32*"),
    ("--mi-backend", "nnsite", "--mi-backend 'nnsite' is not a known backend; allowed: "
     "transformer_lens, bridge, nnsight. Did you mean 'nnsight'?"),
    ("--mi-device", "gpu", "--mi-device 'gpu' is not a device; allowed: auto, cpu, cuda, cuda:N.*"),
    ("--mi-device", "cuda:x", "--mi-device 'cuda:x' is not a device; allowed: auto, cpu, cuda, "
     "cuda:N. Did you mean 'cuda'?"),
])
def test_bad_load_options_are_one_usage_error(pytester, flag, value, pattern):
    pytester.makepyfile(SEEDED)
    assert_usage_error(pytester.runpytest(f"{flag}={value}"), pattern)


def test_bad_ini_dtype_names_the_ini_key(pytester):
    pytester.makeini("[pytest]\nmi_dtype = bf32\n")
    pytester.makepyfile(SEEDED)
    assert_usage_error(pytester.runpytest(), "ini mi_dtype 'bf32' is not a known dtype*")


@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_cuda_without_cuda_is_a_usage_error(pytester, monkeypatch, device):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    pytester.makepyfile(SEEDED)
    assert_usage_error(pytester.runpytest("--mi-device", device),
                       f"--mi-device {device!r} asks for CUDA, but CUDA is not available here; "
                       "use auto or cpu")


def test_cuda_index_is_checked_against_the_device_count(pytester, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    pytester.makepyfile("def test_plain():\n    pass\n")
    assert_usage_error(pytester.runpytest("--mi-device", "cuda:2"),
                       "--mi-device 'cuda:2': this host has 2 GPU(s); allowed: auto, cpu, cuda, "
                       "cuda:0 .. cuda:1")
    pytester.runpytest("--mi-device", "cuda:1").assert_outcomes(passed=1)


@pytest.mark.parametrize("device", ["auto", "cpu"])
def test_auto_and_cpu_devices_stay_valid(pytester, device):
    pytester.makepyfile("def test_plain():\n    pass\n")
    pytester.runpytest("--mi-device", device).assert_outcomes(passed=1)


# ----- missing weights ---------------------------------------------------------------------

def test_missing_weights_skips_are_counted_on_the_last_line(pytester):
    pytester.makepyfile(MISSING)
    result = pytester.runpytest("-p", "no:randomly", "-rs")
    result.assert_outcomes(passed=1, skipped=2)
    assert_last_mi_line(result, "mi-assert: 0 claim(s): 0 passed, 0 failed unexpectedly, 0 expected failure(s); 2 tests skipped for missing weights "
                        "(attn-only-2l-induction@s0:step150, gpt2); --mi-require-models makes them fail")


def test_no_missing_weights_still_says_zero(pytester):
    pytester.makepyfile("import pytest\n\ndef test_plain():\n    pytest.skip('other reason')\n")
    result = pytester.runpytest()
    result.assert_outcomes(skipped=1)
    assert_last_mi_line(result, "mi-assert: 0 claim(s): 0 passed, 0 failed unexpectedly, 0 expected failure(s); 0 tests skipped for missing weights")


@pytest.mark.parametrize("how", ["flag", "ini"])
def test_require_models_fails_tests_with_missing_weights(pytester, how):
    pytester.makepyfile(MISSING)
    if how == "ini":
        pytester.makeini("[pytest]\nmi_require_models = true\n")
    result = pytester.runpytest("-p", "no:randomly", *(["--mi-require-models"] if how == "flag" else []))
    result.assert_outcomes(passed=1, failed=1, errors=1)  # the fixture's is a setup error
    result.stdout.fnmatch_lines([
        "*ERROR at setup of test_fixture_skip*",
        "model 'attn-only-2l-induction@s0:step150' unavailable: *checkpoint*step150.safetensors is missing*",
        "(--mi-require-models: unavailable weights fail the test instead of skipping it)",
        "*test_own_skip*",
        "model 'gpt2' could not be loaded: offline",
        "(--mi-require-models: *",
    ])
    assert_last_mi_line(result, "mi-assert: 0 claim(s): 0 passed, 0 failed unexpectedly, 0 expected failure(s); 0 tests skipped for missing weights; 2 tests failed for "
                        "missing weights (attn-only-2l-induction@s0:step150, gpt2) under "
                        "--mi-require-models")


def test_missing_weights_reach_the_controller_under_xdist(pytester):
    pytest.importorskip("xdist")
    pytester.makepyfile(OWN_SKIPS)
    result = pytester.runpytest("-n", "2", "-p", "no:randomly")
    result.assert_outcomes(skipped=3)
    assert_last_mi_line(result, "mi-assert: 0 claim(s): 0 passed, 0 failed unexpectedly, 0 expected failure(s); 2 tests skipped for missing weights (gpt2, "
                        "gpt2-small-res-jb/blocks.8.hook_resid_pre); --mi-require-models makes them fail")
    result = pytester.runpytest("-n", "2", "-p", "no:randomly", "--mi-require-models")
    result.assert_outcomes(failed=2, skipped=1)
    result.stdout.fnmatch_lines(["weights not cached", "model 'gpt2' could not be loaded: offline"])
    assert mi_lines(result)[-1].startswith("mi-assert: 0 claim(s): 0 passed, 0 failed unexpectedly, 0 expected failure(s); 0 tests skipped for missing weights; 2 tests "
                                           "failed for missing weights")
