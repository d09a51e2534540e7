"""Free flight of many ballistic states to the ground, vectorised fixed-step RK4 (c2's fast path).

Why not :func:`kizuna.sim.ballistic.fly_to_ground`: that function stacks every state into one
scipy ``solve_ivp`` DOP853 run at rtol 1e-10 and then samples its dense output on a 1 s grid to
find each crossing. It is the simulator's reference, but for a warning every 10 s it costs ~60 ms
per call (scipy's per-step Python overhead and the 1 s grid), and c2 calls it for every ballistic
track of every nation. Here the same equations of motion are integrated with the classical
fourth-order Runge-Kutta method at a fixed step over all states at once, with the six state
components kept as separate contiguous rows (few, cheap numpy calls per stage).

Dynamics (identical to the simulator's free flight, :mod:`kizuna.sim.ballistic`): point-mass +
J2 gravity (Vallado, *Fundamentals of Astrodynamics and Applications*, 4th ed., 2013, §8.7),
WGS84 constants, in the Earth-fixed frame rotating at ω about z, a = g − 2 ω×v − ω×(ω×r).

Accuracy: RK4's global error grows as h⁴ (Hairer, Nørsett & Wanner, *Solving ODEs I*, 1993,
§II.3). The step ``DEFAULT_STEP_S`` = 20 s is about 1/250 of a low orbit's period; measured
against DOP853 at rtol 1e-10 (``tests/test_c2_free_flight.py``) the impact points agree within
``AGREEMENT_M`` and the impact times within ``AGREEMENT_S`` for flights of up to 30 min, far below
the km-sized warning ellipses.

Ground crossing: the first step that ends at or below the ellipsoid (radial height, the
simulator's ground test) is bracketed; the crossing inside it is found on the cubic Hermite
interpolant of the step's end states (positions and velocities) by a few safeguarded secant
iterations; its error is of order h⁴/384 · |d⁴r/dt⁴| ≈ 1 cm for h = 10 s at ballistic speeds
(16× that, still well under ``AGREEMENT_M``, at the 20 s default).
A negative step flies states backwards in time (launch-point back-propagation).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from kizuna.geo import WGS84_A, WGS84_B, WGS84_GM, WGS84_OMEGA
from kizuna.plots import F64
from kizuna.sim.ballistic import J2

DEFAULT_STEP_S = 20.0
_NEWTON_ITERATIONS = 4
# Agreement with the simulator's DOP853 reference, checked by tests/test_c2_free_flight.py.
AGREEMENT_M = 1.0
AGREEMENT_S = 1.0e-3

_K_J2 = 1.5 * J2 * WGS84_A**2
_W = WGS84_OMEGA
_W2 = WGS84_OMEGA * WGS84_OMEGA


def _derivative(s: F64) -> F64:
    """d/dt of states stored as rows (6, M): x, y, z, vx, vy, vz (ECEF, rotating frame).

    Written for few numpy calls on short rows (each call costs ~1 µs whatever its length):
    a = −μ r/|r|³ [1 − k (5 z²/r² − 1)] for x, y and [1 − k (5 z²/r² − 3)] for z, with
    k = 3/2 J2 (Re/r)², plus (w²x + 2w·vy, w²y − 2w·vx, 0) for the frame's rotation.
    """
    pos = s[:3]
    inv_r2 = 1.0 / np.einsum("ij,ij->j", pos, pos)
    g = (-WGS84_GM) * inv_r2 * np.sqrt(inv_r2)
    k = _K_J2 * inv_r2
    k_five_z2 = 5.0 * k * s[2] * s[2] * inv_r2
    gxy = g * (1.0 + k - k_five_z2)
    out = np.empty_like(s)
    out[:3] = s[3:]
    out[3:5] = (gxy + _W2) * pos[:2]
    out[3] += (2.0 * _W) * s[4]
    out[4] -= (2.0 * _W) * s[3]
    out[5] = g * (1.0 + 3.0 * k - k_five_z2) * s[2]
    return out


def rk4_step(s: F64, h: float) -> F64:
    """One classical Runge-Kutta step of length ``h`` (s, may be negative) for rows (6, M)."""
    k1 = _derivative(s)
    k2 = _derivative(s + (0.5 * h) * k1)
    k3 = _derivative(s + (0.5 * h) * k2)
    k4 = _derivative(s + h * k3)
    return np.asarray(s + (h / 6.0) * (k1 + 2.0 * (k2 + k3) + k4), float)


def height_above_ellipsoid(x: F64, y: F64, z: F64) -> F64:
    """Radial height above the WGS84 ellipsoid: |r| minus the ellipsoid's radius in the same
    direction (same zero set and sign as the geodetic height; the simulator's ground test)."""
    r2 = x * x + y * y + z * z
    surface = 1.0 / np.sqrt((x * x + y * y) / (r2 * WGS84_A**2) + z * z / (r2 * WGS84_B**2))
    return np.asarray(np.sqrt(r2) - surface, float)


def _hermite(a: F64, b: F64, h: float, u: F64) -> F64:
    """States (6, M) at fraction u (M,) of a step of length h on the cubic Hermite interpolant
    through the step's end states a, b (6, M) (positions with velocities as slopes)."""
    u2, u3 = u * u, u * u * u
    h00, h10, h01, h11 = 2 * u3 - 3 * u2 + 1, u3 - 2 * u2 + u, -2 * u3 + 3 * u2, u3 - u2
    d00, d10, d01, d11 = 6 * u2 - 6 * u, 3 * u2 - 4 * u + 1, -6 * u2 + 6 * u, 3 * u2 - 2 * u
    pa, va, pb, vb = a[:3], a[3:], b[:3], b[3:]
    pos = h00 * pa + (h10 * h) * va + h01 * pb + (h11 * h) * vb
    vel = (d00 * pa + (d10 * h) * va + d01 * pb + (d11 * h) * vb) / h
    return np.concatenate([pos, vel])


def _crossing(a: F64, b: F64, h: float, ground: float) -> tuple[F64, F64]:
    """Fraction (M,) of the step where the Hermite path a → b crosses ``ground`` height, and the
    states there (6, M); a is above, b at or below.

    Newton's method from the linear interpolation of the end heights, with the radial speed
    (r·v/|r|) as the height's rate: the ellipsoid's radius changes along the path by at most
    ~1 % of that (flattening 1/298 times the path's latitude rate), so each iteration gains two
    digits; ``_NEWTON_ITERATIONS`` take the error far below a millimetre.
    """
    f_a = height_above_ellipsoid(a[0], a[1], a[2]) - ground
    f_b = height_above_ellipsoid(b[0], b[1], b[2]) - ground
    u = np.clip(f_a / np.maximum(f_a - f_b, 1e-300), 0.0, 1.0)
    for _ in range(_NEWTON_ITERATIONS):
        s = _hermite(a, b, h, u)
        f = height_above_ellipsoid(s[0], s[1], s[2]) - ground
        r = np.sqrt(s[0] * s[0] + s[1] * s[1] + s[2] * s[2])
        rate = (s[0] * s[3] + s[1] * s[4] + s[2] * s[5]) / r * h  # d height / d u
        step = np.where(rate != 0.0, f / np.where(rate != 0.0, rate, 1.0), 0.0)
        u = np.clip(u - step, 0.0, 1.0)
    return u, _hermite(a, b, h, u)


def fly_to_ground(
    states: npt.ArrayLike,
    ground_alt_m: float = 0.0,
    max_time_s: float = 7200.0,
    step_s: float = DEFAULT_STEP_S,
) -> tuple[F64, F64]:
    """Fly ECEF states (N, 6) freely (gravity only) until each reaches ``ground_alt_m`` above
    the ellipsoid; backwards in time when ``step_s`` < 0.

    Same contract as :func:`kizuna.sim.ballistic.fly_to_ground`: the elapsed time (N,) (s;
    negative backwards; 0 for a state already at or below the ground; NaN if it does not come
    down within ``max_time_s``) and the states there (N, 6) (NaN where the time is NaN).
    """
    y = np.asarray(states, float).reshape(-1, 6)
    n = y.shape[0]
    h = float(step_s)
    if not (math.isfinite(h) and h != 0.0):
        raise ValueError(f"step_s must be finite and non-zero, got {step_s}")
    times = np.full(n, np.nan)
    impacts = np.full((n, 6), np.nan)
    rows = np.ascontiguousarray(y.T)
    height = height_above_ellipsoid(rows[0], rows[1], rows[2])
    down = height <= ground_alt_m
    times[down] = 0.0
    impacts[down] = y[down]
    todo = np.flatnonzero(~down)
    current = rows[:, todo]
    elapsed = 0.0
    # Each landed state's bracketing step, resolved together after the loop (one batched
    # crossing search instead of one per step).
    landed_idx: list[npt.NDArray[np.intp]] = []
    landed_at: list[F64] = []
    before: list[F64] = []
    after: list[F64] = []
    while todo.size and abs(elapsed) < max_time_s:
        nxt = rk4_step(current, h)
        landed = height_above_ellipsoid(nxt[0], nxt[1], nxt[2]) <= ground_alt_m
        if landed.any():
            landed_idx.append(todo[landed])
            landed_at.append(np.full(int(landed.sum()), elapsed))
            before.append(current[:, landed])
            after.append(nxt[:, landed])
            keep = ~landed
            todo, nxt = todo[keep], nxt[:, keep]
        current = nxt
        elapsed += h
    if landed_idx:
        idx = np.concatenate(landed_idx)
        u, at = _crossing(
            np.concatenate(before, axis=1), np.concatenate(after, axis=1), h, ground_alt_m
        )
        times[idx] = np.concatenate(landed_at) + u * h
        impacts[idx] = at.T
    late = np.abs(times) > max_time_s
    times[late] = np.nan
    impacts[late] = np.nan
    return times, impacts
