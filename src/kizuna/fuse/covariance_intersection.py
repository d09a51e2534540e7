"""Covariance intersection (CI): fuse two estimates whose cross-correlation is unknown.

Two nations' tracks of one object are correlated (common process noise, a shared prior, the same
manoeuvre) but nobody tracks the cross-covariance across a coalition network. Fusing them as if
independent (the "naive" information sum) is then over-confident. CI (Julier & Uhlmann, "A
non-divergent estimation algorithm in the presence of unknown correlations", ACC 1997) is
consistent for *any* cross-correlation:

    P⁻¹ = ω P₁⁻¹ + (1 − ω) P₂⁻¹,      x = P (ω P₁⁻¹ x₁ + (1 − ω) P₂⁻¹ x₂),      ω ∈ [0, 1].

Weights offered, all batched over K pairs of n-dimensional estimates:

* ``"det"`` (default): the ω that minimises det P, i.e. maximises log det(ω I₁ + (1 − ω) I₂)
  (Julier & Uhlmann 1997, §4). With λᵢ the generalised eigenvalues of (I₁, I₂) this is
  log det I₂ + Σᵢ log(1 + ω(λᵢ − 1)): concave in ω (Boyd & Vandenberghe, Convex Optimization,
  2004, §3.1.5), so after one eigen-decomposition per pair a safeguarded Newton iteration on
  the derivative finds the optimum to machine precision.
* ``"fast"``: Niehsen's closed form ω = tr P₂ / (tr P₁ + tr P₂) (W. Niehsen, "Information fusion
  based on fast covariance intersection filtering", FUSION 2002), no search at all.

Inverse covariance intersection (ICI; Noack, Sijs, Reinhardt & Hanebeck, "Decentralized data
fusion with inverse covariance intersection", Automatica 79, 2017, eq. (8)–(9)) is also provided:
it is consistent for correlations arising from *common information* and is tighter than CI:

    P⁻¹ = P₁⁻¹ + P₂⁻¹ − (ω P₁ + (1 − ω) P₂)⁻¹,
    x = P [(P₁⁻¹ − ω Γ) x₁ + (P₂⁻¹ − (1 − ω) Γ) x₂],   Γ = (ω P₁ + (1 − ω) P₂)⁻¹,

with ω chosen to minimise det P (batched grid + golden-section refinement).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]

_GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0  # 1/φ
_ITERATIONS = 40  # interval shrinks by 0.618^40 ≈ 4e-9: far below any effect on the result


def _sym(P: F64) -> F64:
    return 0.5 * (P + np.swapaxes(P, -1, -2))


def _logdet(M: F64) -> F64:
    sign, value = np.linalg.slogdet(M)
    # A non-positive-definite candidate is never optimal: push it to -inf.
    return np.where(sign > 0, value, -np.inf)


def _golden_max(f: Callable[[F64], F64], lo: F64, hi: F64) -> F64:
    """Batched golden-section search for the maximiser of concave ``f(ω (K,)) -> (K,)``."""
    a, b = lo.copy(), hi.copy()
    c = b - _GOLDEN * (b - a)
    d = a + _GOLDEN * (b - a)
    fc, fd = f(c), f(d)
    for _ in range(_ITERATIONS):
        left = fc >= fd  # maximum lies in [a, d]
        b = np.where(left, d, b)
        a = np.where(left, a, c)
        # The scalar method reuses one evaluation per step; batched, two fresh ones are simpler
        # and still cheap for 6x6 matrices.
        c = b - _GOLDEN * (b - a)
        d = a + _GOLDEN * (b - a)
        fc, fd = f(c), f(d)
    return np.asarray(0.5 * (a + b))


def ci_weights(
    P1: F64,
    P2: F64,
    method: Literal["det", "fast"] = "det",
    *,
    I1: F64 | None = None,
    I2: F64 | None = None,
) -> F64:
    """CI weight ω (K,) on estimate 1 for K pairs of covariances (K, n, n)."""
    P1 = np.asarray(P1, dtype=np.float64)
    P2 = np.asarray(P2, dtype=np.float64)
    if method == "fast":
        t1 = np.trace(P1, axis1=-2, axis2=-1)
        t2 = np.trace(P2, axis1=-2, axis2=-1)
        return np.asarray(t2 / (t1 + t2))
    if method != "det":
        raise ValueError(f"unknown CI weight method {method!r}")
    A: F64 = np.linalg.inv(P1) if I1 is None else I1
    B: F64 = np.linalg.inv(P2) if I2 is None else I2
    # log det(ωA + (1−ω)B) = log det B + Σᵢ log(1 + ω(λᵢ − 1)), λᵢ the eigenvalues of B⁻¹A
    # (the symmetric L⁻¹ A L⁻ᵀ with B = L Lᵀ): one eigen-decomposition per pair, then the
    # search evaluates a sum of n logarithms instead of a determinant per step.
    L = np.linalg.cholesky(B)
    X = np.linalg.solve(L, A)
    M = np.linalg.solve(L, np.swapaxes(X, -1, -2))
    lam = np.linalg.eigvalsh(_sym(M)) - 1.0
    return _maximise_log_sum(lam)


def _maximise_log_sum(lam: F64, iterations: int = 40) -> F64:
    """argmax over ω ∈ [0, 1] of f(ω) = Σᵢ log(1 + ω λᵢ), per row of ``lam`` (K, n).

    f is concave (a sum of concave logs), so f' is decreasing: the optimum is 0 if f'(0) ≤ 0,
    1 if f'(1) ≥ 0, else the root of f'. Newton's method on f' from the bracket's midpoint,
    falling back to bisection whenever a step leaves the bracket, converges in a handful of
    steps near the root; where Newton steps keep leaving the bracket (ill-conditioned pairs) the
    bisection steps alone shrink it by 2⁻⁴⁰ in 40 iterations.
    1 + ωλ > 0 on [0, 1] because both end points are positive definite (λ > −1).

    Two implementations of the same iteration give the same bits: per row with Python floats
    (:func:`_newton_row`, for the few rows of a tick: numpy's per-call overhead dominated it,
    about 25 array operations per step for ~8 rows) and batched over rows with numpy
    (:func:`_newton_rows`, for many rows, e.g. a 1,000-track picture).
    """
    d0 = lam.sum(axis=1)  # f'(0)
    d1 = (lam / (1.0 + lam)).sum(axis=1)  # f'(1)
    interior = (d0 > 0) & (d1 < 0)
    w = np.where(d0 <= 0, 0.0, 1.0)
    if not interior.any():
        return w
    L = lam[interior]
    if L.shape[1] == 6 and L.shape[0] <= _SCALAR_ROWS:
        try:
            w[interior] = [_newton_row(row, iterations) for row in L.tolist()]
            return w
        except ZeroDivisionError:  # 1 + ωλ rounded to 0: let numpy give its inf/nan instead
            pass
    w[interior] = _newton_rows(L, iterations)
    return w


# Up to this many interior rows the per-row Python iteration is cheaper than the batched numpy
# one: numpy pays ~25 array operations per step whatever the row count, Python ~1.5 µs per row
# and step. Measured on the 2-core development machine (random λ, 40 steps at most): 7 rows
# 0.16 vs 1.5 ms, 57 rows 1.1 vs 1.9 ms, 110 rows 2.7 vs 2.4 ms, 231 rows 5.7 vs 2.8 ms.
_SCALAR_ROWS = 96


def _newton_row(lam: list[float], iterations: int) -> float:
    """:func:`_newton_rows` for one row of six λ, in Python floats, bit for bit.

    Same IEEE-754 operations in the same order: numpy evaluates ``L / (1 + x L)`` element by
    element and sums a row of a (K, 6) array from left to right (pinned by
    tests/test_fuse_speedpaths.py), and ``min(h, c)`` equals ``np.minimum(h, c)`` including a
    NaN ``h``.
    """
    l0, l1, l2, l3, l4, l5 = lam
    x, a, b = 0.5, 0.0, 1.0
    for _ in range(iterations):
        q0 = l0 / (1.0 + x * l0)
        q1 = l1 / (1.0 + x * l1)
        q2 = l2 / (1.0 + x * l2)
        q3 = l3 / (1.0 + x * l3)
        q4 = l4 / (1.0 + x * l4)
        q5 = l5 / (1.0 + x * l5)
        g = q0 + q1 + q2 + q3 + q4 + q5  # f'(x)
        h = -(q0 * q0 + q1 * q1 + q2 * q2 + q3 * q3 + q4 * q4 + q5 * q5)  # f''(x) < 0
        if g > 0:
            a_next, b_next = x, b
        else:
            a_next, b_next = a, x
        newton = x - g / min(h, -1e-300)
        x_next = newton if a_next < newton < b_next else 0.5 * (a_next + b_next)
        if x_next == x and a_next == a and b_next == b:
            return x  # a fixed point: every further step gives the same bits
        x, a, b = x_next, a_next, b_next
    return x


def _newton_rows(L: F64, iterations: int) -> F64:
    """The safeguarded Newton iteration of :func:`_maximise_log_sum`, batched over rows of
    ``L`` (K, n), all of whose optima are interior."""
    a = np.zeros(L.shape[0])
    b = np.ones(L.shape[0])
    x = np.full(L.shape[0], 0.5)
    result = np.empty(L.shape[0])
    active = np.arange(L.shape[0])  # rows still iterating, into ``result``
    for _ in range(iterations):
        q = L / (1.0 + x[:, None] * L)
        g = q.sum(axis=1)  # f'(x)
        h = -(q * q).sum(axis=1)  # f''(x) < 0
        a_next = np.where(g > 0, x, a)
        b_next = np.where(g > 0, b, x)
        newton = x - g / np.minimum(h, -1e-300)
        inside = (newton > a_next) & (newton < b_next)
        x_next = np.where(inside, newton, 0.5 * (a_next + b_next))
        # A row whose (x, a, b) did not change is at a fixed point of the iteration: every
        # further step would give the same bits, so it stops here (newton converges in a few
        # steps; the answer is exactly the one after all ``iterations`` steps).
        moving = (x_next != x) | (a_next != a) | (b_next != b)
        x, a, b = x_next, a_next, b_next
        if not moving.all():
            done = ~moving
            result[active[done]] = x[done]
            active, x, a, b, L = active[moving], x[moving], a[moving], b[moving], L[moving]
            if active.size == 0:
                break
    result[active] = x
    return result


def covariance_intersection(
    x1: F64, P1: F64, x2: F64, P2: F64, method: Literal["det", "fast"] = "det"
) -> tuple[F64, F64, F64]:
    """Fuse K pairs: x (K, n), P (K, n, n) each → (x, P, ω). Consistent for any correlation."""
    x1 = np.asarray(x1, dtype=np.float64)
    x2 = np.asarray(x2, dtype=np.float64)
    I1 = np.linalg.inv(np.asarray(P1, dtype=np.float64))
    I2 = np.linalg.inv(np.asarray(P2, dtype=np.float64))
    w = ci_weights(P1, P2, method, I1=I1, I2=I2)
    wi = w[:, None, None]
    info = wi * I1 + (1.0 - wi) * I2
    P = _sym(np.linalg.inv(info))
    y = np.einsum("kij,kj->ki", wi * I1, x1) + np.einsum("kij,kj->ki", (1.0 - wi) * I2, x2)
    x = np.einsum("kij,kj->ki", P, y)
    return x, P, w


def naive_fusion(x1: F64, P1: F64, x2: F64, P2: F64) -> tuple[F64, F64]:
    """The independent-errors information sum (a baseline; over-confident when correlated)."""
    I1 = np.linalg.inv(P1)
    I2 = np.linalg.inv(P2)
    P = _sym(np.linalg.inv(I1 + I2))
    x = np.einsum(
        "kij,kj->ki", P, np.einsum("kij,kj->ki", I1, x1) + np.einsum("kij,kj->ki", I2, x2)
    )
    return x, P


def inverse_covariance_intersection(x1: F64, P1: F64, x2: F64, P2: F64) -> tuple[F64, F64, F64]:
    """Inverse CI (Noack et al. 2017), ω minimising det P; returns (x, P, ω), batched over K."""
    x1 = np.asarray(x1, dtype=np.float64)
    x2 = np.asarray(x2, dtype=np.float64)
    P1 = np.asarray(P1, dtype=np.float64)
    P2 = np.asarray(P2, dtype=np.float64)
    I1 = np.linalg.inv(P1)
    I2 = np.linalg.inv(P2)

    def info(w: F64) -> tuple[F64, F64]:
        wi = w[:, None, None]
        gamma = np.linalg.inv(wi * P1 + (1.0 - wi) * P2)
        return I1 + I2 - gamma, gamma

    def objective(w: F64) -> F64:
        return _logdet(info(w)[0])

    # The ICI objective is not guaranteed concave: bracket the best of a coarse grid first.
    k = P1.shape[0]
    grid = np.linspace(0.0, 1.0, 11)
    scores = np.stack([objective(np.full(k, g)) for g in grid], axis=1)
    best = np.argmax(scores, axis=1)
    lo = grid[np.maximum(best - 1, 0)]
    hi = grid[np.minimum(best + 1, grid.size - 1)]
    w = _golden_max(objective, lo, hi)
    information, gamma = info(w)
    P = _sym(np.linalg.inv(information))
    wi = w[:, None, None]
    K1 = I1 - wi * gamma
    K2 = I2 - (1.0 - wi) * gamma
    x = np.einsum(
        "kij,kj->ki", P, np.einsum("kij,kj->ki", K1, x1) + np.einsum("kij,kj->ki", K2, x2)
    )
    return x, P, w


def fuse_many(
    x: F64, P: F64, group: npt.NDArray[np.int64], method: Literal["det", "fast", "ici"] = "det"
) -> tuple[npt.NDArray[np.int64], F64, F64]:
    """Fuse rows of ``x`` (M, n), ``P`` (M, n, n) sharing a ``group`` label by sequential CI.

    Returns (groups, x, P): one fused estimate per distinct group, ascending. Sequential
    pairwise CI is consistent (each step is); the order is fixed (row order), so results are
    deterministic. ``method``: a CI weight (``"det"``, ``"fast"``) or ``"ici"`` for inverse CI.
    Batched: step j fuses the j-th member of every group that has one.
    """
    group = np.asarray(group)
    order = np.argsort(group, kind="stable")
    g_sorted = group[order]
    uniq, first, counts = np.unique(g_sorted, return_index=True, return_counts=True)
    fx = x[order[first]].copy()
    fP = P[order[first]].copy()
    for j in range(1, int(counts.max(initial=1))):
        has = counts > j
        rows = order[first[has] + j]
        if method == "ici":
            nx, nP, _ = inverse_covariance_intersection(fx[has], fP[has], x[rows], P[rows])
        else:
            nx, nP, _ = covariance_intersection(fx[has], fP[has], x[rows], P[rows], method)
        fx[has] = nx
        fP[has] = nP
    return uniq, fx, fP
