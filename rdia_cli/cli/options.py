"""Options and helpers shared by the commands: the Typer option types, reading options,
loading a data file, the device, option checks, and the paths recorded in output metadata."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rdia_cli.errors import InputError

# --- shared options ---------------------------------------------------------------------------
Device = Annotated[str, typer.Option("--device", help="auto (CUDA if available), cpu, cuda or cuda:N.")]
Labels = Annotated[Path | None, typer.Option("--labels", help="IDX label file for IDX image data.")]
LabelCol = Annotated[str, typer.Option("--label-col", help="Label column of CSV/Parquet files.")]
ZeroBased = Annotated[
    bool | None,
    typer.Option("--zero-based/--one-based", help="LIBSVM feature indices (default: detect).",
                 show_default=False),
]
NFeatures = Annotated[int | None, typer.Option("--n-features", help="LIBSVM: fix the width.")]
Classes = Annotated[
    str | None,
    typer.Option("--classes", help="Keep only rows with these label values, e.g. 1,7."),
]
Format = Annotated[
    str, typer.Option("--format", help="auto, libsvm, csv, parquet, idx or cifar.")
]
Seed = Annotated[int, typer.Option("--seed", help="Random seed.")]
ValLabels = Annotated[Path | None, typer.Option("--val-labels", help="IDX label file for --val.")]
Output = Annotated[Path, typer.Option("-o", "--output", help="Output file.")]


def read_opts(labels=None, label_col="label", zero_based=None, n_features=None, classes=None,
              fmt="auto"):
    from rdia_cli.data.readers import ReadOptions

    cls = tuple(c.strip() for c in classes.split(",") if c.strip()) if classes else None
    return ReadOptions(format=fmt, labels=str(labels) if labels else None, label_col=label_col,
                       zero_based=zero_based, n_features=n_features, classes=cls)


def load(path, opts, *, what="data", schema=None, labels="same"):
    """Read a dataset; ``labels`` replaces the IDX label file of ``opts`` (None: no labels
    file, for a --val/--test whose own --val-labels/--test-labels was not given)."""
    from dataclasses import replace

    from rdia_cli.data.readers import read_dataset

    if labels != "same":
        opts = replace(opts, labels=str(labels) if labels is not None else None)
    return read_dataset(str(path), opts, schema=schema, what=what)


def device_of(name: str):
    from rdia_cli.device import resolve_device

    return resolve_device(name)


def _read_transition(path: Path):
    """A K×K matrix from .npy, or text/CSV with K rows of K numbers (comma or blank separated)."""
    import numpy as np

    if not path.exists():
        raise InputError(f"--transition file {path} does not exist.")
    try:
        if path.suffix == ".npy":
            T = np.load(path, allow_pickle=False)
        else:
            text = path.read_text().replace(",", " ")
            T = np.array([[float(v) for v in line.split()] for line in text.splitlines()
                          if line.strip() and not line.lstrip().startswith("#")])
    except (ValueError, OSError) as e:
        raise InputError(f"--transition file {path} is not a numeric K×K matrix ({e}).") from None
    if T.ndim != 2 or T.shape[0] != T.shape[1]:
        raise InputError(f"--transition file {path} holds a {T.shape} array; it must be K×K "
                         "(row i = P(given label | true class i)).")
    return T.tolist()


def net_options(epochs, batch_size, lr, optimizer, weight_decay, schedule, seed, hidden,
                 rdia_ls, self_teaching, noise_rate, gamma, tk, method=None,
                 rdia_ls_variant="paper", tk_steps=None, transition=None, sigua_ascent=0.01,
                 estimate_epochs=None) -> dict:
    from rdia_cli.models.nets.noisy import METHODS, RDIA_LS_VARIANTS

    if epochs is None:  # the paper's preset: 200 epochs with --schedule paper
        epochs = 200 if schedule == "paper" else 10
    opts = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "optimizer": optimizer,
            "weight_decay": weight_decay, "schedule": schedule, "seed": seed}
    if hidden:
        try:
            opts["arch_args"] = {"hidden": [int(h) for h in hidden.split(",") if h.strip()]}
        except ValueError:
            raise InputError(f"--hidden must be comma-separated integers, not {hidden!r}.") from None
    if rdia_ls and self_teaching:
        raise InputError("--rdia-ls and --self-teaching are alternatives; give one.")
    flag = "rdia-ls" if rdia_ls else "self-teaching" if self_teaching else None
    if method is not None:
        if method not in METHODS:
            raise InputError(f"--method must be one of {', '.join(METHODS)}; got {method!r}.")
        if flag is not None and flag != method:
            raise InputError(f"--{flag} and --method {method} disagree; give one of them.")
    method = method or flag or "erm"
    if isinstance(gamma, str) and gamma.strip().lower() == "auto":
        gamma = "auto"
    else:
        try:
            gamma = float(gamma)
        except (TypeError, ValueError):
            raise InputError(f"--gamma must be a number in [0, 1] or 'auto'; got {gamma!r}.") from None
        if not 0.0 <= gamma <= 1.0:
            raise InputError(f"--gamma must be in [0, 1] or 'auto'; got {gamma}.")
    if rdia_ls_variant not in RDIA_LS_VARIANTS:
        raise InputError(f"--rdia-ls-variant must be one of {', '.join(RDIA_LS_VARIANTS)}; got "
                         f"{rdia_ls_variant!r}.")
    if rdia_ls_variant != "paper" and method != "rdia-ls":
        raise InputError("--rdia-ls-variant applies to RDIA-LS only; add --rdia-ls.")
    if tk < 1 or (tk_steps is not None and tk_steps < 1):
        raise InputError(f"--tk and --tk-steps must be ≥ 1; got {tk} and {tk_steps}.")
    if not 0.0 <= sigua_ascent <= 1.0:
        raise InputError(f"--sigua-ascent must be in [0, 1]; got {sigua_ascent}.")
    if estimate_epochs is not None and estimate_epochs < 1:
        raise InputError(f"--estimate-epochs must be ≥ 1; got {estimate_epochs}.")
    if transition is not None and method not in ("f-correction", "s-model"):
        raise InputError("--transition is for --method f-correction (the known T) or s-model "
                         "(the channel's start).")
    selects = ("rdia-ls", "self-teaching", "co-teaching", "sigua")
    if method in selects:
        if noise_rate is None:
            if method in ("rdia-ls", "self-teaching"):
                raise InputError("--rdia-ls and --self-teaching need --noise-rate τ (the "
                                 "expected noise).")
            raise InputError(f"--method {method} needs --noise-rate τ (the expected noise).")
        sel = {"noise_rate": noise_rate, "tk": tk}
        if tk_steps is not None:
            sel["tk_steps"] = tk_steps
        if method == "rdia-ls":
            sel["gamma"] = gamma
            if rdia_ls_variant != "paper":
                sel["variant"] = rdia_ls_variant
        if method == "sigua":
            sel["ascent"] = sigua_ascent
        opts[method.replace("-", "_")] = sel
    elif method in ("f-correction", "s-model"):
        cfg = {} if estimate_epochs is None else {"estimate_epochs": estimate_epochs}
        if transition is not None:
            cfg["transition" if method == "f-correction" else "init"] = _read_transition(transition)
        opts[method.replace("-", "_")] = cfg
    return opts


def abs_path(path) -> str | None:
    return None if path is None else str(Path(path).absolute())


def recorded_inputs(**inputs) -> dict:
    """``{name}_path`` (absolute) and ``{name}_read_options`` for each input file given as
    (path, ReadOptions); nothing for standard input, which cannot be read twice."""
    from dataclasses import asdict, replace

    out = {}
    for name, (path, opts) in inputs.items():
        if path is None or str(path) == "-":
            continue
        o = replace(opts, labels=abs_path(opts.labels))
        out[f"{name}_path"] = abs_path(path)
        out[f"{name}_read_options"] = {k: (list(v) if isinstance(v, tuple) else v)
                                       for k, v in asdict(o).items()}
    return out


def recorded_read_options(meta: dict, name: str):
    from rdia_cli.data.readers import ReadOptions

    raw = dict(meta.get(f"{name}_read_options") or {})
    if raw.get("classes") is not None:
        raw["classes"] = tuple(raw["classes"])
    return ReadOptions(**raw)


def default_output(output: Path | None, data: Path, suffix: str) -> Path:
    """-o when given; else standard output (`-`) when stdout is a pipe or a file, and else a
    file beside DATA named after it (train.svm -> train.scores.parquet)."""
    import sys

    if output is not None:
        return output
    if not sys.stdout.isatty():
        return Path("-")
    if str(data) == "-":
        return Path("stdin" + suffix)
    name = Path(data).name
    for ext in (".gz", ".bz2", ".xz"):
        name = name.removesuffix(ext)
    stem = name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name
    return Path(data).parent / f"{stem}{suffix}"


def shown_path(path) -> str:
    return "standard output" if str(path) == "-" else str(path)


def check_output_folder(output: Path, option: str = "-o") -> None:
    """An output *folder* (split, run): not empty, not a file, its parent writable."""
    from rdia_cli.artifacts.atomic import check_folder_writable

    if str(output).strip() in ("", "-"):
        raise InputError(f"{option} must name a folder, not {str(output)!r}.")
    if output.exists() and not output.is_dir():
        raise InputError(f"{option} `{output}` is a file; give a folder for the outputs.")
    probe = output if output.is_dir() else next(
        (p for p in output.absolute().parents if p.exists()), Path("."))
    if not probe.is_dir():
        raise InputError(f"{option} `{output}`: `{probe}` is not a folder.")
    check_folder_writable(probe, option, str(output))


def parse_alpha(alpha: str | None) -> float | str | None:
    """--alpha: a number ≥ 0 on the paper's scale, or `auto`."""
    import math

    if alpha is None or alpha == "auto":
        return alpha
    try:
        value = float(alpha)
    except ValueError:
        raise InputError(f"--alpha must be a number ≥ 0 or `auto`, not {alpha!r}.") from None
    if not math.isfinite(value) or value < 0:
        raise InputError(f"--alpha must be a finite number ≥ 0 (the paper's α, e.g. 0.002) or "
                         f"`auto`, not {alpha}.")
    return value


def check_train_options(*, l2=None, tol=None, max_iter=None, epochs=None, batch_size=None,
                         lr=None, weight_decay=None, noise_rate=None,
                         n_features=None) -> None:
    """The options of `train` (and `retrain`, `run`) checked before any work; None: not given."""
    from rdia_cli import validate as v

    v.non_negative("--l2", l2)
    v.positive("--tol", tol)
    v.positive_int("--max-iter", max_iter)
    v.positive_int("--epochs", epochs)
    v.positive_int("--batch-size", batch_size)
    v.positive("--lr", lr)
    v.non_negative("--weight-decay", weight_decay)
    v.share("--noise-rate", noise_rate)
    v.positive_int("--n-features", n_features)


def recorded(meta: dict, key: str, what: str, option: str) -> Path:
    """An input file the scores recorded (its absolute path), or a clear error."""
    path = meta.get(f"{key}_path")
    if not path:
        raise InputError(f"the scores do not record their {what} (made from standard input or "
                         f"by an older rdia); give {option}.")
    if not Path(path).exists():
        raise InputError(f"the scores were computed on {what} `{path}`, which no longer "
                         f"exists; give {option}.")
    return Path(path)
