"""``--mi-shard I/N``: the partition rule, its option checks, and what a shard run reports."""

from __future__ import annotations

import json

import pytest

from mi_assert.errors import MiAssertInputError
from mi_assert.shard import Shard, assign, collection_digest, parse_shard, split, unit_of

NODEIDS = [
    "tests/test_a.py::test_one[seed0]", "tests/test_a.py::test_one[seed1]",
    "tests/test_a.py::test_two", "tests/test_b.py::TestB::test_x[ckpts/step10]",
    "tests/test_b.py::TestB::test_x[ckpts/step20]", "tests/test_c.py::test_c",
    "tests/sub/test_d.py::test_d[1]", "tests/sub/test_d.py::test_d[2]",
    "tests/sub/test_d.py::test_d[3]", "tests/sub/test_d.py::test_d[4]",
]


def _selected(nodeids: list[str], shard: Shard) -> list[str]:
    keep, _ = split(nodeids, shard)
    return [n for n, k in zip(nodeids, keep, strict=True) if k]


@pytest.mark.parametrize("count", [1, 2, 3, 4])
def test_shards_are_disjoint_cover_everything_and_keep_files_together(count: int) -> None:
    parts = [_selected(NODEIDS, Shard(i, count)) for i in range(1, count + 1)]
    assert sorted(n for part in parts for n in part) == sorted(NODEIDS)
    assert sum(len(p) for p in parts) == len(NODEIDS)
    files = [{unit_of(n) for n in part} for part in parts]
    for i, own in enumerate(files):
        for other in files[i + 1:]:
            assert not own & other  # a file (so every parametrisation of a test) in one shard
    assert all(parts) or count > len({unit_of(n) for n in NODEIDS})


def test_partition_ignores_collection_order() -> None:
    for count in (2, 3):
        for i in range(1, count + 1):
            forward = _selected(NODEIDS, Shard(i, count))
            backward = _selected(list(reversed(NODEIDS)), Shard(i, count))
            assert sorted(forward) == sorted(backward)
            assert split(NODEIDS, Shard(i, count))[1] == split(NODEIDS[::-1], Shard(i, count))[1]


def test_assignment_is_balanced_largest_file_first() -> None:
    assert assign({"a.py": 3, "b.py": 2, "c.py": 1, "d.py": 4}, 2) == {
        "d.py": 1, "a.py": 2, "b.py": 2, "c.py": 1}
    assert assign({"b.py": 1, "a.py": 1}, 2) == {"a.py": 1, "b.py": 2}  # ties: by path
    # pinned: the same node ids give the same shards on every machine and Python version
    plan = split(NODEIDS, Shard(1, 2))[1]
    assert plan["tests"] == sorted(n for n in NODEIDS if "test_d" in n or "test_c" in n)
    assert plan["collection"] == collection_digest(reversed(NODEIDS)) == "6f08193f96ac0adf"
    assert (plan["collected"], plan["selected"], plan["files"], plan["selected_files"]) == (10, 5, 4, 2)


@pytest.mark.parametrize("value, problem", [
    ("3/2", "I must be between 1 and 2"), ("0/2", "shards count from 1: the first shard is 1/N"),
    ("2", "no '/'"), ("a/b", "I and N must be integers"), ("1/0", "N must be at least 1"),
    ("-1/2", "I and N must be integers"), ("1.5/2", "I and N must be integers"), ("", "no '/'"),
])
def test_bad_shard_values(value: str, problem: str) -> None:
    with pytest.raises(MiAssertInputError) as info:
        parse_shard(value)
    assert str(info.value) == (f"--mi-shard must be I/N with integers 1 <= I <= N, e.g. 1/2 "
                               f"(shards count from 1); got {value!r} ({problem})")


def test_good_shard_values() -> None:
    assert parse_shard("1/1") == Shard(1, 1)
    assert parse_shard(" 2/3 ") == Shard(2, 3) and str(Shard(2, 3)) == "2/3"


# ----- through pytest -------------------------------------------------------------------------

FILES = {
    "test_alpha": "import pytest\n\n@pytest.mark.parametrize('k', range(3))\n"
                  "def test_a(k):\n    pass\n\ndef test_a2():\n    pass\n",
    "test_beta": "def test_b():\n    pass\n\ndef test_b2():\n    pass\n",
    "test_gamma": "def test_g():\n    pass\n",
}
REVERSE = """
import pytest

@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    items.reverse()
"""


