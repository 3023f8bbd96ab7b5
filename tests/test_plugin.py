"""The pytest plugin: options, markers and seeded fixtures (via pytester).

pytester runs pytest in this process and forgets modules an inner run imported first;
importing torch, datasets or numpy a second time in one process fails, so the outer process
imports them here.
"""

from __future__ import annotations

import transformer_lens  # noqa: F401

import mi_assert.loading  # noqa: F401
import mi_assert.stats.claims  # noqa: F401


def test_help_lists_options(pytester):
    result = pytester.runpytest("--help")
    for flag in ("--mi-model", "--mi-backend", "--mi-device", "--mi-dtype", "--mi-seeds", "--mi-report"):
        result.stdout.fnmatch_lines([f"*{flag}*"])


def test_mi_seed_runs_once_per_seed(pytester):
    pytester.makepyfile(
        """
        import pytest
        import torch

        SEEN = []

        @pytest.mark.mi_model("planted-induction")
        def test_claim(mi_model, mi_seed):
            SEEN.append((mi_seed, torch.rand(1).item()))
            assert mi_model.n_layers == 2

        def test_seeds_distinct():
            assert sorted(s for s, _ in SEEN) == [0, 4, 7]
            assert len({r for _, r in SEEN}) == 3
        """
    )
    result = pytester.runpytest("--mi-seeds", "0,4,7", "-p", "no:randomly")
    result.assert_outcomes(passed=4)


def test_mi_seeds_marker_and_missing_model(pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.mi_seeds(3, 5)
        def test_seeded(mi_seed):
            assert mi_seed in (3, 5)

        def test_needs_model(mi_model):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*needs a model: pass --mi-model*"])


def test_mi_cache_computes_only_requested_hooks(pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.mi_model("planted-induction")
        @pytest.mark.mi_hooks("blocks.0.attn.hook_pattern", "blocks.1.attn.hook_pattern")
        def test_cache(mi_cache, mi_prompts):
            p = mi_cache["blocks.1.attn.hook_pattern"]
            assert p.shape[0] == len(mi_prompts.heldout)
            _ = mi_cache["blocks.0.attn.hook_pattern"]
            assert mi_cache.n_forward_passes == 1
            assert sorted(mi_cache) == ["blocks.0.attn.hook_pattern", "blocks.1.attn.hook_pattern"]
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_plugin_and_per_test_record_context_do_not_import_torch():
    """Loading the plugin and its autouse per-test fixture must stay cheap in any project."""
    import subprocess
    import sys

    code = ("import sys, mi_assert.plugin, mi_assert.record; "
            "heavy = sorted(m for m in ('torch', 'numpy', 'scipy') if m in sys.modules); "
            "print(heavy); sys.exit(bool(heavy))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_session_recorder_tags_and_drains_per_test(pytester):
    """One recorder per session: records carry their test's node id and leave with its report."""
    from mi_assert import record

    outer = record.current()
    pytester.makeconftest(
        """
        import json

        SEEN = []

        def pytest_runtest_logreport(report):
            if getattr(report, "mi_records", None):
                SEEN.extend((report.nodeid, report.when, r["nodeid"], r["key"], r["seq"])
                            for r in json.loads(report.mi_records))

        def pytest_sessionfinish(session):
            (session.config.rootpath / "seen.json").write_text(json.dumps(sorted(SEEN)))
        """
    )
    pytester.makepyfile(
        """
        from mi_assert import record
        from mi_assert.stats.evidence import Evidence
        from mi_assert.verdict import raise_if_failed

        def ev(claim):
            return Evidence(claim=claim, metric="m", estimate=1.0, low=1.0, high=1.0, bound=1.0,
                            n=1, threshold=0.5, alpha=0.05, alternative="greater", passed=True)

        def test_a():
            raise_if_failed(ev("c"))
            raise_if_failed(ev("c"))
            assert record.current().peek()[0].context["nodeid"].endswith("::test_a")

        def test_b():
            assert record.peek() == []
            raise_if_failed(ev("d"))
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=2)
    import json

    seen = json.loads((pytester.path / "seen.json").read_text())
    assert [(s[1], s[2].split("::")[-1], s[3].split("::")[-1], s[4]) for s in seen] == [
        ("call", "test_a", "c", 0), ("call", "test_a", "c#2", 1), ("call", "test_b", "d", 0)]
    assert record.current() is outer
