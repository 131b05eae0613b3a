"""``attrib run`` and ``attrib summarize`` end to end, in-process through ``main``: a run of
the shipped ground-truth CNN over a written ground-truth folder, its verdict (the same as
the run's tables give through the Python API), a resume that recomputes nothing, a changed
command refused in one line, the summary as JSON and by class, an unknown metric."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import pytest

from attrib.cli.main import main
from attrib.runs import open_run
from attrib.runs.ground_truth import write_ground_truth_folder

pytest.importorskip("pyarrow")

N = 24
SHARD = 8


def command(manifest: Path, out: Path, *extra: str, method: str = "saliency,gradcam") -> list:
    return [
        "run",
        str(manifest),
        "--model",
        "gt_cnn",
        "--method",
        method,
        "--metric",
        "deletion,pointing_game,sanity",
        "--sanity-samples",
        "4",
        "--shard-size",
        str(SHARD),
        "--steps",
        "5",
        "--workers",
        "0",
        "--out",
        str(out),
        *extra,
    ]


@pytest.fixture(scope="module")
def gt(tmp_path_factory) -> Path:
    return write_ground_truth_folder(tmp_path_factory.mktemp("gt"), n=N, seed=5)


@pytest.fixture(scope="module")
def made(gt, tmp_path_factory):
    """The first run: (exit status, stdout, stderr, run folder)."""
    out = tmp_path_factory.mktemp("runs") / "run"
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        status = main(command(gt, out))
    return status, stdout.getvalue(), stderr.getvalue(), out


def files(run_dir: Path) -> dict[str, int]:
    """The shards' files and the sanity table, with their modification times."""
    paths = [*sorted((run_dir / "shards").rglob("*")), run_dir / "sanity.parquet"]
    return {str(p.relative_to(run_dir)): p.stat().st_mtime_ns for p in paths}


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("attrib: error: ") and "Traceback" not in err
    return lines[0]


def test_run_prints_and_writes_the_verdict_of_its_tables(made):
    status, out, err, run_dir = made
    assert status == 0, err
    done = open_run(run_dir)
    samples = done.samples.to_pylist()
    assert [r["index"] for r in samples] == list(range(N))
    assert {r["status"] for r in samples} == {"ok"}
    assert sorted({r["shard"] for r in samples}) == list(range(N // SHARD))
    assert set(done.methods) == {"Saliency", "GradCAM"}
    scores = done.scores.to_pylist()
    assert len(scores) == N * 3 * 2  # (Saliency, GradCAM, random map) x (deletion, pointing)
    sanity = done.sanity.to_pylist()  # --sanity-samples 4: four samples per method and step
    for method in ("Saliency", "GradCAM"):
        ids = {r["id"] for r in sanity if r["method"] == method}
        assert len(ids) == 4 and ids <= {r["id"] for r in samples}
    summary = done.summary()  # the verdict recomputed from the stored tables
    assert summary.ok == N and set(summary.methods) == {"Saliency", "GradCAM"}
    assert summary.text() in out and summary.text() not in err  # the verdict on stdout
    assert f"written: {run_dir}" in out
    assert (run_dir / "summary.md").read_text() == summary.markdown() + "\n"
    assert json.loads((run_dir / "summary.json").read_text()) == json.loads(
        json.dumps(summary.to_json())
    )


def test_the_same_command_again_resumes_and_recomputes_nothing(gt, made, capsys):
    _, _, _, run_dir = made
    before = files(run_dir)
    assert main(command(gt, run_dir)) == 0
    err = capsys.readouterr().err
    assert f"Resuming {run_dir}: {N // SHARD} shards done, 0 to do." in err
    assert files(run_dir) == before


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"extra": ("--set", "Saliency.abs=True")}, "methods.Saliency.settings.abs"),
        ({"method": "saliency"}, "methods.GradCAM"),
    ],
)
def test_a_changed_command_is_refused_in_one_line_naming_the_difference(
    gt, made, capsys, change, named
):
    _, _, _, run_dir = made
    before = files(run_dir)
    argv = command(
        gt,
        run_dir,
        *change.get("extra", ()),
        method=change.get("method", "saliency,gradcam"),
    )
    assert main(argv) == 1
    line = one_error_line(capsys.readouterr().err)
    assert named in line and "--force-new" in line
    assert files(run_dir) == before  # the run is left as it was


def test_force_new_starts_a_changed_run_over(gt, made, tmp_path, capsys):
    _, _, _, run_dir = made
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    assert main([*command(gt, copy, method="saliency"), "--force-new", "--quiet"]) == 0
    out = capsys.readouterr().out
    again = open_run(copy)
    assert again.methods == ["Saliency"]
    assert {r["method"] for r in again.scores.to_pylist()} == {"Saliency", "random map"}
    assert again.summary().text() in out  # --quiet: the verdict on stdout, no progress


def test_summarize_prints_json_markdown_and_by_class(made, capsys):
    _, _, _, run_dir = made
    done = open_run(run_dir)
    assert main(["summarize", str(run_dir), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(json.dumps(done.summary().to_json()))
    assert [m["method"] for m in printed["methods"]] == list(done.summary().ranking)
    assert {m["method"] for m in printed["methods"]} == {"Saliency", "GradCAM"}
    assert all(m["stats"]["deletion"]["n"] == N for m in printed["methods"])

    assert main(["summarize", str(run_dir), "--by-class"]) == 0
    by_class = done.summary(by_class=True)
    assert by_class.class_column == "label"
    assert capsys.readouterr().out == by_class.text() + "\n"
    assert main(["summarize", str(run_dir), "--markdown"]) == 0
    assert capsys.readouterr().out == done.summary().markdown() + "\n"


def test_an_unknown_metric_is_one_line_with_a_suggestion(gt, tmp_path, capsys):
    argv = command(gt, tmp_path / "run")
    argv[argv.index("--metric") + 1] = "deletion,pointng_game"
    assert main(argv) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "pointng_game" in line and "Did you mean 'pointing_game'?" in line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("model", "data", "text"),
    [
        ("demo", "folder", False),  # the image demo (EfficientNet-Lite0) on a folder of images
        ("demo", "texts.csv", True),  # the text demo (MiniLM) on a file of texts
        ("minilm-sentiment", "texts.csv", True),
        ("gt_cnn", "images.csv", False),
    ],
)
def test_the_data_decides_which_demo_model_runs(tmp_path, model, data, text):
    # `demo` names both demos; a folder of images once picked the text one, and failed
    from attrib.cli.main import build_parser
    from attrib.cli.run import _is_text

    (tmp_path / "folder").mkdir()
    (tmp_path / "texts.csv").write_text("text,label\ngood,1\n")
    (tmp_path / "images.csv").write_text("path,label\na.png,1\n")
    out = str(tmp_path / "r")
    args = build_parser().parse_args(
        ["run", str(tmp_path / data), "--model", model, "--method", "saliency", "--out", out]
    )
    assert _is_text(args) is text
