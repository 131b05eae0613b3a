"""The optional drawing packages, imported only when a drawing is made.

matplotlib and Pillow are the ``viz`` extra (``pip install attrib[viz]``): ``import attrib``
and ``import attrib.viz`` work without them, and a drawing call without them raises an
``AttribError`` that says what to install.
"""

from __future__ import annotations

from typing import Any

from attrib.core.errors import SettingError

__all__ = ["figure", "matplotlib", "pil_image"]


def matplotlib() -> Any:
    """The ``matplotlib`` module."""
    try:
        import matplotlib as mpl
    except ImportError:
        raise SettingError(
            "matplotlib", "matplotlib installed for drawing", "not installed", _INSTALL
        ) from None
    return mpl


def figure(width: float, height: float, dpi: float = 100) -> Any:
    """A new matplotlib ``Figure`` that pyplot does not track.

    Figures made this way are never shown by ``plt.show()`` and are freed with their last
    reference, so a loop that draws thousands of maps leaks nothing; notebooks still display
    them, and ``fig.savefig(...)`` saves them.
    """
    matplotlib()
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=dpi)


def pil_image() -> Any:
    """Pillow's ``PIL.Image`` module."""
    try:
        from PIL import Image
    except ImportError:
        raise SettingError(
            "Pillow", "Pillow installed for images", "not installed", _INSTALL
        ) from None
    return Image


_INSTALL = "Install the drawing extra: pip install 'attrib[viz]'."
