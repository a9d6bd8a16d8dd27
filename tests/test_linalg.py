"""The one conjugate gradient (``rdia_cli.linalg``): against a direct solve, its options, its
failures (negative curvature, divergence) and the iteration limit."""

from __future__ import annotations

import math

import pytest
import torch

from rdia_cli.linalg import CGBreakdown, conjugate_gradient


def _spd(n: int, dtype, seed: int = 0, shift: float = 0.1):
    g = torch.Generator().manual_seed(seed)
    M = torch.randn(n, n, generator=g, dtype=torch.float64)
    A = M @ M.T / n + shift * torch.eye(n, dtype=torch.float64)
    b = torch.randn(n, generator=g, dtype=torch.float64)
    return A.to(dtype), b.to(dtype)


NET_OPTIONS = dict(min_iter=1, residual_norm="dot", fused_updates=False, diverge=1e6)


@pytest.mark.parametrize("dtype,tol,atol", [(torch.float64, 1e-12, 1e-9),
                                            (torch.float32, 1e-5, 1e-3)])
@pytest.mark.parametrize("options", ["default", "jacobi", "callable", "net"])
def test_matches_direct_solve(dtype, tol, atol, options):
    A, b = _spd(60, dtype)
    want = torch.linalg.solve(A.double(), b.double())
    kw = {"jacobi": dict(precond=torch.diagonal(A).clone()),
          "callable": dict(precond=lambda v: v / torch.diagonal(A)),
          "net": NET_OPTIONS}.get(options, {})
    seen = []
    res = conjugate_gradient(lambda v: A @ v, b, tol=tol, max_iter=500,
                             on_iter=lambda k, r: seen.append((k, r)), **kw)
    assert res.converged and res.residual <= tol and res.x.dtype == dtype
    assert [k for k, _ in seen] == list(range(1, res.iterations + 1))
    assert seen[-1][1] == res.residual
    torch.testing.assert_close(res.x.double(), want, rtol=0, atol=atol * float(want.abs().max()))
    true_rel = float(torch.linalg.vector_norm(b.double() - A.double() @ res.x.double())
                     / torch.linalg.vector_norm(b.double()))
    assert true_rel <= 10 * tol + (1e-5 if dtype == torch.float32 else 0.0)


def test_fused_and_unfused_updates_agree_in_float64():
    A, b = _spd(40, torch.float64, seed=1)
    a = conjugate_gradient(lambda v: A @ v, b, tol=1e-12, max_iter=200)
    c = conjugate_gradient(lambda v: A @ v, b, tol=1e-12, max_iter=200, **NET_OPTIONS)
    torch.testing.assert_close(a.x, c.x, rtol=1e-9, atol=1e-12)


def test_zero_right_hand_side():
    res = conjugate_gradient(lambda v: v, torch.zeros(5), tol=1e-6, max_iter=10)
    assert (res.iterations, res.residual, res.converged) == (0, 0.0, True)
    assert torch.equal(res.x, torch.zeros(5))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_max_iter_stops_unconverged(dtype):
    A, b = _spd(80, dtype, seed=2, shift=1e-3)  # ill-conditioned: 3 steps are not enough
    seen = []
    res = conjugate_gradient(lambda v: A @ v, b, tol=1e-12, max_iter=3,
                             on_iter=lambda k, r: seen.append(k))
    assert res.iterations == 3 and seen == [1, 2, 3]
    assert not res.converged and res.residual > 1e-12
    none = conjugate_gradient(lambda v: A @ v, b, tol=1e-12, max_iter=0)
    assert none.iterations == 0 and none.residual == 1.0 and not none.converged
    assert torch.equal(none.x, torch.zeros_like(b))


def test_min_iter_steps_before_testing_the_tolerance():
    A, b = _spd(20, torch.float64, seed=3)
    lazy = conjugate_gradient(lambda v: A @ v, b, tol=1.0, max_iter=50)  # x = 0 is good enough
    assert (lazy.iterations, lazy.residual, lazy.converged) == (0, 1.0, True)
    eager = conjugate_gradient(lambda v: A @ v, b, tol=1.0, max_iter=50, min_iter=1)
    assert eager.iterations >= 1 and eager.converged
    assert float(torch.linalg.vector_norm(eager.x)) > 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("diverge", [None, 1e6])
def test_negative_curvature_raises(dtype, diverge):
    A = torch.diag(torch.tensor([2.0, 1.0, -0.5], dtype=dtype))
    b = torch.ones(3, dtype=dtype)
    with pytest.raises(ArithmeticError, match=r"non-positive curvature pᵀAp = .* at CG step \d"
                       ) as e:
        conjugate_gradient(lambda v: A @ v, b, tol=1e-12, max_iter=10, diverge=diverge)
    assert isinstance(e.value, CGBreakdown)
    assert e.value.kind == "curvature" and e.value.value <= 0 and e.value.iteration >= 1
    with pytest.raises(CGBreakdown, match="at CG step 0"):  # -I: the first step fails
        conjugate_gradient(lambda v: -v, b, tol=1e-12, max_iter=10)


def test_non_finite_curvature_only_breaks_down_with_a_divergence_bound():
    b = torch.ones(3, dtype=torch.float64)
    with pytest.raises(CGBreakdown) as e:
        conjugate_gradient(lambda v: v * math.inf, b, tol=1e-12, max_iter=5, diverge=1e6)
    assert e.value.kind == "curvature" and e.value.value == math.inf
    res = conjugate_gradient(lambda v: v * math.inf, b, tol=1e-12, max_iter=5)
    assert not res.converged and math.isnan(res.residual)


def test_divergence_raises_with_a_bound():
    A = torch.diag(torch.tensor([1.0, 1e-9, 1e9], dtype=torch.float64))
    b = torch.ones(3, dtype=torch.float64)
    with pytest.raises(CGBreakdown, match="relative residual") as e:
        conjugate_gradient(lambda v: A @ v, b, tol=1e-30, max_iter=50, diverge=1e6)
    assert e.value.kind == "divergence" and e.value.value > 1e6 and e.value.iteration >= 1
    res = conjugate_gradient(lambda v: A @ v, b, tol=1e-30, max_iter=50)  # no bound: no check
    assert res.iterations >= 1


def test_bad_residual_norm_option():
    with pytest.raises(ValueError, match="residual_norm"):
        conjugate_gradient(lambda v: v, torch.ones(2), tol=1e-6, max_iter=5, residual_norm="l1")


def test_import_is_torch_free():
    import subprocess
    import sys

    code = "import sys, rdia_cli.linalg; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
