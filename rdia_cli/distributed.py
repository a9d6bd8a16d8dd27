"""Rows sharded across processes with torch.distributed (``torchrun``; gloo on CPU, NCCL on GPU).

Every cross-row quantity of logistic regression is a sum over rows (loss, gradient, Hessian-vector
products, the Jacobi diagonal), so each process holds one contiguous slice of the training rows and
the sums go through :meth:`Sharding.reduce` (an ``all_reduce``), the ``reduce`` hook of
:class:`rdia_cli.models.logreg.problem.LogRegProblem`. Every rank then runs the same Newton / CG
iterations on identical reduced vectors, so no rank can take another branch. Validation rows are
small and every rank holds all of them.

Outputs are written by rank 0 only: per-row results are gathered to it, and the dataset
fingerprint it records is the fingerprint of the FULL dataset (the same digest
:meth:`rdia_cli.data.dataset.Dataset.fingerprint` gives in one process), computed by streaming
every rank's rows to rank 0 in order, so a single-process ``rdia relabel`` accepts the file.

    torchrun --nproc-per-node 2 -m rdia_cli score train.parquet --val val.parquet \\
        --model lr.pt -o scores.parquet

Launching is torchrun's job (``--nnodes``, ``--rdzv-endpoint`` for several machines; see
docs/scaling.md). Without torchrun (``WORLD_SIZE`` unset or 1) nothing here is used.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import scipy.sparse as sp

from rdia_cli.data.dataset import Dataset
from rdia_cli.errors import InputError

CHUNK_BYTES = 1 << 26  # point-to-point messages and hash updates, 64 MiB at most


def world_from_env() -> tuple[int, int, int]:
    """(rank, world size, local rank) as torchrun sets them; (0, 1, 0) outside torchrun."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise InputError(
            "WORLD_SIZE, RANK and LOCAL_RANK must be integers (torchrun sets them); unset them "
            "to run in one process."
        ) from None
    return rank, world, local


def row_range(n_total: int, rank: int, world_size: int) -> tuple[int, int]:
    """The contiguous rows [start, stop) that ``rank`` holds: sizes differ by at most one."""
    return n_total * rank // world_size, n_total * (rank + 1) // world_size


