"""Fit the building's thermal parameters (UA, C, solar aperture, internal gains) from logged history.

The model is the exact discretisation of the 1R1C house of :mod:`atsd.core.thermal`: with the
outdoor temperature and every heat flow constant within a slot of ``dt`` seconds,

    T[k+1] = φ·T[k] + (1 − φ)·(Tout[k] + (Q[k] + g + A·GHI[k]) / UA),     φ = exp(−dt / τ),  τ = C / UA.

The fit minimises the **multi-step simulation error**: the history is cut into segments (at every
gap in the inputs, and into ``segment_h``-long pieces), each segment is simulated from its start
using only the inputs, and the simulated indoor temperature is compared with every measured one.
A model that predicts only the next slot well can still drift by degrees over a night; this one
cannot hide that.

For a fixed τ the simulated temperature is *linear* in ``b = 1/UA``, ``c = g/UA``, ``d = A/UA`` and
in each segment's start temperature, so the fit is a variable projection: a one-dimensional search
over τ (coarse log grid, then golden section) with an exact linear least-squares solve inside, and
each segment's start temperature estimated as a nuisance parameter (a single noisy reading would
bias the whole segment). Confidence intervals come from the Jacobian at the optimum,
``cov = s²·(JᵀJ)⁻¹`` (segment starts projected out), mapped to UA, C, A and g by the delta method.

Without a measured heat series (SG-Ready relays only) UA and C cannot be told apart: the relay fit
estimates τ and heating rates (K/h: heat over C) and is marked a model estimate. Two models compete
on the same multi-step error: a fixed heat per mode (linear, as above) and a heat pump that holds
each mode's setpoint (piecewise: Levenberg-Marquardt with analytic sensitivities).

Pure core: numpy only, no I/O, no clock. The shell (:mod:`atsd.calibration`) reads the data,
stores the result and decides whether a new fit replaces the old one.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from atsd.core.modes import ALL_MODES, Mode

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int_]
J_PER_KWH = 3.6e6
Z95 = 1.959964  # two-sided 95 % normal quantile

TAU_MIN_H = 1.0
TAU_MAX_H = 2000.0


class CalibrationRefused(Exception):  # noqa: N818  (a refusal is an answer, not a fault)
    """The history cannot identify the parameters; ``reason`` says why in plain words."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class History:
    """Logged history on a regular UTC grid of ``step_s`` seconds; NaN where nothing was logged.

    ``indoor_c[k]`` is the indoor temperature measured at the start of slot ``k``; ``outdoor_c``,
    ``ghi_w_m2`` and ``heat_w`` (thermal heat delivered into the house) are their means over slot
    ``k``. ``mode_rank`` (``Mode.rank``, −1 unknown) is what the relays commanded; it is used only
    when there is no heat series, and so is ``setpoint_c``: each mode's thermostat setpoint per slot
    (from the configuration), which lets the relay fit model a heat pump that holds its setpoint.
    """

    step_s: int
    indoor_c: FloatArray
    outdoor_c: FloatArray
    ghi_w_m2: FloatArray | None = None
    heat_w: FloatArray | None = None
    mode_rank: IntArray | None = None
    setpoint_c: FloatArray | None = None  # (4, n) compressor setpoint per mode rank; −inf: blocked

    @property
    def n(self) -> int:
        return len(self.indoor_c)

    @property
    def relay_only(self) -> bool:
        return self.heat_w is None or not bool(np.isfinite(self.heat_w).any())


@dataclass(frozen=True)
class Estimate:
    """A fitted value with its standard error and 95 % confidence interval."""

    value: float
    std: float

    @property
    def low(self) -> float:
        return self.value - Z95 * self.std

    @property
    def high(self) -> float:
        return self.value + Z95 * self.std

    @property
    def rel_std(self) -> float:
        return abs(self.std / self.value) if self.value else math.inf

    def as_json(self, digits: int = 4) -> dict[str, float]:
        return {"value": _r(self.value, digits), "low": _r(self.low, digits), "high": _r(self.high, digits),
                "std": _r(self.std, digits)}


