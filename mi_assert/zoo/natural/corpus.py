"""The natural-text corpus: the King James Version of the Bible, from Debian's packages.

``bible-kjv-text`` (public domain text; the package is GPL-2 packaging around it, about 1.7 MB
compressed) ships the text in a compressed format read by ``bible`` from the ``bible-kjv``
package; nothing is downloaded at run time (``apt-get install -y bible-kjv``). Verse numbers
are removed and each chapter becomes one paragraph of prose.

The split is by chapter: every :data:`HELDOUT_EVERY`-th chapter (counted from
:data:`HELDOUT_OFFSET`) is held out from tokenizer and model training. The held-out chapters are
committed beside the checkpoints (``heldout.txt``) so suites and manifest checks run without the
Debian package.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

from mi_assert.errors import MiAssertInputError

CORPUS_NAME = "King James Version of the Bible (Debian bible-kjv-text 4.38)"
CORPUS_LICENSE = "public domain (text); Debian packaging GPL-2+"
PACKAGES = ("bible-kjv-text", "bible-kjv")
HELDOUT_EVERY = 20
HELDOUT_OFFSET = 7

_HEADER_RE = re.compile(r"^(?P<book>(?:[1-3] )?[A-Z][A-Za-z ]+?) (?P<chapter>\d+)$")
_VERSE_RE = re.compile(r"^\s+(?P<verse>\d+) (?P<text>.*)$")


@dataclass(frozen=True)
class Chapter:
    book: str
    chapter: int
    text: str

    @property
    def title(self) -> str:
        return f"{self.book} {self.chapter}"


def raw_text() -> str:
    """The whole text as the ``bible`` program prints it (Genesis 1:1 to Revelation 22:21)."""
    exe = shutil.which("bible")
    if exe is None:
        raise MiAssertInputError(
            "the KJV corpus needs the `bible` program: apt-get install -y " + " ".join(PACKAGES))
    out = subprocess.run([exe, "Gen1:1-Rev22:21"], check=True, capture_output=True, text=True)
    return out.stdout


def parse_chapters(raw: str) -> list[Chapter]:
    """Chapters from ``bible``'s output: a header line ``Book N``, then verses ``  N text``
    wrapped over several lines. Verse numbers are dropped; verses join with a space."""
    chapters: list[Chapter] = []
    book, number = "", 0
    verses_list: list[str] = []

    def flush() -> None:
        if book and verses_list:
            chapters.append(Chapter(book, number, " ".join(v.strip() for v in verses_list)))

    for line in raw.splitlines():
        if not line.strip():
            continue
        header = _HEADER_RE.match(line)
        if header is not None and not line.startswith(" "):
            flush()
            book, number, verses_list = header["book"], int(header["chapter"]), []
            continue
        verse = _VERSE_RE.match(line)
        if verse is not None:
            verses_list.append(verse["text"])
        elif verses_list:
            verses_list[-1] += " " + line.strip()
    flush()
    return chapters


def is_heldout(index: int) -> bool:
    return index % HELDOUT_EVERY == HELDOUT_OFFSET


def split(chapters: list[Chapter]) -> tuple[list[Chapter], list[Chapter]]:
    """(training chapters, held-out chapters)."""
    train = [c for i, c in enumerate(chapters) if not is_heldout(i)]
    heldout = [c for i, c in enumerate(chapters) if is_heldout(i)]
    return train, heldout


def write_chapters(chapters: list[Chapter], path: str) -> None:
    """One chapter per line: ``Book N<TAB>text``."""
    with open(path, "w", encoding="utf-8") as f:
        for c in chapters:
            f.write(f"{c.title}\t{c.text}\n")


def read_chapters(path: str) -> list[Chapter]:
    out: list[Chapter] = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            title, text = line.rstrip("\n").split("\t", 1)
            book, number = title.rsplit(" ", 1)
            out.append(Chapter(book, int(number), text))
    return out