@dataclass
class Sharding:
    """This process's place in the group and the collectives rdia needs.

    ``group`` carries the math (NCCL on GPU, gloo on CPU); ``cpu_group`` (gloo) carries the
    bytes of the fingerprint, gathered results and small Python objects.
    """

    rank: int
    world_size: int
    device: Any
    group: Any = None
    cpu_group: Any = None
    owns_group: bool = False

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    # --- set-up ---------------------------------------------------------------------------------
    @classmethod
    def from_env(cls, device) -> Sharding | None:
        """Join the torchrun group (None outside torchrun). ``device`` is the resolved
        ``--device``: a bare ``cuda`` becomes ``cuda:LOCAL_RANK``."""
        rank, world, local = world_from_env()
        if world <= 1:
            return None
        import torch
        import torch.distributed as dist

        if not dist.is_available():
            raise InputError(
                "this torch build has no torch.distributed; run in one process (without "
                "torchrun) or install a torch with distributed support."
            )
        device = torch.device(device)
        if device.type == "cuda":
            if device.index is None:
                device = torch.device("cuda", local % max(1, torch.cuda.device_count()))
            torch.cuda.set_device(device)
            backend = "nccl"
        else:
            backend = "gloo"
        owns = not dist.is_initialized()
        if owns:
            dist.init_process_group(backend=backend)
        if dist.get_world_size() != world or dist.get_rank() != rank:
            raise InputError("the torch.distributed group does not match RANK / WORLD_SIZE.")
        cpu_group = dist.new_group(backend="gloo") if backend != "gloo" else dist.group.WORLD
        return cls(rank, world, device, dist.group.WORLD, cpu_group, owns)

    def close(self) -> None:
        import torch.distributed as dist

        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()

    # --- collectives ----------------------------------------------------------------------------
    def reduce(self, t):
        """Sum ``t`` over all ranks (the LogRegProblem ``reduce`` hook); returns the sum."""
        import torch.distributed as dist

        if self.world_size == 1:
            return t
        if not t.is_contiguous():
            t = t.contiguous()
        dist.all_reduce(t, op=dist.ReduceOp.SUM, group=self.group)
        return t

    def barrier(self) -> None:
        import torch.distributed as dist

        dist.barrier(group=self.cpu_group)

    def all_gather_object(self, obj) -> list:
        import torch.distributed as dist

        out: list = [None] * self.world_size
        dist.all_gather_object(out, obj, group=self.cpu_group)
        return out

    def broadcast_object(self, obj):
        """Rank 0's ``obj`` on every rank."""
        import torch.distributed as dist

        box = [obj if self.is_root else None]
        dist.broadcast_object_list(box, src=0, group=self.cpu_group)
        return box[0]

    def _send_stream(self, chunks, dst: int = 0) -> None:
        """Send numpy chunks to ``dst`` as (length, bytes) messages, then a zero length."""
        import torch
        import torch.distributed as dist

        for c in chunks:
            flat = np.ascontiguousarray(c).reshape(-1).view(np.uint8)
            for a in range(0, flat.size, CHUNK_BYTES):
                piece = flat[a : a + CHUNK_BYTES]
                n = torch.tensor([piece.size], dtype=torch.int64)
                dist.send(n, dst=dst, group=self.cpu_group)
                dist.send(torch.from_numpy(piece), dst=dst, group=self.cpu_group)
        dist.send(torch.zeros(1, dtype=torch.int64), dst=dst, group=self.cpu_group)

    def _recv_stream(self, src: int, out: np.ndarray | None = None) -> Iterator[np.ndarray]:
        """The byte chunks ``src`` sends with _send_stream (written into ``out`` if given)."""
        import torch
        import torch.distributed as dist

        at = 0
        n = torch.zeros(1, dtype=torch.int64)
        while True:
            dist.recv(n, src=src, group=self.cpu_group)
            size = int(n[0])
            if size == 0:
                break
            if out is not None:
                if at + size > out.size:
                    raise RuntimeError(f"rank {src} sent more bytes than expected")
                piece = out[at : at + size]
            else:
                piece = np.empty(size, dtype=np.uint8)
            dist.recv(torch.from_numpy(piece), src=src, group=self.cpu_group)
            at += size
            yield piece
        if out is not None and at != out.size:
            raise RuntimeError(f"rank {src} sent {at} bytes, {out.size} expected")

    def gather_rows(self, a: np.ndarray) -> np.ndarray | None:
        """``a`` of every rank concatenated along axis 0 on rank 0 (None on the others)."""
        a = np.ascontiguousarray(a)
        if self.world_size == 1:
            return a
        shapes = self.all_gather_object((a.shape, a.dtype.str))
        if not self.is_root:
            self._send_stream([a])
            return None
        rows = [s[0][0] for s in shapes]
        out = np.empty((sum(rows), *a.shape[1:]), dtype=a.dtype)
        out[: rows[0]] = a
        at = rows[0]
        for r in range(1, self.world_size):
            part = out[at : at + rows[r]]
            for _ in self._recv_stream(r, part.reshape(-1).view(np.uint8)):
                pass
            at += rows[r]
        return out

    # --- the full dataset's fingerprint ------------------------------------------------------
    def fingerprint(self, ds: Dataset, n_total: int) -> str:
        """Dataset.fingerprint() of the concatenation of every rank's shard, on every rank."""
        counts = self.all_gather_object(
            (int(ds.X.nnz) if sp.issparse(ds.X) else 0, ds.n_samples)
        )
        if sum(c[1] for c in counts) != n_total:
            raise RuntimeError("the shards do not add up to the dataset")
        nnz_before = sum(c[0] for c in counts[: self.rank])
        sections = _fingerprint_sections(ds, n_total=n_total, nnz_before=nnz_before,
                                         first=self.is_root)
        if not self.is_root:
            for _, chunks in sections:
                self._send_stream(chunks())
            return self.broadcast_object(None)
        h = hashlib.blake2b(digest_size=8)
        for head, chunks in sections:
            for c in head:
                h.update(c)
            for c in chunks():
                h.update(c)
            for r in range(1, self.world_size):
                for piece in self._recv_stream(r):
                    h.update(piece)
        return self.broadcast_object(h.hexdigest())


