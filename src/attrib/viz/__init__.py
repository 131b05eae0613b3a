"""attrib.viz: pictures of explanations (matplotlib and Pillow, the ``viz`` extra).

    from attrib import IntegratedGradients
    from attrib import viz
    result = IntegratedGradients(model)(images, target="predicted")
    fig = viz.show(result, images, index=0, class_names=names)   # image | map | overlay
    viz.save_png(fig, "ig.png")
    viz.save_png(viz.overlay(images[0], viz.saliency_map(result, 0)), "overlay.png")
    viz.grid(images, {"IG": result, "Grad-CAM": cam}, class_names=names)

- maps: ``saliency_map(s)`` (channel reductions ``max_abs``, ``sum``, ``abs_sum``, ``l2``;
  bilinear upsampling of layer maps), ``clip_percentile``, ``upsample``, ``is_signed``,
  ``default_reduction``;
- colour: ``colormap_for`` (sequential ``inferno`` for magnitudes, diverging ``RdBu_r``
  centred at 0 for signed maps), ``colorize``;
- pictures: ``to_image``, ``overlay`` (arrays), ``show``, ``grid`` (figures);
- text: ``token_html``, ``token_figure``, ``attention_figure``;
- evaluation (results of ``attrib.metrics``): ``curves_figure`` (deletion, insertion),
  ``sanity_figure``, ``randomization_figure`` (model randomization), ``comparison_figure``
  (a ``compare`` table);
- attention erasure (``attrib.text.erasure``): ``single_weight_figure``,
  ``set_fractions_figure``;
- export: ``save_png``, ``png_bytes``, ``data_uri``.

Figures are plain matplotlib ``Figure`` objects that pyplot does not track; nothing is
shown or saved unless asked. matplotlib and Pillow are imported by the functions that use
them, never by ``import attrib`` or ``import attrib.viz``.
"""

from attrib.viz.colors import DIVERGING, SEQUENTIAL, colorize, colormap_for
from attrib.viz.erasure import set_fractions_figure, single_weight_figure
from attrib.viz.evaluation import (
    comparison_figure,
    curves_figure,
    randomization_figure,
    sanity_figure,
)
from attrib.viz.export import data_uri, png_bytes, save_png
from attrib.viz.figures import grid, show
from attrib.viz.images import to_image
from attrib.viz.maps import (
    SIGNED_METHODS,
    clip_percentile,
    default_reduction,
    drawn_signed,
    is_signed,
    saliency_map,
    saliency_maps,
    upsample,
)
from attrib.viz.overlay import overlay
from attrib.viz.text import attention_figure, generation_figure, token_figure, token_html
from attrib.viz.titles import explained_class, map_title

__all__ = [
    "DIVERGING",
    "SEQUENTIAL",
    "SIGNED_METHODS",
    "attention_figure",
    "clip_percentile",
    "colorize",
    "colormap_for",
    "comparison_figure",
    "curves_figure",
    "data_uri",
    "default_reduction",
    "drawn_signed",
    "explained_class",
    "generation_figure",
    "grid",
    "is_signed",
    "map_title",
    "overlay",
    "png_bytes",
    "randomization_figure",
    "saliency_map",
    "saliency_maps",
    "sanity_figure",
    "save_png",
    "set_fractions_figure",
    "show",
    "single_weight_figure",
    "to_image",
    "token_figure",
    "token_html",
    "upsample",
]
