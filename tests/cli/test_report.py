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
