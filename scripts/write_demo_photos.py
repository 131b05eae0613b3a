"""Write the demo's photographs (scikit-image's bundled ones) as PNG files into a folder, for
``attrib run`` on the demo model:

    python scripts/write_demo_photos.py out/photos
    attrib run out/photos --model demo --method gradcam,saliency \\
        --metric deletion,insertion,sanity --out runs/demo
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

from attrib.data.photos import load_photos


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    for name, array in load_photos().items():
        Image.fromarray(array).save(args.folder / f"{name}.png")
        print(args.folder / f"{name}.png")


if __name__ == "__main__":
    main()
