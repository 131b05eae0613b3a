"""What each method is, in a few words: its paper, the idea, the formula.

The report prints these next to the maps and ``attrib methods`` prints the papers. Methods
not listed here (added later) fall back to the first line of their docstring.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["NOTES", "MethodNote", "note_for"]


@dataclass(frozen=True)
class MethodNote:
    """``short``: a few words (``attrib methods``); ``paper``; ``summary``: the idea in a
    sentence or two; ``formula``: the definition, in plain text."""

    short: str
    paper: str
    summary: str
    formula: str


NOTES: dict[str, MethodNote] = {
    "Saliency": MethodNote(
        "input gradient of the class score",
        "Simonyan et al. 2014",
        "How much the class score changes when one input value changes: the input gradient.",
        "A = ∂S_c/∂x;  map M_ij = max_c |A_cij|",
    ),
    "GradientXInput": MethodNote(
        "gradient times input",
        "Shrikumar et al. 2016",
        "The gradient times the input: a first-order estimate of each value's contribution.",
        "A = x ⊙ ∂S_c/∂x",
    ),
    "SmoothGrad": MethodNote(
        "mean attribution over noisy copies",
        "Smilkov et al. 2017",
        "The mean of an attribution over noisy copies of the input; removes gradient noise.",
        "A = 1/n Σ_j A(x + ε_j),  ε_j ~ N(0, σ²)",
    ),
    "SmoothGradSquared": MethodNote(
        "mean squared attribution over noisy copies",
        "Hooker et al. 2019",
        "The mean of the squared attribution over noisy copies.",
        "A = 1/n Σ_j A(x + ε_j)²",
    ),
    "VarGrad": MethodNote(
        "variance of the attribution over noisy copies",
        "Adebayo et al. 2018",
        "The variance of the attribution over noisy copies.",
        "A = 1/n Σ_j (A(x + ε_j) − SmoothGrad(x))²",
    ),
    "IntegratedGradients": MethodNote(
        "gradients integrated from a baseline",
        "Sundararajan et al. 2017",
        "Gradients integrated along the straight path from a baseline x' to x; the "
        "attributions add up to S_c(x) − S_c(x') (completeness).",
        "A = (x − x') ⊙ ∫₀¹ ∂S_c(x' + α(x − x'))/∂x dα",
    ),
    "ExpectedGradients": MethodNote(
        "integrated gradients over reference baselines",
        "Erion et al. 2021",
        "Integrated gradients averaged over baselines drawn from reference data, at random "
        "points of the path.",
        "A = E_{x'~D, α~U(0,1)} [(x − x') ⊙ ∂S_c(x' + α(x − x'))/∂x]",
    ),
    "BlurIG": MethodNote(
        "integrated gradients along a blur path",
        "Xu et al. 2020",
        "Integrated gradients along a path of ever less blurred images, from a fully "
        "blurred copy to the input: no baseline colour to choose.",
        "A = ∫ ∂S_c(B(x, σ))/∂x ⊙ ∂B(x, σ)/∂σ dσ,  σ: σ_max → 0",
    ),
    "CAM": MethodNote(
        "class weights on the last feature maps",
        "Zhou et al. 2016",
        "For networks that end in global average pooling and one linear layer: the class's "
        "weights applied to the last feature maps.",
        "L = Σ_k w_ck A^k",
    ),
    "GradCAM": MethodNote(
        "feature maps weighted by mean gradients",
        "Selvaraju et al. 2017",
        "Feature maps of a layer weighted by their spatially averaged gradients.",
        "L = ReLU(Σ_k α_k A^k),  α_k = 1/Z Σ_ij ∂S_c/∂A^k_ij",
    ),
    "GuidedGradCAM": MethodNote(
        "guided backprop times Grad-CAM",
        "Selvaraju et al. 2017",
        "Guided backpropagation multiplied by the upsampled Grad-CAM map.",
        "A = GuidedBackprop(x) ⊙ upsample(L_GradCAM)",
    ),
    "GradCAMPlusPlus": MethodNote(
        "Grad-CAM with higher-order weights",
        "Chattopadhay et al. 2018",
        "Grad-CAM with channel weights from positive gradients, weighted by higher-order "
        "terms: several objects of a class show up.",
        "α_k = Σ_ij a^k_ij ReLU(∂S_c/∂A^k_ij),  a from 2nd/3rd derivatives of exp(S_c)",
    ),
    "XGradCAM": MethodNote(
        "Grad-CAM with activation-weighted gradients",
        "Fu et al. 2020",
        "Grad-CAM with gradients weighted by the normalised activations (sensitivity and "
        "conservation axioms).",
        "α_k = Σ_ij (A^k_ij / Σ_ij A^k_ij) ∂S_c/∂A^k_ij",
    ),
    "HiResCAM": MethodNote(
        "gradient times activation, no averaging",
        "Draelos and Carin 2020",
        "Gradients times activations element-wise, summed over channels: no spatial "
        "averaging of the gradient.",
        "L = Σ_k ∂S_c/∂A^k ⊙ A^k",
    ),
    "LayerCAM": MethodNote(
        "positive gradients times activations",
        "Jiang et al. 2021",
        "Activations weighted location by location by their positive gradients.",
        "L = ReLU(Σ_k ReLU(∂S_c/∂A^k) ⊙ A^k)",
    ),
    "ScoreCAM": MethodNote(
        "channel weights from masked-input scores",
        "Wang et al. 2020",
        "Each channel's weight is the score of the input masked by that channel's map "
        "(normalised, upsampled): no gradients.",
        "α_k = softmax_k S_c(x ⊙ norm(up(A^k)))",
    ),
    "AblationCAM": MethodNote(
        "channel weights from ablating channels",
        "Desai and Ramaswamy 2020",
        "Each channel's weight is the relative drop of the score when that channel is zeroed.",
        "α_k = (S_c − S_c^{A^k=0}) / S_c",
    ),
    "EigenCAM": MethodNote(
        "first principal component of activations",
        "Muhammad and Yeasin 2020",
        "The first principal component of the layer's activations (class-agnostic).",
        "L = A · v₁,  v₁ the first right singular vector of A",
    ),
    "GuidedBackprop": MethodNote(
        "backprop through ReLUs, positive signals only",
        "Springenberg et al. 2015",
        "Backpropagation that lets only positive signals through ReLUs, where the forward "
        "input was positive as well.",
        "R_l = 1[x_l > 0] ⊙ ReLU(R_{l+1})",
    ),
    "Deconvolution": MethodNote(
        "backprop with ReLU on the backward signal",
        "Zeiler and Fergus 2014",
        "Backpropagation that applies ReLU to the backward signal and ignores the forward "
        "input's sign.",
        "R_l = ReLU(R_{l+1})",
    ),
    "DeepLIFT": MethodNote(
        "differences from a reference, Rescale rule",
        "Shrikumar et al. 2017",
        "Differences from a reference propagated with the Rescale rule: each nonlinearity's "
        "multiplier is Δy/Δx; attributions add up to S_c(x) − S_c(x').",
        "m = Δy/Δx at nonlinearities;  A = (x − x') ⊙ chain of multipliers",
    ),
    "LRP": MethodNote(
        "layer-wise relevance propagation",
        "Bach et al. 2015; Montavon et al. 2019",
        "The score redistributed layer by layer onto the inputs by conservative rules, one "
        "per kind of layer (epsilon, gamma, z+, z-box).",
        "R_i = Σ_j (x_i w_ij / Σ_i' x_i' w_i'j) R_j  (LRP-0)",
    ),
    "Occlusion": MethodNote(
        "score drop under a sliding window",
        "Zeiler and Fergus 2014",
        "The drop of the score when a sliding window of the input is replaced by a baseline.",
        "A_i = mean over windows W ∋ i of S_c(x) − S_c(x with W occluded)",
    ),
    "FeatureAblation": MethodNote(
        "score drop when one group is removed",
        "(leave-one-out)",
        "The drop of the score when one group of features (a cell) is removed.",
        "A_j = S_c(x) − S_c(x without group j)",
    ),
    "ExactShapley": MethodNote(
        "exact Shapley values of feature groups",
        "Shapley 1953; Strumbelj and Kononenko 2014",
        "Exact Shapley values of the groups of features, from all 2^P coalitions.",
        "φ_j = Σ_{S ⊆ P∖j} |S|!(P−|S|−1)!/P! (v(S ∪ j) − v(S))",
    ),
    "ShapleySampling": MethodNote(
        "Shapley values from random orders",
        "Strumbelj and Kononenko 2014",
        "Shapley values estimated from random orders of the groups of features.",
        "φ_j ≈ 1/m Σ_orders (v(pre_j ∪ j) − v(pre_j))",
    ),
    "KernelSHAP": MethodNote(
        "Shapley values by weighted regression",
        "Lundberg and Lee 2017",
        "A linear model fitted to random coalitions with the Shapley kernel; its "
        "coefficients are Shapley value estimates.",
        "min_φ Σ_z π(z) (v(z) − φ₀ − φ·z)²,  π = (P−1)/(C(P,|z|) |z| (P−|z|))",
    ),
    "LIME": MethodNote(
        "local linear surrogate model",
        "Ribeiro et al. 2016",
        "A sparse-ish linear model fitted to random coalitions, weighted by closeness to "
        "the input.",
        "min_g Σ_z π_x(z) (v(z) − g(z))² + Ω(g)",
    ),
}


def note_for(name: str, cls: type | None = None) -> MethodNote:
    """The note on method ``name``; for an unknown method, its docstring's first line."""
    if name in NOTES:
        return NOTES[name]
    first = ((cls.__doc__ if cls is not None else "") or "").strip().splitlines()
    line = first[0] if first else name
    return MethodNote(line, "", line, "")
