"""``kjv-gpt2-4l``: the committed checkpoints match their manifest, and the manifest shows a
model that learned the language and grew induction heads by itself."""

from __future__ import annotations

import shutil

import pytest

from mi_assert.zoo.natural import corpus, manifest
from mi_assert.zoo.natural.prompts import FOLDER

pytestmark = pytest.mark.skipif(not (FOLDER / manifest.MANIFEST_NAME).exists(),
                                reason="kjv-gpt2-4l has no manifest yet")

#: committed size budget of the whole model folder (checkpoints, tokenizer, held-out text, lens)
MAX_BYTES = 30_000_000


@pytest.fixture(scope="module")
def data():
    return manifest.read()


def final_key(data) -> str:
    return max(data["steps"], key=lambda k: int(k[4:]))


def test_files_hashes_and_size(data) -> None:
    assert manifest.file_hashes() == data["files"]
    total = sum(p.stat().st_size for p in FOLDER.rglob("*") if p.is_file())
    assert total <= MAX_BYTES, f"{total / 1e6:.1f} MB committed"


def test_final_loss_recomputes_and_beats_unigram(data) -> None:
    assert manifest.check(steps=[final_key(data)]) == []
    final = data["steps"][final_key(data)]["heldout_loss"]
    assert final < data["unigram_loss"] - 1.5, (final, data["unigram_loss"])
    losses = [data["steps"][k]["heldout_loss"] for k in sorted(data["steps"], key=lambda k: int(k[4:]))]
    assert losses == sorted(losses, reverse=True), f"held-out loss does not fall over training: {losses}"


def test_induction_head_emerged_late_in_training(data) -> None:
    """The recorded bump: the final best induction head scores above 0.4 on the fit split; at
    every earlier checkpoint no head reached 0.1 (so the head formed in training's last phase,
    nothing set it)."""
    layer, head, score = data["discovery"]["heads"]["induction"][0]
    assert score > 0.4
    steps = sorted(data["steps"], key=lambda k: int(k[4:]))
    assert data["steps"][steps[-1]]["head_scores"]["induction"][layer][head] == score
    for key in steps[:-1]:
        assert max(max(row) for row in data["steps"][key]["head_scores"]["induction"]) < 0.1, key


def test_check_reports_a_tampered_manifest(data, tmp_path, monkeypatch) -> None:
    copy = tmp_path / FOLDER.name
    shutil.copytree(FOLDER, copy, ignore=shutil.ignore_patterns("lenses"))
    key = final_key(data)
    tampered = dict(data, steps={key: {**data["steps"][key], "heldout_loss": data["steps"][key]["heldout_loss"] + 0.1}})
    (copy / manifest.MANIFEST_NAME).write_text(__import__("json").dumps(tampered))
    monkeypatch.setattr(manifest, "head_scores", lambda spec: data["steps"][key]["head_scores"])
    problems = manifest.check(copy, steps=[key])
    assert any("held-out loss" in p for p in problems), problems
    assert any("file hashes" in p for p in problems), problems


@pytest.mark.skipif(shutil.which("bible") is None, reason="the corpus package bible-kjv is not installed")
def test_heldout_file_is_the_corpus_split() -> None:
    chapters = corpus.parse_chapters(corpus.raw_text())
    assert len(chapters) == 1189
    _, heldout = corpus.split(chapters)
    assert corpus.read_chapters(str(FOLDER / "heldout.txt")) == heldout