def _collected(result: pytest.RunResult) -> list[str]:
    return [line for line in result.stdout.lines if "::" in line and " " not in line]


def test_shard_runs_partition_the_suite(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(**FILES)
    everything = _collected(pytester.runpytest("--collect-only", "-q", "-p", "no:cacheprovider"))
    assert len(everything) == 7
    parts = []
    for i in (1, 2):
        result = pytester.runpytest("--collect-only", "-q", "-p", "no:cacheprovider",
                                    "--mi-shard", f"{i}/2")
        parts.append(_collected(result))
        result.stdout.fnmatch_lines([f"{len(parts[-1])}/7 tests collected ({7 - len(parts[-1])} deselected)*"])
    assert sorted(parts[0] + parts[1]) == sorted(everything) and not set(parts[0]) & set(parts[1])
    assert parts == [[n for n in everything if "alpha" in n],
                     [n for n in everything if "alpha" not in n]]
    # the same shards with the files named in another order and the items reversed
    pytester.makeconftest(REVERSE)
    for i, part in zip((1, 2), parts, strict=True):
        result = pytester.runpytest("--collect-only", "-q", "-p", "no:cacheprovider",
                                    "--mi-shard", f"{i}/2", "test_gamma.py", "test_beta.py",
                                    "test_alpha.py")
        assert sorted(_collected(result)) == sorted(part)


def test_shard_run_reports_its_plan(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(**FILES)
    result = pytester.runpytest("-p", "no:cacheprovider", "--mi-shard", "2/2", "--mi-report", "rep")
    result.assert_outcomes(passed=3, deselected=4)
    result.stdout.fnmatch_lines(["mi-assert: --mi-shard 2/2: 3 of 7 test(s), 2 of 3 test file(s)"])
    plan = json.loads((pytester.path / "rep" / "report.json").read_text())["meta"]["shard"]
    assert plan["tests"] == ["test_beta.py::test_b", "test_beta.py::test_b2", "test_gamma.py::test_g"]
    assert {k: plan[k] for k in ("index", "count", "unit", "collected", "selected", "files")} == {
        "index": 2, "count": 2, "unit": "file", "collected": 7, "selected": 3, "files": 3}


def test_empty_shard_is_not_a_green_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(**FILES)
    empty = pytester.runpytest("-p", "no:cacheprovider", "--mi-shard", "4/4")
    assert empty.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    empty.stdout.fnmatch_lines([
        "mi-assert: --mi-shard 4/4 selected no tests: the 3 collected test file(s) fill only 3 "
        "of 4 shards (a file is never split); exit status 5. Use at most 3 shards, or pass "
        "--mi-shard-allow-empty to let an empty shard pass"])
    allowed = pytester.runpytest("-p", "no:cacheprovider", "--mi-shard", "4/4",
                                 "--mi-shard-allow-empty")
    assert allowed.ret == pytest.ExitCode.OK
    allowed.stdout.fnmatch_lines(["*selected no tests*passing (--mi-shard-allow-empty)"])
    full = pytester.runpytest("-p", "no:cacheprovider", "--mi-shard", "3/4",
                              "--mi-shard-allow-empty")
    full.assert_outcomes(passed=1, deselected=6)


@pytest.mark.parametrize("args, message", [
    (("--mi-shard", "3/2"), "--mi-shard must be I/N with integers 1 <= I <= N, e.g. 1/2 "
                            "(shards count from 1); got '3/2' (I must be between 1 and 2)"),
    (("--mi-shard", "0/2"), "--mi-shard must be I/N * got '0/2' (shards count from 1: the first "
                            "shard is 1/N)"),
    (("--mi-shard-allow-empty",), "--mi-shard-allow-empty needs --mi-shard I/N"),
    (("--mi-shard", "1/2", "--mi-save-baseline", "main"),
     "--mi-save-baseline cannot be combined with --mi-shard 1/2: each shard holds only part of "
     "the claims; save the baseline from an unsharded run"),
])
def test_shard_usage_errors(pytester: pytest.Pytester, args: tuple[str, ...], message: str) -> None:
    pytester.makepyfile(**FILES)
    result = pytester.runpytest("-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: mi-assert: {message}"])