@dataclass(frozen=True)
class Calibration:
    """A successful fit. Physical parameters are ``None`` for a relay-only (model-estimate) fit."""

    model_estimate: bool
    tau_h: Estimate
    ua_w_per_k: Estimate | None
    capacitance_kwh_per_k: Estimate | None
    solar_aperture_m2: Estimate | None
    internal_gains_w: Estimate | None
    heat_rate_k_per_h: dict[str, Estimate]  # relay-only: heating rate per mode (mode heat / C)
    solar_k_per_h_per_w_m2: Estimate | None  # relay-only: solar heating rate per W/m² of GHI
    rmse_c: float
    samples: int
    segments: int
    days: float
    step_s: int
    condition: float
    notes: tuple[str, ...] = field(default=())
    relay_model: str | None = None  # relay-only: "fixed heat per mode" or "thermostat"

    def overrides(self) -> dict[str, float]:
        """Parameters in the form ``atsd.core.house.thermal_model(cfg, overrides)`` takes."""
        out: dict[str, float] = {}
        if self.ua_w_per_k is not None:
            out["ua_w_per_k"] = self.ua_w_per_k.value
        if self.capacitance_kwh_per_k is not None:
            out["capacitance_kwh_per_k"] = self.capacitance_kwh_per_k.value
        if self.solar_aperture_m2 is not None:
            out["solar_aperture_m2"] = max(0.0, self.solar_aperture_m2.value)
        if self.internal_gains_w is not None:
            # Without a GHI series this includes the history's mean solar gain.
            out["internal_gains_w"] = self.internal_gains_w.value
        return out

    def as_json(self) -> dict[str, object]:
        def v(e: Estimate | None, digits: int) -> float | None:
            return None if e is None else _r(e.value, digits)

        def ci(e: Estimate | None, digits: int) -> dict[str, float] | None:
            return None if e is None else e.as_json(digits)

        doc: dict[str, object] = {
            "ua_w_per_k": v(self.ua_w_per_k, 2),
            "capacitance_kwh_per_k": v(self.capacitance_kwh_per_k, 3),
            "tau_h": _r(self.tau_h.value, 2),
            "solar_aperture_m2": v(self.solar_aperture_m2, 3),
            "internal_gains_w": v(self.internal_gains_w, 1),
            "rmse_c": _r(self.rmse_c, 4),
            "samples": self.samples,
            "segments": self.segments,
            "days": _r(self.days, 2),
            "step_s": self.step_s,
            "model_estimate": self.model_estimate,
            "intervals_95": {
                "ua_w_per_k": ci(self.ua_w_per_k, 2),
                "capacitance_kwh_per_k": ci(self.capacitance_kwh_per_k, 3),
                "tau_h": self.tau_h.as_json(2),
                "solar_aperture_m2": ci(self.solar_aperture_m2, 3),
                "internal_gains_w": ci(self.internal_gains_w, 1),
            },
            "condition_number": _r(self.condition, 1),
            "notes": list(self.notes),
        }
        if self.model_estimate:
            doc["relay_model"] = self.relay_model
            doc["heat_rate_k_per_h"] = {m: e.as_json(4) for m, e in self.heat_rate_k_per_h.items()}
            doc["solar_k_per_h_per_w_m2"] = ci(self.solar_k_per_h_per_w_m2, 6)
        return doc


@dataclass(frozen=True)
class Limits:
    """When the fit refuses. Defaults reflect what a week of ordinary winter data easily passes."""

    min_days: float = 3.0
    min_coverage: float = 0.6  # share of the span with complete inputs
    segment_h: float = 24.0
    min_segment_h: float = 3.0
    flat_indoor_std_c: float = 0.05
    flat_heat_rel_std: float = 0.01
    max_condition: float = 1e8
    max_rel_std: float = 0.15  # of τ, UA and C (≈ ±30 % at 95 %): beyond it the data does not identify them


# -- segments and the linear responses --------------------------------------------------------


@dataclass(frozen=True)
class _Layout:
    """The history cut into segments, padded to a common length ``L`` (inputs) / ``L+1`` (states)."""

    starts: IntArray  # first slot of each segment
    lengths: IntArray  # number of input slots of each segment
    length: int
    y: FloatArray  # (S, L+1) measured indoor at the segment's boundaries (NaN: not measured)
    mask: NDArray[np.bool_]  # (S, L+1) residual used (measured, inside the segment, not the start)
    start_mask: NDArray[np.bool_]  # (S, L+1) rows that feed the start-temperature estimate
    tout: FloatArray  # (S, L)
    regressors: FloatArray  # (S, L, p) inputs whose coefficients are fitted linearly
    names: tuple[str, ...]


def _segments(usable: NDArray[np.bool_], seg_len: int, min_len: int) -> list[tuple[int, int]]:
    """Maximal runs of usable slots, cut into pieces of ``seg_len``; pieces shorter than ``min_len`` drop."""
    out: list[tuple[int, int]] = []
    n = len(usable)
    k = 0
    while k < n:
        if not usable[k]:
            k += 1
            continue
        e = k
        while e < n and usable[e]:
            e += 1
        run = e - k
        pieces = max(1, round(run / seg_len))
        edges = np.linspace(k, e, pieces + 1).round().astype(int)
        for a, b in itertools.pairwise(edges):
            if b - a >= min_len:
                out.append((int(a), int(b)))
        k = e
    return out


def _layout(h: History, cols: dict[str, FloatArray], usable: NDArray[np.bool_], lim: Limits) -> _Layout:
    seg_len = max(2, round(lim.segment_h * 3600 / h.step_s))
    min_len = max(2, round(lim.min_segment_h * 3600 / h.step_s))
    segs = _segments(usable, seg_len, min_len)
    if not segs:
        raise CalibrationRefused("no stretch of complete data is long enough "
                                 f"(need {lim.min_segment_h:g} h without gaps)")
    n_seg = len(segs)
    length = max(b - a for a, b in segs)
    names = tuple(cols)
    p = len(names)
    y = np.full((n_seg, length + 1), np.nan)
    tout = np.zeros((n_seg, length))
    reg = np.zeros((n_seg, length, p))
    for s, (a, b) in enumerate(segs):
        m = b - a
        end = min(b + 1, h.n)
        y[s, :end - a] = h.indoor_c[a:end]
        tout[s, :m] = h.outdoor_c[a:b]
        for j, name in enumerate(names):
            reg[s, :m, j] = cols[name][a:b]
    lengths = np.array([b - a for a, b in segs])
    inside = np.arange(length + 1)[None, :] <= lengths[:, None]
    measured = np.isfinite(y)
    start_mask = inside & measured
    mask = start_mask.copy()
    mask[:, 0] = False
    return _Layout(np.array([a for a, _ in segs]), lengths, length, np.nan_to_num(y), mask, start_mask, tout, reg,
                   names)


