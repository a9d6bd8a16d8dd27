"""Names and units used throughout rdia. Every docstring that mentions Φ points here.

N, ``n_samples``   number of training rows.
M                  number of validation rows.
K, ``n_classes``   number of classes; class *indices* are 0..K-1, class *values* are what the
                   file said (e.g. -1/+1); ``Dataset.classes`` maps index -> value.
P, ``n_features``  input width (flattened for images).
``l2`` (λ)         training objective is L_D(θ) = (1/N) Σ_i w_i ℓ_i(θ) + (λ/2)‖W‖² (intercept
                   unpenalized).
``damping`` (δ)    added to the Hessian as δI before solving (networks; 0 for logistic regression).
``target``         soft label vector of length K; ℓ(t, p) = -Σ_k t_k log p_k.

Influence ``phi`` (Φ):   Φ_i = -∇L_Q(θ̂)ᵀ H⁻¹ ∇ℓ_i(θ̂)

* L_Q is the *mean* cross-entropy over the clean validation set, H the Hessian of L_D.
* **Φ_i > 0 means sample i is harmful**: removing it would lower the validation loss.
* Removing sample i changes the validation loss by about ``delta_remove`` = -Φ_i / N.
* Relabeling it with R (paper Eq. 12) changes it by about ``delta_relabel`` = -Φ_i / (N (1 - p_m)),
  where p_m is the model's probability of the sample's current label.
* ``phi_paper`` = C·(M/N)·Φ with C = 1/(λN) (λ + δ for networks): the scale of the paper's
  reference code, on which its α is a threshold (``scores.paper_factor``). ``relabel --alpha``
  thresholds ``phi_paper``, ``--phi-threshold`` thresholds Φ.
"""

import numpy as np  # noqa: E402  (the module is the docstring above; these two formulas use it)


def relabel_effect(phi, p_label, n_train):
    """``delta_relabel`` = -Φ / (N (1 - p_m)), with 1 - p_m floored at 1e-12 (the one place)."""
    return -phi / (n_train * np.maximum(1.0 - p_label, 1e-12))


def paper_factor(l2, damping, n_train, n_val) -> float:
    """C·(M/N), the factor that puts Φ on the scale of the paper's code: ``phi_paper`` =
    C·(M/N)·Φ with C = 1/(λN), λ the regularizer of the Hessian that was solved (``l2`` plus
    ``damping``), M validation and N training rows. The authors' reference implementation
    thresholds that with its α (``../shared/reference``: the relabel sets at α = 0.01, 0.002,
    0.0002 match exactly). NaN when λ + δ = 0: no paper scale exists then."""
    reg = float(l2 or 0.0) + float(damping or 0.0)
    n, m = float(n_train or 0), float(n_val or 0)
    if not (reg > 0 and n > 0 and m > 0):
        return float("nan")
    return m / (reg * n * n)
