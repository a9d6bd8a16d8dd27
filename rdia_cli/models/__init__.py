"""Models and the model file.

A model file (``.pt``) is a plain dict, loadable with ``torch.load(path, weights_only=True)``::

    {"format": "rdia-model", "version": 1,
     "arch": "logreg" | "mlp" | "lenet" | "cnn",
     "arch_args": {...JSON-able...},          # what build needs besides the state
     "state": {name: torch.Tensor},           # parameters (CPU tensors)
     "meta": {...JSON-able...}}               # classes, n_features, input_shape, l2,
                                              # train_fingerprint, training settings and metrics

Nothing else is ever unpickled from a model file. ``load_model(path, arrays="numpy")`` reads it
without torch (``rdia_cli.models.ptfile``: only torch's tensor-rebuild function and storage
types are allowed, mapped to numpy), as `rdia evaluate` and `rdia score` do for a logistic
regression on the CPU.
"""