def _chunked(a: np.ndarray, dtype, step: int = 1 << 22, offset: int = 0) -> Iterator[np.ndarray]:
    for s in range(0, len(a), step):
        part = np.asarray(a[s : s + step], dtype=dtype)
        yield part + dtype(offset) if offset else part


def _fingerprint_sections(
    ds: Dataset, *, n_total: int, nnz_before: int, first: bool
) -> list[tuple[list[bytes], Callable[[], Iterator[np.ndarray]]]]:
    """This shard's byte chunks of each section of Dataset.fingerprint(), in hashing order.

    Each section is (header bytes that only rank 0 hashes, chunks of this shard's part).
    Keep in step with :meth:`Dataset.fingerprint` (tests compare the two).
    """
    X = ds.X
    secs: list[tuple[list[bytes], Callable[[], Iterator[np.ndarray]]]] = []
    if sp.issparse(X):
        X = X.tocsr()
        X.sort_indices()
        head = [b"csr", np.asarray((n_total, X.shape[1]), np.int64).tobytes()]
        ptr = X.indptr if first else X.indptr[1:]
        secs.append((head, lambda: _chunked(ptr, np.int64, offset=nnz_before)))
        secs.append(([], lambda: _chunked(X.indices, np.int64)))
        secs.append(([], lambda: _chunked(X.data, np.float32)))
    else:
        flat = ds.flat_X()
        head = [b"dense", np.asarray((n_total, *flat.shape[1:]), np.int64).tobytes()]
        rows = max(1, (1 << 22) // max(1, int(np.prod(flat.shape[1:]))))
        secs.append((head, lambda: (np.ascontiguousarray(flat[s : s + rows], np.float32)
                                    for s in range(0, len(flat), rows))))
    classes = repr([str(c) for c in ds.classes]).encode()
    secs.append(([classes], lambda: _chunked(ds.y, np.int64)))
    secs.append(([], lambda: _chunked(ds.row_id, np.int64)))
    return secs


def shard_dataset(ds: Dataset, sharding: Sharding) -> Dataset:
    """This rank's contiguous rows of ``ds`` (the whole dataset on every rank), fingerprinted
    as the whole."""
    start, stop = row_range(ds.n_samples, sharding.rank, sharding.world_size)
    fp = ds.fingerprint()
    part = ds.subset(np.arange(start, stop))
    part.__dict__["_fingerprint"] = fp
    return part


def load_shard(
    path: str,
    opts,
    sharding: Sharding,
    *,
    what: str = "training data",
    schema=None,
) -> tuple[Dataset, int]:
    """(this rank's rows of ``path`` with the FULL dataset's fingerprint, total rows N).

    Parquet files are read row group by row group, only the groups that hold this rank's rows;
    other formats are read whole on every rank and then sliced (convert large LIBSVM/CSV files
    to Parquet with ``rdia convert`` first).
    """
    from rdia_cli.data import readers

    fmt = opts.format
    if fmt == "auto":
        fmt = readers.detect_format(readers.Source(str(path), what))
    if fmt != "parquet":
        full = readers.read_dataset(str(path), opts, schema=schema, what=what)
        return shard_dataset(full, sharding), full.n_samples
    import pyarrow.parquet as pq

    n_file = pq.ParquetFile(str(path)).metadata.num_rows
    rows = row_range(n_file, sharding.rank, sharding.world_size)
    ds = readers.read_dataset(str(path), opts, schema=schema, what=what, rows=rows)
    ds = _align_width(ds, sharding)
    n_total = sum(sharding.all_gather_object(ds.n_samples))  # after any --classes filter
    ds.__dict__["_fingerprint"] = sharding.fingerprint(ds, n_total)
    return ds, n_total


def _align_width(ds: Dataset, sharding: Sharding) -> Dataset:
    """Sparse shards read without a stated width: pad every shard to the widest one."""
    if not sp.issparse(ds.X):
        return ds
    width = max(sharding.all_gather_object(int(ds.X.shape[1])))
    if width == ds.X.shape[1]:
        return ds
    X = sp.csr_matrix((ds.X.data, ds.X.indices, ds.X.indptr), shape=(ds.X.shape[0], width))
    return replace(ds, X=X)


# --- the stages, sharded ---------------------------------------------------------------------
def check_shardable(arch: str) -> None:
    """InputError unless torchrun can shard the rows of model kind ``arch``."""
    from rdia_cli.models.kinds import KINDS

    kind = KINDS.get(arch)
    if kind is None or not kind.shardable:
        raise InputError(
            f"torchrun shards logistic regression only, not `{arch}`; run networks in one "
            "process (without torchrun)."
        )




def train_logreg(ds: Dataset, sharding: Sharding, n_total: int, *, model_type: str = "logreg",
                 **kwargs):
    """``rdia_cli.models.logreg.training.train_logreg`` on this rank's rows, sums all-reduced."""
    from rdia_cli.models.logreg.training import train_logreg as _train

    check_shardable(model_type)
    return _train(ds, reduce=sharding.reduce, n_total=n_total, **kwargs)


def score_logreg(model, ds: Dataset, val: Dataset, sharding: Sharding, n_total: int, *,
                 solver: str = "auto", damping: float | None = None, tol: float | None = None,
                 max_iter: int | None = None, device=None, on_iter=None):
    """Φ for this rank's rows (the same defaults as :func:`rdia_cli.stages.score_model`)."""
    from rdia_cli.influence.logreg import score_logreg as _score
    from rdia_cli.influence.scoring import logreg_defaults
    from rdia_cli.models.common import check_model_data

    check_shardable(model.arch)
    check_model_data(model, ds, "training data")
    check_model_data(model, val, "validation data")
    return _score(model, ds, val, solver=solver, **logreg_defaults(damping, tol, max_iter),
                  device=device or sharding.device, reduce=sharding.reduce, n_total=n_total,
                  on_iter=on_iter)


def gather_scores(sharding: Sharding, result, ds: Dataset, probs: np.ndarray):
    """(result, rows, probs) over ALL rows on rank 0, (None, None, None) elsewhere.

    ``rows`` is a Dataset of the row ids, labels and fingerprint of the full data (its X is an
    empty placeholder of the right shape): what the scores file needs.
    """
    from rdia_cli.influence import ScoreResult

    phi = sharding.gather_rows(np.asarray(result.phi, np.float64))
    p_label = sharding.gather_rows(np.asarray(result.p_label, np.float64))
    loss = sharding.gather_rows(np.asarray(result.loss, np.float64))
    P = sharding.gather_rows(np.asarray(probs, np.float64))
    row_id = sharding.gather_rows(ds.row_id)
    y = sharding.gather_rows(ds.y)
    if not sharding.is_root:
        return None, None, None
    n = len(phi)
    info = dict(result.info, world_size=sharding.world_size)
    rows = Dataset(X=sp.csr_matrix((n, ds.n_features), dtype=np.float32), y=y,
                   classes=list(ds.classes), row_id=row_id, source=ds.source)
    rows.__dict__["_fingerprint"] = ds.fingerprint()
    return ScoreResult(phi=phi, p_label=p_label, loss=loss, info=info), rows, P
