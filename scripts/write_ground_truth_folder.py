"""Write the ground-truth shapes data set as files: PNG images, PNG object masks and a
``manifest.csv`` (id, path, mask, label, class), the form ``attrib run`` reads:

    .venv/bin/python scripts/write_ground_truth_folder.py --n 2000 --seed 1 runs/gt-data
    .venv/bin/attrib run runs/gt-data/manifest.csv --model gt_cnn --method gradcam,saliency \\
        --metric deletion,insertion,pointing_game,relevance_mass,sanity --out runs/gt

Seed 0 is the shipped CNN's training set and seed 1 its test set
(``scripts/train_ground_truth_cnn.py``): explain seed 1.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from attrib.runs.ground_truth import write_ground_truth_folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(write_ground_truth_folder(args.folder, n=args.n, seed=args.seed))


if __name__ == "__main__":
    main()