def _kernel(phi: float, length: int) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Response matrices of one segment: ``k_mat`` (L+1, L) maps inputs to states, ``p0`` the start.

    ``k_mat[k, j] = φ^(k−1−j)·(1 − φ)`` for ``j < k`` (the exact update, unrolled); also their
    derivatives with respect to φ for the Jacobian.
    """
    k = np.arange(length + 1)[:, None]
    j = np.arange(length)[None, :]
    m = k - 1 - j
    causal = m >= 0
    mm = np.where(causal, m, 0).astype(np.float64)
    pw = phi ** mm
    k_mat = np.where(causal, pw * (1.0 - phi), 0.0)
    dpw = np.where(mm > 0, mm * phi ** np.maximum(mm - 1, 0), 0.0)
    dk_mat = np.where(causal, dpw * (1.0 - phi) - pw, 0.0)
    kk = np.arange(length + 1, dtype=np.float64)
    p0 = phi ** kk
    dp0 = np.where(kk > 0, kk * phi ** np.maximum(kk - 1, 0), 0.0)
    return k_mat, p0, dk_mat, dp0


def _project(lay: _Layout, p0: FloatArray, v: FloatArray) -> FloatArray:
    """Remove from ``v`` (S, L+1[, q]) what each segment's free start temperature can explain.

    The start temperature is fitted from the segment's measured points including its first one
    (``start_mask``); residuals are taken on the later points (``mask``).
    """
    w = lay.start_mask.astype(np.float64)
    pp = p0[None, :] * w  # (S, L+1)
    denom = (pp * p0[None, :]).sum(axis=1)  # Σ p0² over measured points
    if v.ndim == 2:
        x0 = (pp * v).sum(axis=1) / denom
        return np.asarray(v - x0[:, None] * p0[None, :], dtype=np.float64)
    x0 = np.einsum("sk,skq->sq", pp, v) / denom[:, None]
    return np.asarray(v - x0[:, None, :] * p0[None, :, None], dtype=np.float64)


@dataclass(frozen=True)
class _Solve:
    tau_s: float
    coef: FloatArray
    rss: float
    resid: FloatArray  # masked residuals, flattened


def _solve(lay: _Layout, tau_s: float, step_s: int) -> _Solve:
    """Best linear coefficients and start temperatures for this τ (exact linear least squares)."""
    phi = math.exp(-step_s / tau_s)
    k_mat, p0, _dk, _dp0 = _kernel(phi, lay.length)
    z = lay.tout @ k_mat.T  # (S, L+1)
    x_mat = np.einsum("kj,sjq->skq", k_mat, lay.regressors)  # (S, L+1, p)
    # The start estimate sees the segment's first measurement too (``start_mask``).
    target = _project(lay, p0, lay.y - z)
    xp = _project(lay, p0, x_mat)
    t = target[lay.mask]
    a_mat = xp[lay.mask]
    coef, *_ = np.linalg.lstsq(a_mat, t, rcond=None)
    r = t - a_mat @ coef
    return _Solve(tau_s, np.asarray(coef, dtype=np.float64), float(r @ r), np.asarray(r, dtype=np.float64))


def _search_tau(lay: _Layout, step_s: int) -> tuple[_Solve, bool]:
    """Minimise the residual over log τ: coarse grid, then golden section. Flags a boundary optimum."""
    grid = np.geomspace(TAU_MIN_H, TAU_MAX_H, 28) * 3600.0
    rss = np.array([_solve(lay, float(t), step_s).rss for t in grid])
    i = int(np.argmin(rss))
    at_bound = i in (0, len(grid) - 1)
    lo = math.log(grid[max(0, i - 1)])
    hi = math.log(grid[min(len(grid) - 1, i + 1)])

    def f(x: float) -> float:
        return _solve(lay, math.exp(x), step_s).rss

    x = _golden(f, lo, hi, tol=1e-4)
    return _solve(lay, math.exp(x), step_s), at_bound


def _golden(f: Callable[[float], float], a: float, b: float, tol: float) -> float:
    g = (math.sqrt(5.0) - 1.0) / 2.0
    c = b - g * (b - a)
    d = a + g * (b - a)
    fc, fd = f(c), f(d)
    while b - a > tol:
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = f(d)
    return (a + b) / 2.0


def _jacobian(lay: _Layout, sol: _Solve, step_s: int) -> FloatArray:
    """Jacobian of the simulated temperatures w.r.t. (τ [s], linear coefficients), start temps projected out."""
    tau = sol.tau_s
    phi = math.exp(-step_s / tau)
    k_mat, p0, dk_mat, dp0 = _kernel(phi, lay.length)
    dphi_dtau = phi * step_s / tau**2
    # The model's state trajectory with the start temperatures at their optimum.
    z = lay.tout @ k_mat.T
    x_mat = np.einsum("kj,sjq->skq", k_mat, lay.regressors)
    lin = z + x_mat @ sol.coef
    w = lay.start_mask.astype(np.float64)
    pp = p0[None, :] * w
    x0 = (pp * (lay.y - lin)).sum(axis=1) / (pp * p0[None, :]).sum(axis=1)
    inputs = lay.tout + lay.regressors @ sol.coef  # (S, L)
    d_state = (inputs @ dk_mat.T + x0[:, None] * dp0[None, :]) * dphi_dtau  # (S, L+1)
    cols = np.concatenate([d_state[:, :, None], x_mat], axis=2)
    cols = _project(lay, p0, cols)
    return np.asarray(cols[lay.mask], dtype=np.float64)


# -- the public fit -----------------------------------------------------------------------------


def fit(h: History, limits: Limits | None = None) -> Calibration:
    """Fit the house to the history; raises :class:`CalibrationRefused` when the data cannot tell.

    A relay-only history with setpoints is fitted twice, as a fixed heat per mode and as a
    thermostat holding each mode's setpoint; the one with the lower multi-step RMSE wins.
    """
    lim = limits or Limits()
    if not (h.relay_only and h.setpoint_c is not None and h.mode_rank is not None):
        return _fit_linear(h, lim)
    results: list[Calibration] = []
    reasons: list[str] = []
    for attempt in (_fit_linear, _fit_thermostat):
        try:
            results.append(attempt(h, lim))
        except CalibrationRefused as exc:
            if exc.reason not in reasons:
                reasons.append(exc.reason)
    if not results:
        raise CalibrationRefused("; ".join(reasons))
    return min(results, key=lambda c: c.rmse_c)


def _span_days(h: History, lim: Limits) -> float:
    if len(h.outdoor_c) != h.n:
        raise ValueError("indoor_c and outdoor_c must have the same length")
    span_days = h.n * h.step_s / 86400.0
    if span_days < lim.min_days:
        raise CalibrationRefused(f"too short: {span_days:.1f} days of history; need at least {lim.min_days:g} days")
    return span_days


def _solar(h: History) -> FloatArray | None:
    """The GHI series when it carries any sun at all."""
    if h.ghi_w_m2 is None:
        return None
    ghi = np.asarray(h.ghi_w_m2, dtype=np.float64)
    return ghi if bool(np.nanmax(np.nan_to_num(ghi, nan=0.0)) > 1.0) else None


def _prepare(h: History, lim: Limits, cols: dict[str, FloatArray], usable: NDArray[np.bool_],
             span_days: float) -> tuple[_Layout, float, int, float]:
    """Gap and length checks, then the segment layout; returns it with used days, samples, indoor std."""
    for name in cols:
        cols[name] = np.where(usable, np.nan_to_num(cols[name]), 0.0)
    coverage = float(usable.mean()) if h.n else 0.0
    if coverage < lim.min_coverage:
        raise CalibrationRefused(f"too many gaps: only {coverage:.0%} of the {span_days:.1f} days has "
                                 f"complete inputs; need {lim.min_coverage:.0%}")
    lay = _layout(h, cols, usable, lim)
    used_days = float(lay.lengths.sum()) * h.step_s / 86400.0
    if used_days < lim.min_days:
        raise CalibrationRefused(f"too short: {used_days:.1f} days of usable history after removing gaps; "
                                 f"need at least {lim.min_days:g} days")
    samples = int(lay.mask.sum())
    if samples < 10 * (len(cols) + 1):
        raise CalibrationRefused(f"too few indoor readings ({samples}) inside the usable stretches")
    return lay, used_days, samples, float(np.std(lay.y[lay.start_mask]))


def _relay_ranks(h: History, usable: NDArray[np.bool_]) -> IntArray:
    if h.mode_rank is None:
        raise CalibrationRefused("no heat series (heat_w) and no mode series: nothing tells when the "
                                 "heat pump heated; log heat_w, or the mode for a relay-only fit")
    ranks = np.asarray(h.mode_rank)
    if len(np.unique(ranks[usable & (ranks >= 0)])) < 2:
        raise CalibrationRefused("no excitation: the heat pump stayed in one mode the whole time, so its "
                                 "heat cannot be told from the house's losses")
    return ranks


def _fit_linear(h: History, lim: Limits) -> Calibration:
    """Heat series known (or a fixed heat per relay mode): variable projection over τ."""
    span_days = _span_days(h, lim)
    n = h.n
    ghi = _solar(h)
    has_solar = ghi is not None
    relay = h.relay_only
    usable = np.isfinite(np.asarray(h.outdoor_c, dtype=np.float64))
    cols: dict[str, FloatArray] = {}
    if relay:
        ranks = _relay_ranks(h, usable)
        usable &= ranks >= 0
        for m in ALL_MODES:
            onehot = (ranks == m.rank).astype(np.float64)
            if (onehot[usable] > 0).sum() > 0:
                cols[m.value] = onehot
    else:
        assert h.heat_w is not None
        heat = np.asarray(h.heat_w, dtype=np.float64)
        usable &= np.isfinite(heat)
        cols["heat"] = heat
        cols["offset"] = np.ones(n)
    if ghi is not None:
        usable &= np.isfinite(ghi)
        cols["solar"] = ghi
    lay, used_days, samples, indoor_std = _prepare(h, lim, cols, usable, span_days)

    # Excitation: a house held flat by its thermostat while the heat input barely moves says
    # nothing about its capacity.
    if not relay:
        q = cols["heat"][usable]
        q_rel = float(np.std(q) / max(abs(float(np.mean(q))), 1.0))
        if indoor_std < lim.flat_indoor_std_c and q_rel < lim.flat_heat_rel_std:
            raise CalibrationRefused(f"no excitation: indoor temperature flat (std {indoor_std:.3f} K) and heat "
                                     f"constant (std {q_rel:.1%} of its mean); the data cannot separate UA "
                                     "from C; log a period with mode changes (OFF/BOOST)")
        if float(np.std(q)) < 1.0:
            raise CalibrationRefused("no excitation: the heat delivered is constant, so its effect cannot be "
                                     "told from the internal gains")
    if indoor_std < lim.flat_indoor_std_c:
        raise CalibrationRefused(f"no excitation: indoor temperature flat (std {indoor_std:.3f} K); the data "
                                 "cannot identify the time constant")

    sol, at_bound = _search_tau(lay, h.step_s)
    if at_bound:
        raise CalibrationRefused(f"the time constant is not identified: the best fit sits at the search bound "
                                 f"({sol.tau_s / 3600:.0f} h; searched {TAU_MIN_H:g}..{TAU_MAX_H:g} h)")
    jac = _jacobian(lay, sol, h.step_s)
    dof = samples - jac.shape[1] - len(lay.lengths)
    if dof <= 0:
        raise CalibrationRefused("too few readings for the number of parameters")
    s2 = sol.rss / dof
    scale = np.sqrt((jac * jac).sum(axis=0))
    if np.any(scale == 0):
        raise CalibrationRefused("ill-conditioned: an input never changes the indoor temperature")
    j_s = jac / scale
    jtj = j_s.T @ j_s
    cond = float(np.linalg.cond(jtj))
    if not math.isfinite(cond) or cond > lim.max_condition:
        raise CalibrationRefused(f"ill-conditioned: JᵀJ has condition number {cond:.2g} (limit "
                                 f"{lim.max_condition:.0e}); the inputs are too collinear to separate the parameters")
    cov = np.linalg.inv(jtj) / np.outer(scale, scale) * s2
    rmse = math.sqrt(sol.rss / samples)
    theta = np.concatenate([[sol.tau_s], sol.coef])
    names = ("tau", *lay.names)
    tau_e = _delta(theta, cov, lambda t: t[0] / 3600.0)
    notes: list[str] = []
    if not has_solar:
        notes.append("no GHI series: solar gains not fitted (folded into the offset)")
    if relay:
        return _relay_result(lay, theta, cov, names, tau_e, rmse, samples, used_days, h.step_s, cond, lim, notes)

    ib, ic = names.index("heat"), names.index("offset")
    if sol.coef[ib - 1] <= 0:
        raise CalibrationRefused("the fit gives a non-physical heat loss (UA ≤ 0): the heat series does not "
                                 "explain the indoor temperature; check its units (W) and sign")
    ua = _delta(theta, cov, lambda t: 1.0 / t[ib])
    cap = _delta(theta, cov, lambda t: t[0] / t[ib] / J_PER_KWH)
    gains = _delta(theta, cov, lambda t: t[ic] / t[ib])
    aperture = None
    if has_solar:
        isol = names.index("solar")
        aperture = _delta(theta, cov, lambda t: t[isol] / t[ib])
    for label, e in (("time constant", tau_e), ("UA", ua), ("C", cap)):
        if not e.rel_std < lim.max_rel_std:
            raise CalibrationRefused(f"not identifiable: {label} = {e.value:.4g} ± {Z95 * e.rel_std:.0%} (95 %); "
                                     "the history has too little excitation (mode changes, outdoor swings)")
    return Calibration(False, tau_e, ua, cap, aperture, gains, {}, None, rmse, samples, len(lay.lengths),
                       used_days, h.step_s, cond, tuple(notes))


# -- relay-only with a thermostat: the heat pump holds each mode's setpoint -------------------------

NO_SETPOINT_C = -1e9  # a blocked compressor (OFF): stands in for −inf inside the arrays


def _thermostat_sim(lay: _Layout, theta: FloatArray, x0: FloatArray,
                    step_s: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Simulate every segment and the sensitivities of the states to the parameters.

    ``θ = (ln τ, lift_cap, lift_gains[, solar per W/m²])``: lifts in K above outdoor (heat over UA).
    A heating mode runs the compressor at its capacity while the house is below the mode's setpoint
    and holds the setpoint once there; above it the compressor stops and the house coasts back down
    to it. Per slot: ``T' = min(T_on, max(setpoint, T_off))`` with ``T_on``/``T_off`` the exact 1R1C
    updates with and without the compressor. Returns states (S, L+1), their derivatives with
    respect to θ (S, L+1, P) and to the segment's own start temperature (S, L+1).
    """
    n_seg, length = lay.tout.shape
    n_par = len(theta)
    tau = math.exp(float(theta[0]))
    phi = math.exp(-step_s / tau)
    dphi = phi * step_s / tau  # dφ / d ln τ
    lift_cap, lift_g = float(theta[1]), float(theta[2])
    solar = float(theta[3]) if n_par > 3 else 0.0
    on = lay.regressors[:, :, 0]
    setp = lay.regressors[:, :, 1]
    ghi = lay.regressors[:, :, 2] if n_par > 3 else np.zeros_like(on)
    states = np.empty((n_seg, length + 1))
    dstates = np.zeros((n_seg, length + 1, n_par))
    dx = np.empty((n_seg, length + 1))
    t = x0.astype(np.float64, copy=True)
    dt_dth = np.zeros((n_seg, n_par))
    dt_dx = np.ones(n_seg)
    states[:, 0] = t
    dx[:, 0] = 1.0
    for k in range(length):
        base = lay.tout[:, k] + lift_g + solar * ghi[:, k]
        t_on_inf = base + lift_cap * on[:, k]
        t_on = t_on_inf + (t - t_on_inf) * phi
        t_off = base + (t - base) * phi
        hold = np.maximum(setp[:, k], t_off)
        take_on = t_on <= hold
        take_set = ~take_on & (setp[:, k] > t_off)
        # Direct partial derivatives of each branch, then the chain through the start state.
        d_on = np.empty((n_seg, n_par))
        d_off = np.empty((n_seg, n_par))
        d_on[:, 0] = (t - t_on_inf) * dphi
        d_off[:, 0] = (t - base) * dphi
        d_on[:, 1] = on[:, k] * (1.0 - phi)
        d_off[:, 1] = 0.0
        d_on[:, 2] = d_off[:, 2] = 1.0 - phi
        if n_par > 3:
            d_on[:, 3] = d_off[:, 3] = ghi[:, k] * (1.0 - phi)
        d_on += phi * dt_dth
        d_off += phi * dt_dth
        t = np.where(take_on, t_on, hold)
        dt_dth = np.where(take_on[:, None], d_on, np.where(take_set[:, None], 0.0, d_off))
        dt_dx = np.where(take_set & ~take_on, 0.0, phi * dt_dx)
        states[:, k + 1] = t
        dstates[:, k + 1] = dt_dth
        dx[:, k + 1] = dt_dx
    return states, dstates, dx


