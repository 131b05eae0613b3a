"""The HTML report: self-contained, and every embedded image decodes."""

from __future__ import annotations

import pytest
import torch

from tests.cli.conftest import FACTORY, run
from tests.cli.html_images import decode_all, parse

pytest.importorskip("matplotlib")
pytest.importorskip("PIL")


def test_report_in_process_holds_every_section_and_its_images_decode(tmp_path):
    from attrib import GradientXInput, Saliency
    from attrib.report import (
        Section,
        add_metrics,
        add_sanity,
        explain_all,
        image_report,
        render,
        write_html,
    )
    from tests.cli.toy_models import tiny_cnn

    model = tiny_cnn()
    torch.manual_seed(1)
    x = torch.rand(2, 3, 12, 16)
    target = model(x).argmax(-1)

    def fails(x, target):
        raise RuntimeError("this method does not fit\nsecond line")

    methods = {"Saliency": Saliency(model), "GradientXInput": GradientXInput(model), "Bad": fails}
    explained = explain_all(methods, x, target)
    assert set(explained.attributions) == {"Saliency", "GradientXInput"}
    assert explained.failures == {"Bad": "RuntimeError: this method does not fit"}
    pixels = [x[i].permute(1, 2, 0).numpy() for i in range(2)]
    report = image_report(
        "toy <report>",
        ["a", "b"],
        pixels,
        model(x),
        explained,
        class_names=["zero", "one", "two", "three"],
        families=[("Gradients", ["Saliency", "GradientXInput"])],
        png_dir=tmp_path / "maps",
    )
    add_metrics(report, model, x, explained, target, steps=4)
    add_sanity(report, {"Saliency": methods["Saliency"]}, x, target, model=model, checkpoints=3)
    report.text.append(Section("text", "<p>highlighted</p>"))
    html = render(report)
    page = parse(html)
    assert page.scripts == 0 and page.external == []
    sizes = decode_all(page.images)
    # 2 inputs, 2 x 2 maps, 2 curve figures, 2 sanity figures
    assert len(sizes) == 2 + 4 + 2 + 2
    assert sizes.count((16, 12)) == 6  # inputs and maps at the image's size
    assert "toy &lt;report&gt;" in html and "Bad failed" in html
    assert "Simonyan et al. 2014" in html and "Deletion curves" in html
    assert "Model randomization" in html and "highlighted" in html
    assert (tmp_path / "maps" / "a_Saliency.png").is_file()
    path = write_html(report, tmp_path / "r" / "report.html")
    assert path.read_text(encoding="utf-8") == html


