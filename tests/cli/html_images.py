"""Read a report's HTML: every embedded image, and every external reference."""

from __future__ import annotations

import base64
import binascii
import io
from html.parser import HTMLParser


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.external: list[str] = []
        self.scripts = 0
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "script":
            self.scripts += 1
        for name, value in attrs:
            if name in ("src", "href") and value is not None:
                if tag == "img" and name == "src":
                    self.images.append(value)
                if not value.startswith(("data:", "#")):
                    self.external.append(value)


def parse(html: str) -> _Collector:
    collector = _Collector()
    collector.feed(html)
    collector.close()
    return collector


def decode_all(sources: list[str]) -> list[tuple[int, int]]:
    """Decode every ``data:image/png;base64`` source with Pillow; their sizes."""
    from PIL import Image

    sizes = []
    for src in sources:
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix), src[:40]
        try:
            data = base64.b64decode(src[len(prefix) :], validate=True)
        except binascii.Error as error:  # pragma: no cover - the assertion says which
            raise AssertionError(f"bad base64: {error}") from None
        with Image.open(io.BytesIO(data)) as image:
            assert image.format == "PNG"
            image.load()  # decodes every pixel: a truncated PNG fails here
            sizes.append(image.size)
    return sizes