def _lm(lay: _Layout, theta: FloatArray, x0: FloatArray, step_s: int,
        iterations: int = 60) -> tuple[FloatArray, FloatArray, float, FloatArray]:
    """Levenberg-Marquardt on the multi-step error; returns θ, starts, RSS and the full Jacobian."""
    rows = lay.start_mask
    seg_of_row = np.broadcast_to(np.arange(lay.tout.shape[0])[:, None], rows.shape)[rows]
    n_par = len(theta)
    n_seg = len(x0)

    def evaluate(th: FloatArray, x: FloatArray) -> tuple[float, FloatArray, FloatArray]:
        st, dst, dx = _thermostat_sim(lay, th, x, step_s)
        r = (lay.y - st)[rows]
        jac = np.zeros((len(r), n_par + n_seg))
        jac[:, :n_par] = dst[rows]
        jac[np.arange(len(r)), n_par + seg_of_row] = dx[rows]
        return float(r @ r), r, jac

    rss, r, jac = evaluate(theta, x0)
    lam = 1e-3
    for _ in range(iterations):
        g = jac.T @ r
        h = jac.T @ jac
        diag = np.maximum(np.diag(h), 1e-12)
        improved = False
        for _ in range(10):
            try:
                step = np.linalg.solve(h + lam * np.diag(diag), g)
            except np.linalg.LinAlgError:
                lam *= 10.0
                continue
            th_new = theta + step[:n_par]
            th_new[0] = min(max(th_new[0], math.log(TAU_MIN_H * 3600)), math.log(TAU_MAX_H * 3600))
            x_new = x0 + step[n_par:]
            rss_new, r_new, jac_new = evaluate(th_new, x_new)
            if rss_new < rss:
                converged = rss - rss_new < 1e-10 * max(rss, 1e-12)
                theta, x0, rss, r, jac = th_new, x_new, rss_new, r_new, jac_new
                lam = max(lam / 3.0, 1e-9)
                improved = True
                break
            lam *= 10.0
        if not improved or converged:
            break
    return theta, x0, rss, jac


