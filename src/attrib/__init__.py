"""attrib: explain the predictions of PyTorch models.

Every method is configured once with the model and called on batches::

    from attrib import Saliency
    attribution = Saliency(model)(images, target="predicted")
    maps = attribution.saliency()          # (N, H, W): max over channels of |gradient|

Every method of ``attrib.methods`` is a name of this package; ``attrib.methods.catalogue``
says what each one is.
"""

from attrib import methods as _methods
from attrib.api import explain
from attrib.core.errors import AttribError, AttribWarning
from attrib.core.neuron import neuron
from attrib.core.result import Attribution
from attrib.core.rows import bind
from attrib.methods import *  # noqa: F403 - every method is a public name of attrib
from attrib.text.anchors import AnchorsText  # registers the text methods too (attrib.text)

__version__ = "0.1.0"

__all__ = [
    "AnchorsText",
    "AttribError",
    "AttribWarning",
    "Attribution",
    "bind",
    "explain",
    "neuron",
    *_methods.__all__,
]
