"""attrib.metrics: can this explanation be trusted? Pure functions over models, inputs and
attributions, each batched through the core engine, with thin helpers on top.

- axioms (Sundararajan et al. 2017): ``completeness``, ``sensitivity``,
  ``symmetry_preservation``, ``implementation_invariance``;
- sanity checks (Adebayo et al. 2018): ``model_randomization`` (cascading, independent),
  ``randomization_similarity`` (explicit parameter values), ``random_logit`` (Sixt et al.
  2020);
- faithfulness: ``deletion``, ``insertion`` (Petsiuk et al. 2018), ``pixel_flipping``
  (Samek et al. 2017), ``road`` (Rong et al. 2022), ``infidelity``, ``max_sensitivity``
  (Yeh et al. 2019);
- localization against ground-truth masks: ``pointing_game``, ``relevance_mass_accuracy``,
  ``relevance_rank_accuracy``;
- similarity of explanations: ``spearman``, ``ssim``, ``hog_similarity``;
- ``compare(model, x, methods, metrics)``: methods by metrics, mean and standard error;
- ``verdict``: which methods to trust, from the sanity check and the faithfulness metrics
  against a random map (``random_maps``).

Pictures of these results are in ``attrib.viz`` (``curves_figure``, ``sanity_figure``,
``randomization_figure``, ``comparison_figure``); nothing here draws.
"""

from attrib.metrics.axioms import (
    CompletenessResult,
    ImplementationInvarianceResult,
    SensitivityResult,
    SymmetryResult,
    completeness,
    implementation_invariance,
    sensitivity,
    symmetry_preservation,
)
from attrib.metrics.compare import METRICS, ComparisonTable, Evaluation, compare
from attrib.metrics.faithfulness import (
    Curve,
    deletion,
    insertion,
    perturbation_curve,
    pixel_flipping,
    road,
)
from attrib.metrics.imputation import linear_imputation
from attrib.metrics.infidelity import infidelity, max_sensitivity
from attrib.metrics.localization import (
    pointing_game,
    relevance_mass_accuracy,
    relevance_rank_accuracy,
)
from attrib.metrics.sanity import (
    MEASURES,
    RandomizationResult,
    draw_parameters,
    model_randomization,
    random_logit,
    randomizable_layers,
    randomization_similarity,
)
from attrib.metrics.similarity import (
    constant_maps,
    hog,
    hog_similarity,
    pearson,
    spearman,
    ssim,
)
from attrib.metrics.verdict import (
    Comparison,
    MethodVerdict,
    SanityOutcome,
    Verdict,
    random_maps,
    verdict,
)

__all__ = [
    "MEASURES",
    "METRICS",
    "Comparison",
    "ComparisonTable",
    "CompletenessResult",
    "Curve",
    "Evaluation",
    "ImplementationInvarianceResult",
    "MethodVerdict",
    "RandomizationResult",
    "SanityOutcome",
    "SensitivityResult",
    "SymmetryResult",
    "Verdict",
    "compare",
    "completeness",
    "constant_maps",
    "deletion",
    "draw_parameters",
    "hog",
    "hog_similarity",
    "implementation_invariance",
    "infidelity",
    "insertion",
    "linear_imputation",
    "max_sensitivity",
    "model_randomization",
    "pearson",
    "perturbation_curve",
    "pixel_flipping",
    "pointing_game",
    "random_logit",
    "random_maps",
    "randomizable_layers",
    "randomization_similarity",
    "relevance_mass_accuracy",
    "relevance_rank_accuracy",
    "road",
    "sensitivity",
    "spearman",
    "ssim",
    "symmetry_preservation",
    "verdict",
]