def _fit_thermostat(h: History, lim: Limits) -> Calibration:
    """Relay-only history of a heat pump that holds its setpoints: fit τ, the compressor's heating
    rate and the internal gains' rate by Levenberg-Marquardt on the multi-step error."""
    span_days = _span_days(h, lim)
    assert h.setpoint_c is not None
    usable = np.isfinite(np.asarray(h.outdoor_c, dtype=np.float64))
    ranks = _relay_ranks(h, usable)
    usable &= ranks >= 0
    idx = np.arange(h.n)
    setp = np.asarray(h.setpoint_c, dtype=np.float64)[np.clip(ranks, 0, 3), idx]
    on = np.isfinite(setp).astype(np.float64)
    setp = np.where(np.isfinite(setp), setp, NO_SETPOINT_C)
    cols: dict[str, FloatArray] = {"on": on, "set": setp}
    ghi = _solar(h)
    if ghi is not None:
        usable &= np.isfinite(ghi)
        cols["solar"] = ghi
    lay, used_days, samples, indoor_std = _prepare(h, lim, cols, usable, span_days)
    if indoor_std < lim.flat_indoor_std_c:
        raise CalibrationRefused(f"no excitation: indoor temperature flat (std {indoor_std:.3f} K); the data "
                                 "cannot identify the time constant")
    if float(on[usable].min()) == float(on[usable].max()):
        raise CalibrationRefused("no excitation: the compressor was never blocked (or never allowed), so "
                                 "the house's own cooling cannot be seen")
    n_par = 4 if ghi is not None else 3
    first = np.where(lay.start_mask[:, 0], lay.y[:, 0], np.nan)
    fallback = np.array([lay.y[s][lay.start_mask[s]][0] for s in range(len(first))])
    x_init = np.where(np.isfinite(first), first, fallback)
    best: tuple[FloatArray, FloatArray, float, FloatArray] | None = None
    for tau_h in (8.0, 30.0, 120.0):
        th0 = np.array([math.log(tau_h * 3600.0), 40.0, 2.0, 0.0][:n_par])
        cand = _lm(lay, th0, x_init.copy(), h.step_s)
        if best is None or cand[2] < best[2]:
            best = cand
    assert best is not None
    theta, _x, rss, jac = best
    tau_h = math.exp(float(theta[0])) / 3600.0
    if not (TAU_MIN_H * 1.01 < tau_h < TAU_MAX_H * 0.99):
        raise CalibrationRefused(f"the time constant is not identified: the best fit sits at the search bound "
                                 f"({tau_h:.0f} h)")
    if theta[1] <= 0:
        raise CalibrationRefused("the fit gives a heat pump that does not heat: the mode series does not "
                                 "explain the indoor temperature")
    dof = int(lay.start_mask.sum()) - jac.shape[1]
    if dof <= 0:
        raise CalibrationRefused("too few readings for the number of parameters")
    scale = np.sqrt((jac * jac).sum(axis=0))
    if np.any(scale == 0):
        raise CalibrationRefused("ill-conditioned: a parameter never changes the simulated temperature "
                                 "(the compressor never ran below its setpoint?)")
    j_s = jac / scale
    jtj = j_s.T @ j_s
    cond = float(np.linalg.cond(jtj))
    if not math.isfinite(cond) or cond > lim.max_condition:
        raise CalibrationRefused(f"ill-conditioned: JᵀJ has condition number {cond:.2g} (limit "
                                 f"{lim.max_condition:.0e}); the history cannot separate the parameters")
    cov_all = np.linalg.inv(jtj) / np.outer(scale, scale) * (rss / dof)
    cov = cov_all[:n_par, :n_par]
    # In τ (hours) instead of ln τ for the delta method.
    th = np.concatenate([[math.exp(float(theta[0]))], theta[1:]])
    jac_log = np.diag([th[0], *([1.0] * (n_par - 1))])
    cov = jac_log @ cov @ jac_log
    tau_e = _delta(th, cov, lambda t: float(t[0] / 3600.0))
    if not tau_e.rel_std < lim.max_rel_std:
        raise CalibrationRefused(f"not identifiable: time constant = {tau_e.value:.4g} h ± "
                                 f"{Z95 * tau_e.rel_std:.0%} (95 %); the history has too little excitation")
    cap = _delta(th, cov, lambda t: float((t[1] + t[2]) / (t[0] / 3600.0)))
    gains = _delta(th, cov, _ratio_per_hour(2))
    present = {int(r) for r in np.unique(ranks[usable])}
    rates = {m.value: (cap if m is not Mode.OFF and m.rank in present and math.isfinite(
        float(np.asarray(h.setpoint_c)[m.rank].max())) else gains) for m in ALL_MODES if m.rank in present}
    solar = _delta(th, cov, _ratio_per_hour(3)) if n_par > 3 else None
    residual = (lay.y - _thermostat_sim(lay, theta, best[1], h.step_s)[0])[lay.mask]
    rmse = math.sqrt(float(residual @ residual) / max(1, len(residual)))
    notes = ["relay-only history (no heat series): UA and C cannot be told apart; fitted the time constant "
             "and the heating rate (K/h, internal gains included) of a heat pump that holds each mode's "
             "configured setpoint; every figure resting on them is a model estimate"]
    if ghi is None:
        notes.insert(0, "no GHI series: solar gains not fitted (folded into the offset)")
    return Calibration(True, tau_e, None, None, None, None, rates, solar, rmse, samples, len(lay.lengths), used_days,
                       h.step_s, cond, tuple(notes), relay_model="thermostat")


