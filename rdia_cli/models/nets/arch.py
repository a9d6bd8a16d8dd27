"""Neural-network architectures: ``mlp``, ``lenet`` and ``cnn``.

``build_net(arch, arch_args)`` builds one from JSON-able arguments, so a model file can rebuild it.
``arch_args`` always holds ``input_shape`` (``[P]`` for flat input, ``[C, H, W]`` for images) and
``n_classes``; the rest depends on the architecture (defaults in ``DEFAULT_ARGS``):

* ``mlp``   ``hidden`` (list of widths, ReLU between layers). Flattens any input. ``hidden=[256]``
  on 28x28 input is the MLP 784-256-10 of the RDIA authors' MNIST code (``PAPER_MNIST_MLP``;
  ``rdia train --model-type mlp --hidden 256``), which memorizes label noise where LeNet does not.
* ``lenet`` ``channels`` (two conv widths, default ``[6, 16]``), ``kernel_size`` (5): two
  conv-ReLU-maxpool(2) blocks and one fully connected layer (the paper's LeNet: 2 conv + 1 fc).
  Works for any (C, H, W) large enough; the flatten size is computed.
* ``cnn``   the 6-conv + 2-fc network of Wang et al. (2019, "Symmetric cross entropy"), as used by
  the paper for CIFAR: three blocks of two 3x3 conv (``channels``, default 64, 128, 196) each
  followed by a 2x2 max-pool, then fc(256) and fc(K). ``batch_norm`` (default True, as in the
  original) adds BatchNorm after every conv and after the first fc. With BatchNorm the network
  is a deterministic function of θ only in eval mode, which is how rdia scores and predicts.

No dropout anywhere; ``mlp`` and ``lenet`` have no BatchNorm, so influence is computed on exactly
the function that was trained.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from rdia_cli.errors import InputError

NET_ARCHS = ("mlp", "lenet", "cnn")

# the authors' MNIST network (Viperccc/RDIA, RDIA-LS/model.py: MLPNet): 784-256-10, ReLU
PAPER_MNIST_MLP: dict[str, Any] = {"hidden": [256]}

# whether the architecture needs (C, H, W) images (else any input is flattened)
IMAGE_INPUT: dict[str, bool] = {"mlp": False, "lenet": True, "cnn": True}

DEFAULT_ARGS: dict[str, dict[str, Any]] = {
    "mlp": {"hidden": [256, 128]},
    "lenet": {"channels": [6, 16], "kernel_size": 5},
    "cnn": {"channels": [64, 128, 196], "fc": 256, "batch_norm": True},
}


class MLP(nn.Module):
    def __init__(self, n_in: int, hidden: list[int], n_classes: int):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = n_in
        for h in hidden:
            layers += [nn.Linear(width, int(h)), nn.ReLU()]
            width = int(h)
        layers.append(nn.Linear(width, n_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class LeNet(nn.Module):
    def __init__(self, input_shape: list[int], channels: list[int], kernel_size: int,
                 n_classes: int):
        super().__init__()
        c, h, w = input_shape
        c1, c2 = (int(v) for v in channels)
        k = int(kernel_size)
        self.features = nn.Sequential(
            nn.Conv2d(c, c1, k), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, k), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
        )
        h2 = ((h - k + 1) // 2 - k + 1) // 2
        w2 = ((w - k + 1) // 2 - k + 1) // 2
        if h2 < 1 or w2 < 1:
            raise InputError(
                f"`lenet` needs images of at least {2 * (k - 1) + k + 2}x{2 * (k - 1) + k + 2} "
                f"pixels with kernel_size={k}; got {h}x{w}. Use `mlp` for small inputs."
            )
        self.fc = nn.Linear(c2 * h2 * w2, n_classes)

    def forward(self, x):
        return self.fc(self.features(x))


class CNN(nn.Module):
    def __init__(self, input_shape: list[int], channels: list[int], fc: int, batch_norm: bool,
                 n_classes: int):
        super().__init__()
        c, h, w = input_shape
        layers: list[nn.Module] = []
        width = c
        for out in channels:
            for _ in range(2):
                layers.append(nn.Conv2d(width, int(out), 3, padding=1))
                if batch_norm:
                    layers.append(nn.BatchNorm2d(int(out)))
                layers.append(nn.ReLU())
                width = int(out)
            layers.append(nn.MaxPool2d(2))
            h, w = h // 2, w // 2
        if h < 1 or w < 1:
            raise InputError(
                f"`cnn` needs images of at least {2 ** len(channels)} pixels per side; got "
                f"{input_shape[1]}x{input_shape[2]}."
            )
        layers.append(nn.Flatten())
        self.features = nn.Sequential(*layers)
        head: list[nn.Module] = [nn.Linear(width * h * w, int(fc))]
        if batch_norm:
            head.append(nn.BatchNorm1d(int(fc)))
        head += [nn.ReLU(), nn.Linear(int(fc), n_classes)]
        self.head = nn.Sequential(*head)

    def forward(self, x):
        return self.head(self.features(x))


def complete_arch_args(arch: str, arch_args: dict[str, Any] | None, *, input_shape, n_classes
                       ) -> dict[str, Any]:
    """``arch_args`` with defaults filled in, ``input_shape`` and ``n_classes`` set; JSON-able."""
    if arch not in NET_ARCHS:
        raise InputError(f"Unknown network architecture {arch!r}; choose one of {NET_ARCHS}.")
    args = {k: (list(v) if isinstance(v, list | tuple) else v)
            for k, v in DEFAULT_ARGS[arch].items()}
    args.update(dict(arch_args or {}))
    shape = [int(s) for s in (args.get("input_shape") or input_shape)]
    args["input_shape"] = shape
    args["n_classes"] = int(args.get("n_classes") or n_classes)
    if IMAGE_INPUT[arch] and len(shape) != 3:
        raise InputError(
            f"`{arch}` needs image input of shape (C, H, W), got input shape {shape}; pass "
            "images (N, C, H, W) or `input_shape` [C, H, W] in arch_args, or use `mlp`."
        )
    for key in ("hidden", "channels"):
        if key in args:
            args[key] = [int(v) for v in args[key]]
    if arch == "lenet" and len(args["channels"]) != 2:
        raise InputError(f"`lenet` takes 2 conv widths in `channels`, got {args['channels']}.")
    return args


def build_net(arch: str, arch_args: dict[str, Any], *, seed: int | None = None) -> nn.Module:
    """Build the network ``arch`` from complete ``arch_args`` (see ``complete_arch_args``).

    With ``seed`` the parameters are initialised from a private ``torch.Generator`` (uniform
    ±1/sqrt(fan_in), PyTorch's default scale), so the global RNG is never used; without it the
    parameters are left uninitialised, for loading a state dict.
    """
    if arch not in NET_ARCHS:
        raise InputError(f"Unknown network architecture {arch!r}; choose one of {NET_ARCHS}.")
    if "input_shape" not in arch_args or "n_classes" not in arch_args:
        raise InputError("`arch_args` must hold `input_shape` and `n_classes`.")
    a = {**DEFAULT_ARGS[arch], **arch_args}
    shape = [int(s) for s in a["input_shape"]]
    k = int(a["n_classes"])
    with torch.device("meta"):
        net = _BUILDERS[arch](shape, a, k)
    net = net.to_empty(device="cpu")
    _reset(net, None if seed is None else torch.Generator().manual_seed(int(seed)))
    return net


_BUILDERS = {
    "mlp": lambda shape, a, k: MLP(math.prod(shape), list(a["hidden"]), k),
    "lenet": lambda shape, a, k: LeNet(shape, list(a["channels"]), int(a["kernel_size"]), k),
    "cnn": lambda shape, a, k: CNN(shape, list(a["channels"]), int(a["fc"]),
                                   bool(a["batch_norm"]), k),
}


def _reset(net: nn.Module, gen: torch.Generator | None) -> None:
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Linear | nn.Conv2d):
                bound = 1.0 / math.sqrt(m.weight[0].numel())
                if gen is None:
                    m.weight.zero_()
                    m.bias.zero_()
                else:
                    m.weight.uniform_(-bound, bound, generator=gen)
                    m.bias.uniform_(-bound, bound, generator=gen)
            elif isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
                m.reset_parameters()
