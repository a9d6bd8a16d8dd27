"""The design matrix X of logistic regression: dense or CSR, on the CPU (threaded scipy/numpy
kernels) or a GPU (torch), with the products X v and Xᵀ u the objective needs."""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import scipy.sparse as sp

from rdia_cli.errors import InputError
from rdia_cli.models.logreg.arrays import TORCH

warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")

_CPU_KERNELS = True  # False: CPU data take the torch-CSR path that GPUs take (tests)
DENSE_MAX_ELEMENTS = 50_000_000  # sparse X densified for the explicit Hessian below this size
# sparse X this small takes the Hessian's Gram blocks from its dense copy: per block, scipy's
# sparse product costs about a millisecond of set-up (the 351 blocks of 26 classes: 0.3 s)
GRAM_DENSE_ELEMENTS = 1 << 20

def identity(t):
    return t


class Design:
    """The design matrix X on a device: ``X @ W`` and ``Xᵀ @ G`` for dense or CSR data.

    Sparse X on the CPU is kept as one CSR in the compute dtype that shares its index arrays
    with the input (one copy of the values, none when they already have that dtype); both
    products run multi-threaded over row blocks (``torch.get_num_threads()``), ``Xᵀ @ G``
    without a transposed copy. On other devices X is a CSR tensor plus its transpose (built
    once, on the host) so that both products are plain CSR mat-vecs there. (``arrays.NumpyDesign``
    is the same interface on numpy arrays.)
    """

    xp = TORCH  # the array library's functions (``rdia_cli.models.logreg.arrays``)

    def __init__(self, X, *, device, dtype, transpose: bool = True):
        import torch

        self.device = torch.device(device)
        device = self.device
        self.dtype = dtype
        self.shape = tuple(X.shape)
        self.sparse = sp.issparse(X)
        self._scipy = None
        self._cpu = None
        self._XT = None
        self._host = None
        self._counts = None
        if self.sparse:
            X = X.tocsr()
            self._host = X  # the input CSR (shared, not copied), for host-side set-up work
            if device.type == "cpu" and _CPU_KERNELS:
                self._scipy = X  # for the explicit Hessian's sparse Gram matrix
                self._cpu = _CpuCSR(X, torch.empty(0, dtype=dtype).numpy().dtype)
                self._X = None
                return
            small = X.nnz < 2**31 - 1
            idx = torch.int32 if small else torch.int64
            self._X = self._csr(X, idx, device, dtype)
            if transpose:
                self._XT = self._csr(X.T.tocsr(), idx, device, dtype)
        else:
            X = np.asarray(X)
            if X.ndim > 2:
                X = X.reshape(X.shape[0], -1)
            self._X = torch.as_tensor(X, device=device).to(dtype)

    @staticmethod
    def _csr(A, idx, device, dtype):
        import torch

        return torch.sparse_csr_tensor(
            torch.from_numpy(A.indptr).to(idx),
            torch.from_numpy(A.indices).to(idx),
            torch.from_numpy(A.data).to(dtype),
            size=A.shape,
            device=device,
            check_invariants=False,
        )

    def mm(self, W):
        if self._cpu is not None:
            return self._cpu.mm(W)
        if self.sparse and W.shape[1] == 1:  # CSR mat-vec is faster than mat-mat
            return (self._X @ W[:, 0])[:, None]
        return self._X @ W

    def rmm(self, G):
        import torch

        if self._cpu is not None:
            return self._cpu.rmm(G)
        if not self.sparse:
            if self.device.type == "cpu" and G.shape[1] > 1 and not G.requires_grad:
                # torch's CPU Xᵀ @ G on a transposed view of a tall matrix is several times
                # slower than numpy's BLAS call on the same memory (measured: 33 vs 6 ms for
                # 3000 × 784 × 10); both share X's buffer, nothing is copied
                return torch.from_numpy(self._X.numpy().T @ G.contiguous().numpy())
            return self._X.T @ G
        if self._XT is None:
            raise RuntimeError("this Design was built with transpose=False")
        if G.shape[1] == 1:
            return (self._XT @ G[:, 0])[:, None]
        return self._XT @ G

    def col_sq_sums(self, c):
        """Σ_i c_i x_ia² for every column a (Jacobi preconditioner)."""
        import torch

        if self._cpu is not None:
            return self._cpu.rmm(c, square=True)
        if self.sparse:
            XT = self._XT
            X2T = torch.sparse_csr_tensor(
                XT.crow_indices(), XT.col_indices(), XT.values() ** 2, size=XT.shape,
                check_invariants=False,
            )
            return X2T @ c
        return (self._X**2).T @ c

    def column_counts(self) -> np.ndarray:
        """Nonzeros of every column (sparse X), cached."""
        if self._counts is None:
            if self._cpu is not None:
                self._counts = self._cpu.counts
            else:
                A = self._host
                self._counts = np.bincount(A.indices, minlength=A.shape[1]).astype(np.int64)
        return self._counts

    def frequent_gram(
        self, cols: np.ndarray, c: np.ndarray, *, max_rows: int | None = None
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """(Σ_i c_i x_iS x_iSᵀ, Σ_i c_i x_iS, Σ_i c_i) for the columns S = ``cols`` (sparse X,
        on the host, float64), over row blocks in threads: O(Σ_i k_i²) for k_i nonzeros of row
        i in S.

        With ``max_rows``, only evenly spread row blocks holding about that many rows are
        summed and the sums scaled up: an estimate, but the Gram matrix of [X_S, 1] of those
        rows (positive semi-definite), enough for a preconditioner.
        """
        import torch

        A = self._host
        m = len(cols)
        sel = sp.csr_matrix((np.ones(m), (cols, np.arange(m))), shape=(A.shape[1], m))
        c = np.asarray(c, dtype=np.float64)
        n, nnz = A.shape[0], int(A.nnz)
        steps = min(max(1, -(-nnz // _BLOCK_NNZ)), max(1, n))
        cuts = np.searchsorted(A.indptr, np.linspace(0, nnz, steps + 1)[1:-1])
        cuts = np.unique(np.r_[0, cuts, n])
        tasks = [(int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:], strict=True) if b > a]
        scale = 1.0
        if max_rows is not None and n > max_rows and len(tasks) > 1:
            tasks = tasks[:: max(1, round(n / max_rows))]
            scale = n / sum(b - a for a, b in tasks)
        want = (self._cpu.threads if self._cpu is not None else None) or torch.get_num_threads()
        threads = max(1, min(want, len(tasks)))
        acc = [(np.zeros((m, m)), np.zeros(m), np.zeros(1)) for _ in range(threads)]

        def job(k):
            G, col, tot = acc[k]
            for a, b in tasks[k::threads]:
                tot += c[a:b].sum()
                s, e = int(A.indptr[a]), int(A.indptr[b])
                Ab = sp.csr_matrix((A.data[s:e], A.indices[s:e], A.indptr[a : b + 1] - s),
                                   shape=(b - a, A.shape[1]))
                XS = (Ab @ sel).tocsr()
                XSc = XS.copy()
                XSc.data *= np.repeat(c[a:b], np.diff(XS.indptr))
                G += (XS.T @ XSc).toarray()
                col += np.asarray(XSc.sum(0)).ravel()

        if threads == 1:
            job(0)
        else:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(threads) as ex:
                list(ex.map(job, range(threads)))
        G, col, tot = acc[0]
        for G2, c2, t2 in acc[1:]:
            G += G2
            col += c2
            tot += t2
        if scale != 1.0:
            G *= scale
            col *= scale
            tot *= scale
        return G, col, float(tot[0])

    def gram(self, coef, *, intercept: bool):
        """X̃ᵀ diag(coef) X̃ with X̃ = [X, 1] when ``intercept`` (explicit Hessian blocks)."""
        import torch

        if self._scipy is not None and self.shape[0] * self.shape[1] > GRAM_DENSE_ELEMENTS:
            c = coef.detach().cpu().numpy()
            Xc = self._scipy.multiply(c[:, None]).tocsr()
            G = np.asarray((self._scipy.T @ Xc).todense())
            if intercept:
                col = np.asarray(Xc.sum(0)).ravel()
                G = np.block([[G, col[:, None]], [col[None, :], np.array([[c.sum()]])]])
            return torch.as_tensor(G, dtype=coef.dtype, device=coef.device)
        X = self.dense()
        Xc = X * coef[:, None]
        G = X.T @ Xc
        if intercept:
            col = Xc.sum(0)
            top = torch.cat([G, col[:, None]], 1)
            bottom = torch.cat([col, coef.sum().reshape(1)])[None, :]
            G = torch.cat([top, bottom], 0)
        return G

    def dense(self):
        """X as a dense tensor (only for the explicit Hessian of small problems; cached)."""
        if not self.sparse:
            return self._X
        if self.shape[0] * self.shape[1] > DENSE_MAX_ELEMENTS:
            raise InputError(
                f"the explicit Hessian needs X dense ({self.shape[0]}×{self.shape[1]}), "
                "which is too large; use --solver cg."
            )
        if getattr(self, "_dense", None) is None:
            if self._cpu is not None:
                import torch

                self._dense = torch.from_numpy(self._cpu.A.toarray()).to(self.dtype)
            else:
                self._dense = self._X.to_dense()
        return self._dense


@contextlib.contextmanager
def sparse_cpu_threads(design: Design):
    """While solving on sparse CPU data: torch's own (vector) ops on one thread, the sparse
    products on torch's thread count (rdia's pool). OpenMP synchronisation costs the O(N)
    vector ops more than it gains (7× slower Hessian-vector products on a loaded 2-core
    machine); elsewhere nothing changes."""
    cpu = getattr(design, "_cpu", None)
    if cpu is None:
        yield
        return
    import torch

    n = torch.get_num_threads()
    old = cpu.threads
    cpu.threads = old or n
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)
        cpu.threads = old


_POOLS: dict = {}
_BLOCK_NNZ = 1 << 22  # nonzeros per task of the threaded CPU products


class _CpuCSR:
    """CSR products on the CPU with scipy's compiled kernels (they release the GIL), over row
    blocks in ``torch.get_num_threads()`` threads. ``Xᵀ @ G`` reads X row by row (X's CSR is
    the CSC of Xᵀ), so no transpose is stored; each thread sums into its own (P, C) buffer.
    (Renumbering columns by frequency for cache locality was measured at the avazu-app shape:
    no gain, for 0.9 GB and 6 s of set-up; not done.)"""

    def __init__(self, X, dtype):
        data = X.data if X.data.dtype == dtype else X.data.astype(dtype)
        indices, indptr = X.indices, X.indptr
        self._X, self._counts = X, None
        if indptr.dtype != indices.dtype:
            indptr = indptr.astype(indices.dtype)
        self.A = sp.csr_matrix((data, indices, indptr), shape=X.shape, copy=False)
        self.dtype = np.dtype(dtype)
        n, nnz = X.shape[0], int(X.nnz)
        steps = min(max(8, -(-nnz // _BLOCK_NNZ)), max(1, n))
        cuts = np.searchsorted(indptr, np.linspace(0, nnz, steps + 1)[1:-1])
        self.tasks = [
            (int(a), int(b))
            for a, b in zip(*(lambda e: (e[:-1], e[1:]))(np.unique(np.r_[0, cuts, n])),
                            strict=True)
            if b > a
        ] or [(0, n)]
        self._binary = None
        self.threads: int | None = None  # None: torch.get_num_threads()

    @property
    def counts(self) -> np.ndarray:
        """Nonzeros of every column (of the input X), cached."""
        if self._counts is None:
            X = self._X
            self._counts = np.bincount(X.indices, minlength=X.shape[1]).astype(np.int64)
        return self._counts

    @property
    def binary(self) -> bool:
        """All stored values are 1 (one-hot data): X∘X = X."""
        if self._binary is None:
            d = self.A.data
            self._binary = all(bool((d[a : a + (1 << 22)] == 1).all())
                               for a in range(0, d.size, 1 << 22))
        return self._binary

    def _run(self, job) -> None:
        """job(task, slot) for every task; tasks of one slot run in order in one thread."""
        import torch

        threads = max(1, min(self.threads or torch.get_num_threads(), len(self.tasks)))
        if threads == 1:
            for t in self.tasks:
                job(t, 0)
            return
        from concurrent.futures import ThreadPoolExecutor

        pool = _POOLS.get(threads)
        if pool is None:
            pool = _POOLS[threads] = ThreadPoolExecutor(threads, thread_name_prefix="rdia")
        slots = [(k, self.tasks[k::threads]) for k in range(threads)]
        for f in [pool.submit(lambda k, ts: [job(t, k) for t in ts], k, ts) for k, ts in slots]:
            f.result()

    def mm(self, W):
        """X @ W for a (P, C) CPU tensor."""
        import torch
        from scipy.sparse import _sparsetools as st

        A = self.A
        Wn = np.ascontiguousarray(W.detach().numpy(), dtype=self.dtype)
        C = Wn.shape[1]
        out = np.zeros((A.shape[0], C), dtype=self.dtype)

        def job(task, _slot):
            a, b = task
            ptr = A.indptr[a : b + 1]
            if C == 1:
                st.csr_matvec(b - a, A.shape[1], ptr, A.indices, A.data, Wn[:, 0], out[a:b, 0])
            else:
                st.csr_matvecs(b - a, A.shape[1], C, ptr, A.indices, A.data, Wn.reshape(-1),
                               out[a:b].reshape(-1))

        self._run(job)
        return torch.from_numpy(out)

    def rmm(self, G, *, square: bool = False):
        """Xᵀ @ G, or (X∘X)ᵀ @ G with ``square``, for an (N, C) CPU tensor."""
        import torch
        from scipy.sparse import _sparsetools as st

        A = self.A
        Gn = np.ascontiguousarray(G.detach().numpy(), dtype=self.dtype)
        C, P = Gn.shape[1], A.shape[1]
        square = square and not self.binary
        outs: dict[int, np.ndarray] = {}

        def job(task, slot):
            a, b = task
            out = outs.get(slot)
            if out is None:
                out = outs[slot] = np.zeros((P, C), dtype=self.dtype)
            ptr, idx, data = A.indptr[a : b + 1], A.indices, A.data
            if square:  # squares of this block only: a bounded temporary
                s, e = int(ptr[0]), int(ptr[-1])
                ptr, idx, data = ptr - ptr.dtype.type(s), idx[s:e], np.square(data[s:e])
            if C == 1:
                st.csc_matvec(P, b - a, ptr, idx, data, Gn[a:b, 0], out[:, 0])
            else:
                st.csc_matvecs(P, b - a, C, ptr, idx, data, Gn[a:b].reshape(-1),
                               out.reshape(-1))

        self._run(job)
        parts = list(outs.values())
        total = parts[0] if parts else np.zeros((P, C), dtype=self.dtype)
        for o in parts[1:]:
            total += o
        return torch.from_numpy(total)