def _relay_result(lay: _Layout, theta: FloatArray, cov: FloatArray, names: tuple[str, ...], tau_e: Estimate,
                  rmse: float, samples: int, days: float, step_s: int, cond: float, lim: Limits,
                  notes: list[str]) -> Calibration:
    if not tau_e.rel_std < lim.max_rel_std:
        raise CalibrationRefused(f"not identifiable: time constant = {tau_e.value:.4g} h ± "
                                 f"{Z95 * tau_e.rel_std:.0%} (95 %); the history has too little excitation")
    rates: dict[str, Estimate] = {}
    # Each mode's coefficient is its equilibrium lift (K above outdoor); over τ it is a rate in K/h.
    for m in ALL_MODES:
        if m.value in names:
            i = names.index(m.value)
            rates[m.value] = _delta(theta, cov, _ratio_per_hour(i))
    solar = None
    if "solar" in names:
        isol = names.index("solar")
        solar = _delta(theta, cov, _ratio_per_hour(isol))
    notes = [*notes, "relay-only history (no heat series): UA and C cannot be told apart; fitted the time "
             "constant and a heating rate per mode (K/h, internal gains included); every figure resting "
             "on them is a model estimate"]
    return Calibration(True, tau_e, None, None, None, None, rates, solar, rmse, samples, len(lay.lengths), days,
                       step_s, cond, tuple(notes), relay_model="fixed heat per mode")