def test_attrib_report_writes_a_self_contained_page(files, tmp_path):
    out = tmp_path / "report"
    done = run(
        "report",
        str(files["one.png"]),
        str(files["two.jpg"]),
        "--model",
        FACTORY,
        "--method",
        "saliency,gradcam,occlusion",
        "--preprocess",
        "none",
        "--metric",
        "deletion,insertion",
        "--steps",
        "4",
        "--sanity",
        "saliency",
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("report.html")
    html = (out / "report.html").read_text(encoding="utf-8")
    page = parse(html)
    assert page.scripts == 0 and page.external == []
    sizes = decode_all(page.images)
    assert len(sizes) == 2 + 2 * 3 + 2 + 2
    for section in ("Inputs and predictions", "Maps", "Metrics", "Sanity checks", "Methods"):
        assert section in html
    assert len(list((out / "maps").glob("*.png"))) == 6


def test_a_result_without_the_models_output_is_titled_from_the_given_logits():
    # SmoothGrad given classes runs no forward at the clean inputs, so its result holds no
    # output; given the logits, explain_all fills it and the caption shows the probability
    from attrib import Saliency, SmoothGrad
    from attrib.report import explain_all, image_report
    from tests.cli.toy_models import tiny_cnn

    model = tiny_cnn()
    x = torch.rand(2, 3, 12, 16, generator=torch.Generator().manual_seed(2))
    logits = model(x).detach()
    target = logits.argmax(-1)
    sg = {"SG": SmoothGrad(Saliency(model), samples=2, seed=0)}
    assert explain_all(sg, x, target).attributions["SG"].output is None
    explained = explain_all(sg, x, target, logits=logits)
    pixels = [x[i].permute(1, 2, 0).numpy() for i in range(2)]
    report = image_report("t", ["a", "b"], pixels, logits, explained)
    for i, name in enumerate(["a", "b"]):
        p = float(logits[i].softmax(-1)[target[i]])
        assert report.maps[(name, "SG")].title == f"class {int(target[i])} {p:.2f}"


def test_explain_all_decides_predicted_once_for_every_method():
    # each method used to decide "predicted" on its own forward; now the classes are decided
    # once (core's decide_target, in chunks of batch_size) and every method is given them
    from attrib import Saliency, SmoothGrad
    from attrib.report import explain_all
    from tests.cli.toy_models import tiny_cnn
    from tests.models import absolute_forward

    model = tiny_cnn()
    x = torch.rand(5, 3, 12, 16, generator=torch.Generator().manual_seed(3))
    rows: list[int] = []
    handle = model.register_forward_pre_hook(lambda m, args: rows.append(args[0].shape[0]))
    given: list = []

    def records(x, target):
        given.append(target)
        return Saliency(model)(x, target=target)

    methods = {"SG": SmoothGrad(Saliency(model), samples=2, seed=0), "records": records}
    try:
        explained = explain_all(methods, x, batch_size=2)
    finally:
        handle.remove()
    assert rows[:3] == [2, 2, 1]  # ceil(5 / 2) forwards decide, before any method runs
    assert given[0] is explained.target
    assert explained.attributions["SG"].target.tolist() == explained.target.tolist()
    # One forward over the batch may add its terms in another order than the decision's
    # chunks: per logit 27 + 1 and 72 + 1 terms (convolutions and biases), 192 + 1 (the
    # 12 x 16 average pool), 8 + 1 (the head), so the two differ by at most 303 eps M
    # (tests.models.absolute_forward); every top logit leads by more, so the classes agree.
    with torch.no_grad():
        logits = model(x)
    tolerance = 303 * torch.finfo(torch.float32).eps * float(absolute_forward(model, x).max())
    top2 = logits.topk(2, dim=-1).values
    assert bool((top2[:, 0] - top2[:, 1] > 2 * tolerance).all())
    assert explained.target.tolist() == logits.argmax(-1).tolist()
    # the decision's output titles the SmoothGrad maps, whose results hold no output of theirs
    torch.testing.assert_close(explained.attributions["SG"].output, logits, rtol=0, atol=tolerance)


class _Page:
    """The parts of a report page the layout tests look at."""

    def __init__(self, html: str) -> None:
        from html.parser import HTMLParser

        page = self
        self.style = html.split("<style>", 1)[1].split("</style>", 1)[0]
        self.sections: list[str] = [""]  # h2 ids in order ("" before the first)
        self.tables: list[dict] = []  # class, style, rows of cells (tag, class, text)

        class Reader(HTMLParser):
            def __init__(self) -> None:
                super().__init__()
                self.cell: list | None = None

            def handle_starttag(self, tag, attrs):
                attrs = dict(attrs)
                if tag == "h2":
                    page.sections.append(attrs.get("id", ""))
                elif tag == "table":
                    page.tables.append({**attrs, "rows": [], "section": page.sections[-1]})
                elif tag == "tr" and page.tables:
                    page.tables[-1]["rows"].append([])
                elif tag in ("td", "th") and page.tables:
                    self.cell = [tag, attrs.get("class"), ""]
                    page.tables[-1]["rows"][-1].append(self.cell)

            def handle_endtag(self, tag):
                if tag in ("td", "th"):
                    self.cell = None

            def handle_data(self, data):
                if self.cell is not None:
                    self.cell[2] += data

        Reader().feed(html)

    def rule(self, selector: str) -> str:
        import re

        found = re.search(re.escape(selector) + r"\{([^}]*)\}", self.style)
        assert found, selector
        return found.group(1)


def test_the_page_wraps_wide_grids_aligns_text_left_and_ends_with_the_verdict():
    """Ten methods of one family were one 1790 px grid in a 1400 px page (four behind a
    scrollbar); description cells were right-aligned; the page had no verdict."""
    import re

    from attrib import Saliency
    from attrib.report import add_metrics, add_sanity, add_verdict, explain_all, image_report
    from attrib.report.html import MAP_WIDTH, MAX_COLUMNS, PAGE_WIDTH, render
    from tests.cli.toy_models import tiny_cnn

    model = tiny_cnn()
    torch.manual_seed(2)
    x = torch.rand(2, 3, 12, 16)
    target = model(x).argmax(-1)
    names = [f"Method{k}" for k in range(10)]
    methods = {name: Saliency(model) for name in names}
    explained = explain_all(methods, x, target)
    pixels = [x[i].permute(1, 2, 0).numpy() for i in range(2)]
    report = image_report("toy", ["a", "b"], pixels, model(x), explained, families=[("Ten", names)])
    scores = add_metrics(report, model, x, explained, target, steps=4)
    checked = add_sanity(report, {"Method0": methods["Method0"]}, x, target, model=model)
    judged = add_verdict(report, scores, checked)
    page = _Page(render(report))

    # the page is PAGE_WIDTH wide at most; every grid fits in it, every method in one
    assert f"max-width:{PAGE_WIDTH}px" in page.rule("body")
    grids = [t for t in page.tables if t.get("class") == "maps"]
    shown = []
    for grid in grids:
        width = re.fullmatch(r"width:min\(100%, (\d+)px\)", grid["style"])
        assert width and int(width.group(1)) <= PAGE_WIDTH - 2 * 16, grid["style"]
        head = [text for _, _, text in grid["rows"][0][1:]]
        assert len(head) <= MAX_COLUMNS
        shown.extend(head)
    assert sorted(shown) == sorted(names) and len(grids) == 2  # 10 -> 5 + 5
    assert "scroll" not in {t.get("class") for t in page.tables}
    assert f"max-width:{MAP_WIDTH}px" in page.rule("table.maps img")
    assert all(int(w) <= PAGE_WIDTH for w in re.findall(r"width:(\d+)px", page.style))

    # text left, numbers right
    assert "text-align:left" in page.rule("table.data td,table.data th")
    assert "text-align:right" in page.rule("table.data td.num")
    notes = next(t for t in page.tables if t["section"] == "methods")
    assert all(cls != "num" for row in notes["rows"] for _, cls, _ in row)
    faithfulness = next(t for t in page.tables if t["section"] == "metrics")
    first = faithfulness["rows"][1]
    assert first[0][1] != "num" and all(cls == "num" for _, cls, _ in first[1:])
    assert faithfulness["rows"][-1][0][2] == "random map (baseline)"

    # the verdict ends the page and names every method
    assert page.sections[-1] == "verdict"
    verdict = next(t for t in page.tables if t["section"] == "verdict")
    assert [row[0][2] for row in verdict["rows"][1:]] == names
    assert verdict["rows"][1][1][2].startswith(("passed", "failed", "inconclusive"))
    assert all(row[1][2] == "not run" for row in verdict["rows"][2:])
    assert [m.method for m in judged.methods] == names
    assert report.verdict_summary == judged.sentence() and "Method0" in report.verdict_summary
