"""Per-scan choice of the regularisation weight: Morozov's discrepancy principle with the misfit
level measured in the dipole kernel's zero cone.

Noise level. In the model ``f = D * chi + n`` the field has no energy where the dipole kernel
vanishes (``|D(k)| < 0.05``, the "magic-angle" cone): there the spectrum of the measured local field
is noise plus whatever the model cannot explain (residual background field, anisotropy, errors of
unwrapping). By Parseval, white noise of standard deviation ``sigma`` in ``n`` mask voxels has
``E |F(k)|^2 = n sigma^2`` at every frequency, so::

    sigma^2 = mean over the cone of |F(k)|^2 / n.

The lowest frequencies (below :data:`~napari_qsm_ms.qsm.defaults.DISCREPANCY_KMIN_PER_MM`) are left
out: there the mask's own spectrum leaks into the cone.

Weight. Morozov's discrepancy principle (Morozov 1966; for QSM e.g. Kressler B. et al., IEEE TMI
2010, and Liu J. et al., NeuroImage 2012, who chose MEDI's lambda so that the data misfit matched
the noise): the weight is the one for which the root-mean-square data misfit in the mask equals
``sigma``. It is found *during* the solve, by continuation: the solver updates its weight every few
iterations with a secant step in ``log(weight)`` on the measured misfit
(:class:`DiscrepancyTracker`), warm-started from the current iterate, so the choice costs a few
extra iterations, not extra solves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import defaults
from ._fft import rfftn
from .dipole import frequency_grids


def cone_noise_level(
    field_padded: np.ndarray,
    d: np.ndarray,
    voxel_size_mm,
    n_voxels: int,
    *,
    cone: float = defaults.DISCREPANCY_CONE,
    kmin_per_mm: float = defaults.DISCREPANCY_KMIN_PER_MM,
) -> float:
    """Standard deviation of the field's misfit (noise + model error) per voxel, from the energy
    of ``field_padded`` where ``|D| < cone`` and ``|k| > kmin_per_mm``.

    Parameters
    ----------
    field_padded : ndarray, float32
        The (weighted) field on the padded grid, zero outside the mask.
    d : ndarray
        Dipole kernel on the rfft half-grid of that grid.
    voxel_size_mm : sequence of 3 float
    n_voxels : int
        Voxels of the mask (where the field is non-zero).

    Returns
    -------
    float
        sigma, in the field's units (0 when nothing is in the cone).
    """
    k0, k1, k2 = frequency_grids(field_padded.shape, voxel_size_mm, rfft=True)
    in_cone = (np.abs(d) < cone) & (k0 * k0 + k1 * k1 + k2 * k2 > kmin_per_mm**2)
    if not in_cone.any() or n_voxels <= 0:
        return 0.0
    spectrum = rfftn(field_padded)
    energy = np.abs(spectrum[in_cone]).astype(np.float64) ** 2
    return float(math.sqrt(energy.mean() / n_voxels))


@dataclass
class DiscrepancyTracker:
    """Secant search of ``log(weight)`` for ``misfit(weight) = target`` along a warm-started solve.

    ``increasing``: whether the misfit grows with the weight (a regularisation weight such as
    TV's) or shrinks (a data weight such as MEDI's). Steps are limited to a factor ``max_step``
    and the weight to ``bounds`` (a factor around the start) so that a misfit that hardly depends
    on the weight cannot drive it away.
    """

    weight: float
    target: float
    increasing: bool
    slope: float = 0.3
    max_step: float = 3.0
    bounds: float = 100.0
    tolerance: float = defaults.DISCREPANCY_TOLERANCE
    floor_slope: float = 0.05
    ceiling: float = math.inf
    history: list = field(default_factory=list)
    frozen: bool = False
    floor_hits: int = 0

    def __post_init__(self):
        self.start = float(self.weight)

    @property
    def _sign(self) -> float:
        """+1 when the misfit grows with the weight (``increasing``: a regularisation weight, TV's),
        -1 when it falls (a data weight, MEDI's)."""
        return 1.0 if self.increasing else -1.0

    def update(self, misfit: float) -> float:
        """Record the misfit at the current weight; return the next weight.

        Freezes (returns the same weight from then on) once two consecutive misfits are within
        ``tolerance`` of the target, or when the last two steps towards less regularisation each
        changed ``log(misfit)`` by less than ``floor_slope`` times the step in ``log(weight)``: the
        misfit has reached a floor the weight cannot lower (model error). (Once is not enough: the
        misfit of a solve that has not settled lags behind the weight.) The weight kept is then the
        knee of the misfit curve, :meth:`_knee`: where its log-log slope falls to ``floor_slope``.
        """
        if self.frozen or not (misfit > 0 and self.target > 0):
            return self.weight
        self.history.append((math.log(self.weight), math.log(misfit)))
        if self.relative_gap < self.tolerance:
            # the first misfits of a warm-started solve are not yet settled: freeze only when two
            # consecutive ones are on target
            if len(self.history) >= 2 and abs(math.exp(self.history[-2][1]) / self.target - 1.0) < self.tolerance:
                self.frozen = True
            return self.weight
        sign = self._sign
        slope = sign * self.slope
        if misfit >= 0.9 * self.ceiling > self.target:
            # the solution explains next to nothing of the data (over-regularised to ~0): the misfit
            # does not depend on the weight there, so neither a secant nor a floor means anything
            return self._step(-sign * math.log(self.max_step))
        if len(self.history) >= 2:
            (x0, y0), (x1, y1) = self.history[-2], self.history[-1]
            if abs(x1 - x0) > 1e-3:
                measured = (y1 - y0) / (x1 - x0)
                less_regularised = (x1 - x0) * sign < 0
                if less_regularised and measured * sign < self.floor_slope:
                    # a floor, unless the solve had not settled: believed when seen twice in a row
                    self.floor_hits += 1
                    if self.floor_hits >= 2 or self.weight in (self.start / self.bounds, self.start * self.bounds):
                        self.weight = self._knee(self.floor_hits)
                        self.frozen = True
                        return self.weight
                else:
                    self.floor_hits = 0
                slope = sign * self._secant_slope(measured * sign)
        return self._step((math.log(self.target) - self.history[-1][1]) / slope)

    def _secant_slope(self, measured: float) -> float:
        """The log-log slope a secant step divides by, from the ``measured`` one (its expected sign
        taken out): the measured slope from ``floor_slope`` up; the prior ``slope`` where it is zero
        or has the wrong sign (a solve that lags behind the weight); in between, rising linearly
        from ``floor_slope`` to ``slope`` as the measured slope falls to zero. Continuous, so that
        the next weight moves continuously with the misfits (trusting the secant only above
        ``floor_slope`` made a slope of 0.0526 a step of x1/3 in the weight and one of 0.049 a step
        of x1/1.5, on the 0.94 mm phantom)."""
        if measured >= self.floor_slope:
            return measured
        if measured <= 0:
            return self.slope
        return self.floor_slope + (self.slope - self.floor_slope) * (1.0 - measured / self.floor_slope)

    def _knee(self, flat_steps: int) -> float:
        """The weight where the misfit curve's log-log slope falls to ``floor_slope``, once the
        last ``flat_steps`` steps were flat.

        The slope of each step is placed at its middle (in ``log(weight)``) and interpolated
        linearly between the last steep step and the first flat one, so the weight moves
        continuously with the misfits: a step whose slope is just above or just below
        ``floor_slope`` gives nearly the same weight (reverting to a measured weight instead made a
        slope of 0.0519, just above it, and one just below it a factor of 3 in the weight). Without
        a steep step just before the flat ones, in the same direction, it is the weight before the
        flat steps.
        """
        h = self.history
        i = len(h) - 1 - flat_steps  # the weight before the flat steps
        before = float(math.exp(h[i][0]))
        if i < 1:
            return before
        (xa, ya), (xb, yb), (xc, yc) = h[i - 1], h[i], h[i + 1]
        if abs(xb - xa) <= 1e-3 or abs(xc - xb) <= 1e-3 or (xb - xa) * (xc - xb) <= 0:
            return before
        sign = self._sign
        steep, flat = sign * (yb - ya) / (xb - xa), sign * (yc - yb) / (xc - xb)
        if not steep > self.floor_slope > flat:
            return before
        t = (steep - self.floor_slope) / (steep - flat)
        return float(math.exp((xa + xb) / 2 + t * ((xc - xa) / 2)))

    def _step(self, step: float) -> float:
        """Move ``log(weight)`` by ``step``, limited to ``max_step`` and to the bounds."""
        step = max(-math.log(self.max_step), min(math.log(self.max_step), step))
        lo, hi = self.start / self.bounds, self.start * self.bounds
        self.weight = float(min(hi, max(lo, self.weight * math.exp(step))))
        return self.weight

    def path(self) -> list:
        """``[(weight, misfit), ...]`` of every update, in order."""
        return [(math.exp(a), math.exp(b)) for a, b in self.history]

    @property
    def relative_gap(self) -> float:
        """``|misfit / target - 1|`` at the last recorded weight."""
        if not self.history:
            return float("inf")
        return abs(math.exp(self.history[-1][1]) / self.target - 1.0)


class LambdaSearch:
    """The weight of an iterative solver, fixed or chosen by the discrepancy principle as it runs.

    What :func:`~napari_qsm_ms.qsm.inversion.medi_l1` and
    :func:`~napari_qsm_ms.qsm.inversion.tv_admm` call, so that the choice lives here::

        search = LambdaSearch(lam, start=..., increasing=..., max_updates=...)
        search.set_target(sigma)           # only needed when search.auto
        lam = search.after_check(misfit)   # at each check point while search.adapting
        info fields: search.record(scale)

    With a number, the weight stays fixed. With ``"auto"`` or ``"auto-noise"`` (the caller measures
    the target accordingly: the cone's misfit level, or the magnitude's noise) a :class:`DiscrepancyTracker` starts at
    ``start`` and takes at most ``max_updates`` secant steps; after that the weight is frozen, so
    the cost of the choice is bounded (a fixed-weight solve plus the steps the last weight needs
    to settle). Whether a step was clipped by the search's bounds is recorded
    (:attr:`at_bound`): then the bound, not the discrepancy, chose the weight.
    """

    def __init__(self, lam, *, start: float, increasing: bool, max_updates: int,
                 bounds: float = defaults.DISCREPANCY_BOUNDS):
        self.auto = lam in defaults.AUTO_RULES
        self.rule = lam if self.auto else "fixed"
        self.max_updates = int(max_updates)
        self.tracker = None
        self.weight = float(start if self.auto else lam)
        self.at_bound = ""
        if self.auto:
            self.tracker = DiscrepancyTracker(self.weight, 0.0, increasing=increasing, bounds=bounds)

    def set_target(self, sigma: float, data_rms: float = math.inf) -> None:
        """The misfit the weight must reach (the noise level) and the rms of the data (the misfit of
        chi = 0), in the solver's units."""
        if self.tracker is not None:
            self.tracker.target = float(sigma)
            self.tracker.ceiling = float(data_rms)

    @property
    def adapting(self) -> bool:
        """Whether the weight may still change."""
        return self.tracker is not None and not self.tracker.frozen

    @property
    def settled(self) -> bool:
        """A fixed weight, or an automatic one that no longer changes."""
        return not self.adapting

    def after_check(self, misfit: float) -> float:
        """Record the misfit measured with the current weight; return the weight for what follows."""
        t = self.tracker
        if t is None or t.frozen:
            return self.weight
        wanted = t.update(misfit)
        lo, hi = t.start / t.bounds, t.start * t.bounds
        if t.frozen and lo * (1 + 1e-9) < wanted < hi * (1 - 1e-9):
            self.at_bound = ""  # the rule itself settled (on target, or back from a misfit floor) inside the bounds
        elif not t.frozen and wanted <= lo * (1 + 1e-9):
            self.at_bound = "lower"
        elif not t.frozen and wanted >= hi * (1 - 1e-9):
            self.at_bound = "upper"
        elif not t.frozen:
            self.at_bound = ""
        self.weight = wanted
        if len(t.history) >= self.max_updates:
            t.frozen = True
        return self.weight

    def choice(self) -> str:
        """How the weight was chosen, in words (for the provenance record)."""
        if self.tracker is None:
            return "fixed"
        level = "magnitude noise" if self.rule == defaults.AUTO_NOISE else "cone noise"
        if self.at_bound:
            return f"discrepancy ({level}), stopped at the search's {self.at_bound} bound"
        return f"discrepancy ({level})"

    def record(self, scale: float = 1.0) -> dict:
        """``InversionInfo`` fields: the choice, the target and the path (misfits times ``scale``)."""
        if self.tracker is None:
            return dict(lambda_choice="fixed", target_rms_ppm=float("nan"), lambda_path=[], lambda_at_bound="")
        return dict(lambda_choice=self.choice(), target_rms_ppm=self.tracker.target * scale,
                    lambda_path=[(a, b * scale) for a, b in self.tracker.path()], lambda_at_bound=self.at_bound)


def lambda_warnings(parameters: dict) -> list:
    """One line per automatic weight that the search's bound (not the discrepancy) decided."""
    out = []
    advice = {"medi": "consider --lambda auto-noise (the magnitude's noise; docs/qsm.md) or a fixed --lambda",
              "tv": "consider a fixed --tv-lambda"}
    for prefix, name in (("medi", "MEDI"), ("tv", "TV")):
        side = parameters.get(f"{prefix}_lambda_at_bound")
        if side:
            if "magnitude noise" in str(parameters.get(f"{prefix}_lambda_choice", "")):
                advice[prefix] = "consider a fixed --lambda"
            out.append(f"{name} lambda {parameters.get(f'{prefix}_lam'):.4g} stopped at the automatic search's "
                       f"{side} bound (x{defaults.DISCREPANCY_BOUNDS:g} around its start): the misfit did not reach "
                       f"the noise level there; {advice[prefix]}")
    return out
