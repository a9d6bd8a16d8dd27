"""Synthetic Avazu-shaped click data, streamed straight to rdia's sparse Parquet layout.

Each row has ``nnz`` categorical fields, one-hot encoded (value 1.0) into disjoint hashed ranges
of the ``n_features`` columns, like the LIBSVM build of Avazu (avazu-app: 14,596,137 rows,
1,000,000 hashed features, 15 nonzeros a row). Field cardinalities span tiny fields (banner
position, device type: a handful of values) to huge ones (device id / ip: most of the columns);
values within a field follow a skewed, Zipf-like law so a few dominate and most are rare.

Labels come from a planted logistic model: every column j has a weight θ_j ~ N(0, s²/nnz), the
intercept is set so that about ``positive`` of the rows are clicks, and y_i ~ Bernoulli(σ(x_iᵀθ +
b)). With ``noise`` τ each label is then flipped with probability τ; ``is_noisy`` and
``clean_label`` record which rows were flipped and their drawn label.

The file is written row group by row group (numpy arrays and ``pa.ListArray.from_arrays``, never a
Python object per row), atomically, with the metadata ``rdia.read_dataset`` expects (classes,
n_features, format version); the fingerprint of the whole dataset, computed while streaming, is
added to the file's footer key-value metadata (``rdia.fingerprint``) when it is known.
Rows are generated in fixed blocks of :data:`BLOCK_ROWS` seeded by ``(seed, stream, block)``, so the
data do not depend on the row-group size, and ``stream`` 1, 2... give validation and test rows
from the same planted model (which depends on ``seed`` only).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from rdia_cli.artifacts import metadata
from rdia_cli.errors import InputError

BLOCK_ROWS = 65536  # rows generated per RNG stream (independent of the row-group size)
AVAZU_FEATURES = 1_000_000
AVAZU_NNZ = 15


@dataclass(frozen=True)
class SynthSpec:
    """What to generate. ``signal`` is the standard deviation of the planted logits (AUC of the
    true model ≈ 0.76 at 1.0)."""

    n_samples: int
    n_features: int = AVAZU_FEATURES
    nnz: int = AVAZU_NNZ
    positive: float = 0.17
    noise: float = 0.0
    seed: int = 0
    signal: float = 1.0
    row_group_size: int = 1 << 18
    stream: int = 0  # 0 training, 1 validation, 2 test...: same planted model, other rows

    def __post_init__(self) -> None:
        if self.n_samples < 1:
            raise InputError(f"--rows must be at least 1, not {self.n_samples}.")
        if self.nnz < 1:
            raise InputError(f"--nnz must be at least 1, not {self.nnz}.")
        if self.n_features < 2 * self.nnz:
            raise InputError(
                f"--features {self.n_features} is too few for --nnz {self.nnz} one-hot fields; "
                f"give at least {2 * self.nnz}."
            )
        if self.n_features >= 2**31:
            raise InputError(f"--features must be below 2**31, not {self.n_features}.")
        if not 0.0 < self.positive < 1.0:
            raise InputError(f"--positive must be in (0, 1), not {self.positive}.")
        if not 0.0 <= self.noise < 1.0:
            raise InputError(f"--noise must be in [0, 1), not {self.noise}.")
        if self.signal < 0:
            raise InputError(f"--signal must be ≥ 0, not {self.signal}.")
        if self.stream < 0:
            raise InputError(f"--stream must be ≥ 0, not {self.stream}.")
        if self.row_group_size < 1:
            raise InputError(f"--row-group-size must be at least 1, not {self.row_group_size}.")


@dataclass
class SynthSummary:
    path: str
    n_samples: int
    n_features: int
    nnz: int
    n_positive: int
    n_noisy: int
    intercept: float
    fingerprint: str
    seconds: float


class _Model:
    """Field layout, per-field value laws and hashing, and the planted weights."""

    def __init__(self, spec: SynthSpec) -> None:
        rng = np.random.default_rng([spec.seed, 2**32 - 1])  # model stream, apart from blocks
        k, p = spec.nnz, spec.n_features
        # cardinalities: geometric from 4 up, scaled to fill P; shuffled field order
        raw = np.exp(np.linspace(math.log(4.0), math.log(max(8.0, p / 2.0)), k))
        card = np.maximum(2, np.floor(raw * (p / raw.sum()))).astype(np.int64)
        card[np.argmax(card)] += p - int(card.sum())
        while card.min() < 2:  # tiny P: take from the largest until every field has 2 values
            j, i = int(np.argmin(card)), int(np.argmax(card))
            card[j] += 1
            card[i] -= 1
        card = card[rng.permutation(k)]
        self.card = card
        self.start = np.concatenate([[0], np.cumsum(card)[:-1]]).astype(np.int64)
        # skew of each field's value law: index = floor(c * u**a), a in [1.5, 4]
        self.skew = rng.uniform(1.5, 4.0, size=k)
        # "hash": a fixed permutation of each field's range (int32, P values in all)
        self.perm = np.concatenate([rng.permutation(int(c)) for c in card]).astype(np.int32)
        self.perm += np.repeat(self.start, card).astype(np.int32)
        self.theta = rng.normal(0.0, spec.signal / math.sqrt(k), size=p)
        self.intercept = 0.0

    def indices(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """(n, nnz) int32 column indices, ascending within each row (field f owns the range
        start[f]..start[f] + card[f], ranges ascending in f)."""
        out = np.empty((n, len(self.card)), dtype=np.int32)
        for f, (c, a, s) in enumerate(zip(self.card, self.skew, self.start, strict=True)):
            u = rng.random(n)
            np.power(u, a, out=u)
            v = (u * c).astype(np.int64)
            np.minimum(v, c - 1, out=v)
            out[:, f] = self.perm[s + v]
        return out

    def logits(self, idx: np.ndarray) -> np.ndarray:
        return self.theta[idx].sum(1) + self.intercept


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _fit_intercept(model: _Model, spec: SynthSpec) -> float:
    """b with mean σ(z + b) = positive on a pilot sample (bisection, deterministic)."""
    rng = np.random.default_rng([spec.seed, 2**32 - 2])
    z = model.logits(model.indices(rng, 4 * BLOCK_ROWS))
    lo, hi = -30.0, 30.0
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if _sigmoid(z + mid).mean() < spec.positive:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _block(model: _Model, spec: SynthSpec, b: int, n: int):
    rng = np.random.default_rng([spec.seed, spec.stream, b])
    idx = model.indices(rng, n)
    p = _sigmoid(model.logits(idx))
    clean = (rng.random(n) < p).astype(np.int64)
    flip = rng.random(n) < spec.noise if spec.noise > 0 else np.zeros(n, dtype=bool)
    label = np.where(flip, 1 - clean, clean)
    return idx, label, clean, flip


_WORKER: dict = {}


def _worker_init(spec: SynthSpec, intercept: float) -> None:
    model = _Model(spec)
    model.intercept = intercept
    _WORKER.update(model=model, spec=spec)


def _worker_block(args: tuple[int, int]):
    b, n = args
    return _block(_WORKER["model"], _WORKER["spec"], b, n)


def _blocks(model: _Model, spec: SynthSpec, jobs: int):
    """The row blocks in order, generated in ``jobs`` processes (1: here)."""
    n = spec.n_samples
    todo = [(s // BLOCK_ROWS, min(BLOCK_ROWS, n - s)) for s in range(0, n, BLOCK_ROWS)]
    if jobs <= 1 or len(todo) < 2:
        for b, k in todo:
            yield _block(model, spec, b, k)
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    ctx = mp.get_context("spawn")  # no fork of a process that may hold threads
    with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_worker_init,
                             initargs=(spec, model.intercept)) as ex:
        window = 2 * jobs  # blocks in flight: bounded memory
        futures = [ex.submit(_worker_block, t) for t in todo[:window]]
        for i in range(len(todo)):
            yield futures[i].result()
            futures[i] = None
            if i + window < len(todo):
                futures.append(ex.submit(_worker_block, todo[i + window]))


def write_synth(
    path: str,
    spec: SynthSpec,
    *,
    jobs: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> SynthSummary:
    """Generate ``spec`` into the Parquet file ``path`` (atomically) and return a summary.

    ``jobs`` > 1 generates row blocks in that many processes (the same data as ``jobs=1``);
    this process hashes and writes them in order."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from rdia_cli.artifacts.atomic import atomic_path

    t0 = time.perf_counter()
    n, k, p = spec.n_samples, spec.nnz, spec.n_features
    model = _Model(spec)
    model.intercept = _fit_intercept(model, spec)
    meta = {
        "format_version": "1",
        "classes": [0, 1],
        "n_features": p,
        "synth": dict(asdict(spec), intercept=model.intercept, generator="rdia synth"),
    }
    schema = pa.schema(
        [
            pa.field("row_id", pa.int64()),
            pa.field("label", pa.int64()),
            pa.field("indices", pa.list_(pa.int32())),
            pa.field("values", pa.list_(pa.float32())),
            pa.field("is_noisy", pa.bool_()),
            pa.field("clean_label", pa.int64()),
        ],
        metadata=metadata.encode(meta),
    )
    if n * k >= 2**31:
        raise InputError(f"{n} rows × {k} nonzeros exceed 2**31 nonzeros; generate fewer rows.")
    # Dataset.fingerprint() hashes indptr, then indices, then values, then classes, y, row_id.
    # indptr and values are known up front; indices stream in row order; y is kept (int8).
    h = hashlib.blake2b(digest_size=8)
    h.update(b"csr")
    h.update(np.asarray((n, p), np.int64).tobytes())
    step = 1 << 22
    for a in range(0, n + 1, step):
        h.update((np.arange(a, min(n + 1, a + step), dtype=np.int64) * k).tobytes())
    labels = np.empty(n, dtype=np.int8)
    rg = spec.row_group_size
    n_pos = n_noisy = 0
    with atomic_path(path) as tmp:
        with pq.ParquetWriter(tmp, schema) as writer:
            pending: list[tuple[np.ndarray, ...]] = []  # generated rows not yet written
            have = done = 0
            for s, blk in zip(range(0, n, BLOCK_ROWS), _blocks(model, spec, jobs), strict=True):
                pending.append(blk)
                have += len(pending[-1][1])
                while have >= rg or (have and s + BLOCK_ROWS >= n):
                    m = min(rg, have)
                    cols = [np.concatenate([q[c] for q in pending]) for c in range(4)]
                    pending = [tuple(x[m:] for x in cols)] if have > m else []
                    have -= m
                    idx, label, clean, flip = (x[:m] for x in cols)
                    a, b = done, done + m
                    done = b
                    flat = idx.reshape(-1)
                    h.update(flat.astype(np.int64).tobytes())
                    labels[a:b] = label
                    n_pos += int(label.sum())
                    n_noisy += int(flip.sum())
                    offsets = pa.array(np.arange(m + 1, dtype=np.int32) * np.int32(k))
                    table = pa.Table.from_arrays(
                        [
                            pa.array(np.arange(a, b, dtype=np.int64)),
                            pa.array(label),
                            pa.ListArray.from_arrays(offsets, pa.array(flat)),
                            pa.ListArray.from_arrays(
                                offsets, pa.array(np.ones(flat.size, np.float32))
                            ),
                            pa.array(flip),
                            pa.array(clean),
                        ],
                        schema=schema,
                    )
                    writer.write_table(table, row_group_size=m)
                    if progress is not None:
                        progress(b, n)
            ones = np.ones(min(n * k, step), dtype=np.float32).tobytes()
            for a in range(0, n * k, step):
                h.update(ones if a + step <= n * k else ones[: 4 * (n * k - a)])
            h.update(repr(["0", "1"]).encode())
            for a in range(0, n, step):
                h.update(labels[a : a + step].astype(np.int64).tobytes())
            for a in range(0, n, step):
                h.update(np.arange(a, min(n, a + step), dtype=np.int64).tobytes())
            fingerprint = h.hexdigest()
            writer.add_key_value_metadata(metadata.encode({"fingerprint": fingerprint}))
    return SynthSummary(
        path=str(path), n_samples=n, n_features=p, nnz=k, n_positive=n_pos, n_noisy=n_noisy,
        intercept=model.intercept, fingerprint=fingerprint, seconds=time.perf_counter() - t0,
    )
