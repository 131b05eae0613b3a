"""The README's queries of a run directory work as printed: DuckDB and polars read the
tables as they are, and give what ``Run.scores`` holds."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from attrib.data.gt_cnn import load_ground_truth_cnn
from attrib.runs import run
from attrib.runs.ground_truth import write_ground_truth_folder

README = Path(__file__).resolve().parents[2] / "README.md"


def _block(language: str, containing: str) -> str:
    for block in re.findall(rf"```{language}\n(.*?)```", README.read_text(), re.S):
        if containing in block:
            return block
    raise AssertionError(f"no {language} block with {containing!r} in the README")


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    root = tmp_path_factory.mktemp("q")
    gt = write_ground_truth_folder(root / "gt", n=20, seed=4)
    return run(
        load_ground_truth_cnn(),
        gt,
        methods="gradcam,saliency",
        metrics="deletion",
        out=root / "runs" / "r50",
        shard_size=6,
        preset="none",
        progress=False,
        workers=0,
    )


def test_the_duckdb_query(done, monkeypatch):
    duckdb = pytest.importorskip("duckdb")
    monkeypatch.chdir(done.path.parent.parent)  # the query names runs/r50/...
    query = _block("sql", "duckdb")
    rows = duckdb.sql(query).fetchall()
    scores = [
        (r["id"], r["value"])
        for r in done.scores.to_pylist()
        if (r["method"], r["metric"]) == ("GradCAM", "deletion")
    ]
    worst = sorted(scores, key=lambda pair: -pair[1])[:10]
    assert [(r[0], r[3]) for r in rows] == worst
    predictions = {r["id"]: r["prediction"] for r in done.samples.to_pylist()}
    assert all(r[2] == predictions[r[0]] for r in rows)


def test_the_polars_query(done, monkeypatch):
    pytest.importorskip("polars")
    monkeypatch.chdir(done.path.parent.parent)
    code = _block("python", "import polars")
    namespace: dict = {}
    exec(code.replace("pl.read_parquet", "result = pl.read_parquet", 1), namespace)
    table = namespace["result"]
    means = {(m, k): v for m, k, v in table.iter_rows()}
    for method in ("GradCAM", "Saliency", "random map"):
        values = [
            r["value"]
            for r in done.scores.to_pylist()
            if (r["method"], r["metric"]) == (method, "deletion")
        ]
        assert means[(method, "deletion")] == pytest.approx(sum(values) / len(values))
