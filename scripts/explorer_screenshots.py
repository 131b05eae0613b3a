"""Screenshots of the explorer's pages for the README (``docs/explorer/*.png``).

    .venv/bin/python scripts/explorer_screenshots.py --out docs/explorer

Makes two runs of the shipped ground-truth CNN on 96 ground-truth images (Saliency, Grad-CAM
and integrated gradients with deletion, pointing game and the sanity check; the second with
Grad-CAM at another layer), serves them with the model loaded (``attrib serve``'s app in
uvicorn), drives Debian's Chromium through each page (Playwright) and writes one PNG per
page, scaled down and reduced to 256 colours so that they stay small in the repository.
"""

from __future__ import annotations

import argparse
import io
import socket
import tempfile
import threading
import time
from pathlib import Path

from PIL import Image


def _runs(root: Path) -> list[Path]:
    from attrib.data.ground_truth import CLASSES
    from attrib.data.gt_cnn import load_ground_truth_cnn
    from attrib.runs import run
    from attrib.runs.ground_truth import write_ground_truth_folder

    data = write_ground_truth_folder(root / "data", n=96, seed=1)
    model = load_ground_truth_cnn()
    out = []
    for name, methods, layer in (
        ("gt-cnn", "saliency,gradcam,integrated_gradients", "features.9"),
        ("gt-cnn-layer6", "gradcam,gradient_x_input", "features.6"),
    ):
        done = run(
            model,
            data,
            methods=methods,
            metrics="deletion,pointing_game,sanity",
            layer=layer,
            out=root / name,
            shard_size=32,
            sanity_samples=16,
            progress=False,
            workers=0,
            preset="none",
            label_names=CLASSES,
        )
        out.append(done.path)
    return out


def _save(png: bytes, path: Path, width: int) -> None:
    image = Image.open(io.BytesIO(png)).convert("RGB")
    if image.width > width:
        image = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
    image.quantize(256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    print(f"{path} ({path.stat().st_size // 1024} KiB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/explorer")
    parser.add_argument("--width", type=int, default=900)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    import uvicorn
    from playwright.sync_api import sync_playwright

    from attrib.runs.models import load_model
    from attrib.serve.app import create_app
    from attrib.serve.live import Live
    from attrib.serve.served import open_served

    with tempfile.TemporaryDirectory() as tmp:
        paths = _runs(Path(tmp))
        served = [open_served(p, p.name) for p in paths]
        app = create_app(served, Live(load_model("gt_cnn")))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning"))
        threading.Thread(target=server.run, daemon=True).start()
        while not server.started:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}"
        picture = Path(tmp) / "data" / "images" / "00007.png"

        def settle(page) -> None:
            for _ in range(400):
                if page.evaluate(
                    "() => [...document.images].filter(i => i.getBoundingClientRect().top"
                    " < innerHeight).every(i => i.complete)"
                ):
                    return
                time.sleep(0.05)

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1200, "height": 820})
            page.goto(f"{url}/#/runs/gt-cnn?sort=GradCAM:deletion&order=desc&limit=50")
            page.wait_for_selector("#grid .card")
            settle(page)
            _save(page.screenshot(), out / "overview.png", args.width)

            page.goto(f"{url}/#/sample/gt-cnn/00002")
            page.wait_for_selector("#maps img.layer")
            page.select_option("#sel-target", value="0")
            page.locator("#live-panel input[value=GradCAM]").check()
            page.locator("#explain").click()
            page.wait_for_selector("#computed figure.computed")
            settle(page)
            _save(page.screenshot(full_page=True), out / "sample.png", args.width)

            page.goto(f"{url}/#/methods?a=gt-cnn&b=gt-cnn-layer6")
            page.wait_for_selector(".panel table.verdict")
            _save(page.screenshot(full_page=True), out / "methods.png", args.width)

            page.goto(f"{url}/#/live")
            page.wait_for_selector("#file")
            page.set_input_files("#file", str(picture))
            page.wait_for_selector("#live-top")
            for name in ("IntegratedGradients", "Occlusion"):
                page.locator(f"input[value={name}]").check()
            page.locator("#explain").click()
            for _ in range(600):
                if page.locator("#computed figure.computed").count() == 4:
                    break
                time.sleep(0.05)
            settle(page)
            _save(page.screenshot(full_page=True), out / "live.png", args.width)
            browser.close()
        server.should_exit = True


if __name__ == "__main__":
    main()
