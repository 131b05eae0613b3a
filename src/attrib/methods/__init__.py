"""attrib's methods. Each is a callable object: ``Method(model, **settings)(x, target=...)``."""

from attrib.methods.base import Method
from attrib.methods.gradient import GradientXInput, Saliency

__all__ = ["GradientXInput", "Method", "Saliency"]