def _ratio_per_hour(i: int) -> Callable[[FloatArray], float]:
    """θ[i] / τ in hours: an equilibrium lift (K) as a heating rate (K/h)."""
    return lambda t: float(t[i] / (t[0] / 3600.0))


def _delta(theta: FloatArray, cov: FloatArray, g: Callable[[FloatArray], float]) -> Estimate:
    """Value and standard error of ``g(θ)`` by the delta method (central differences)."""
    val = g(theta)
    grad = np.zeros(len(theta))
    for i in range(len(theta)):
        h = 1e-6 * max(abs(float(theta[i])), 1e-12)
        tp = theta.copy()
        tm = theta.copy()
        tp[i] += h
        tm[i] -= h
        grad[i] = (g(tp) - g(tm)) / (2 * h)
    var = float(grad @ cov @ grad)
    return Estimate(float(val), math.sqrt(max(var, 0.0)))


# -- scoring given parameters (old vs new fit on the same data) ---------------------------------


def score(h: History, ua_w_per_k: float, capacitance_kwh_per_k: float, solar_aperture_m2: float = 0.0,
          internal_gains_w: float | None = None, limits: Limits | None = None) -> float:
    """Multi-step RMSE (K) of given building parameters on this history.

    Segment start temperatures are estimated as in :func:`fit`; ``internal_gains_w`` ``None`` fits
    it too (a stored calibration may carry none). Used to compare an old fit with a new one on the
    same recent data.
    """
    lim = limits or Limits()
    if h.relay_only:
        raise ValueError("score needs a heat series; relay-only fits are compared by their own RMSE")
    assert h.heat_w is not None
    heat = np.asarray(h.heat_w, dtype=np.float64)
    outdoor = np.asarray(h.outdoor_c, dtype=np.float64)
    ghi = np.zeros(h.n) if h.ghi_w_m2 is None else np.nan_to_num(np.asarray(h.ghi_w_m2, dtype=np.float64))
    usable = np.isfinite(outdoor) & np.isfinite(heat)
    # Known heat flows become one input; only the offset (if unknown) stays linear.
    known = heat + solar_aperture_m2 * ghi + (internal_gains_w or 0.0)
    cols: dict[str, FloatArray] = {"known": np.where(usable, known, 0.0)}
    if internal_gains_w is None:
        cols["offset"] = np.ones(h.n)
    lay = _layout(h, cols, usable, lim)
    tau_s = capacitance_kwh_per_k * J_PER_KWH / ua_w_per_k
    phi = math.exp(-h.step_s / tau_s)
    k_mat, p0, _dk, _dp0 = _kernel(phi, lay.length)
    # b = 1/UA is fixed: the known heat flows move into the target; only the offset stays linear.
    z = lay.tout @ k_mat.T + (lay.regressors[:, :, 0] @ k_mat.T) / ua_w_per_k
    r = _project(lay, p0, lay.y - z)[lay.mask]
    if internal_gains_w is None:
        a_mat = _project(lay, p0, np.einsum("kj,sjq->skq", k_mat, lay.regressors[:, :, 1:]))[lay.mask]
        coef, *_ = np.linalg.lstsq(a_mat, r, rcond=None)
        r = r - a_mat @ coef
    return math.sqrt(float(r @ r) / max(1, len(r)))


def _r(x: float, digits: int) -> float:
    return round(float(x), digits) if math.isfinite(x) else math.nan
