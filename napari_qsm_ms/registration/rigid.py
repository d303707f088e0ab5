"""Rigid (6 degrees of freedom) mutual-information registration of a series onto the T2* image.

Both images are placed in scanner world space by their affines (series of one session share it),
so the identity world transform is the natural start; the optimiser then corrects head motion
between the series. Mattes mutual information copes with the different contrasts (T1-weighted
MPRAGE or FLAIR against T2*-weighted GRE magnitude); a coarse-to-fine pyramid avoids local optima.
The paper used FSL FLIRT with a mutual-information cost; this is the SimpleITK (ITK v4) equivalent.

Transform convention: the result maps a world point of the fixed (T2*) image to the world point
of the moving series holding the same anatomy (ITK's "fixed to moving" direction, the one used to
resample the series onto the T2* grid). Matrices are 4x4 homogeneous, RAS+ world, millimetres.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import SimpleITK as sitk

from ..errors import CancelledError, ParameterError, QSMMSError
from ..io.nifti import Volume
from ..progress import ProgressCallback, report
from .conversion import itk_transform_from_ras, ras_from_itk_transform, sitk_image_from_volume

Initializer = Literal["scanner", "moments", "geometry"]

#: Default sanity threshold on the final Mattes mutual information (nats). Aligned head images of
#: different contrast give 0.3-0.8; unrelated images, noise or a head against an empty field stay
#: below about 0.05.
DEFAULT_MIN_MI = 0.1
#: Default minimum fraction of the fixed image's foreground that must fall inside the moving field
#: of view, before (``/ 4``) and after registration.
DEFAULT_MIN_OVERLAP = 0.5


class RegistrationError(QSMMSError):
    """A registration that cannot be trusted (bad input, no overlap, or a failed sanity check)."""


@dataclass(frozen=True)
class RigidParameters:
    """Settings of :func:`register_rigid` (all recorded in the transform's JSON sidecar).

    Attributes
    ----------
    initializer : {'scanner', 'moments', 'geometry'}
        'scanner' starts from the identity world transform (the scanner affines; right for series
        of one session). 'moments' aligns intensity centres of mass, 'geometry' the field-of-view
        centres (only for images whose fields of view cover the same part of the head).
    histogram_bins : int
        Mattes mutual information histogram bins.
    sampling_fraction : float
        Fraction (0-1] of fixed voxels sampled at random for the metric at each level ...
    max_samples : int
        ... but at most this many voxels per level (keeps large grids fast).
    working_voxel_mm : float
        Images with voxels finer than this are first block-averaged by an integer factor per axis
        (e.g. 0.47 x 0.47 x 1 mm -> 1.41 x 1.41 x 1 mm, 0.8 mm -> 1.6 mm); the pyramid starts from there. Saves time on
        high-resolution grids without losing sub-millimetre accuracy. 0 disables it.
    shrink_factors : tuple of int
        Pyramid down-sampling per level, coarse to fine.
    smoothing_sigmas_mm : tuple of float
        Gaussian smoothing (mm) per level.
    max_iterations : int
        Optimiser iterations per level at most.
    learning_rate_mm : float
        Initial optimiser step (mm of physical shift; rotations scaled to match).
    relaxation : float
        Step reduction factor (0-1) each time the gradient direction reverses; closer to 1 is
        slower and more robust to metric noise.
    rotation_radius_mm : float
        Optimiser scaling of the rotations: a rotation of 1 rad is weighted like a translation of
        this many mm (parameter scales ``radius**2`` for the angles, 1 for the shifts). ITK's
        automatic physical-shift scales use the field-of-view corners (~100 mm), which makes
        rotations creep at the coarse level; 20 mm converges 3-4 times faster with the same result.
    min_step_mm : float
        Convergence: stop a level when the step falls below this (mm).
    min_mutual_information : float
        Refuse results whose final mutual information (nats) is below this.
    min_overlap : float
        Refuse results where less than this fraction of the fixed foreground lies in the moving
        field of view (before registration the bar is a quarter of it).
    seed : int
        Random sampling seed (results are reproducible).
    threads : int or None
        SimpleITK threads; ``None`` uses every core available to the process.
    """

    initializer: Initializer = "scanner"
    histogram_bins: int = 32
    sampling_fraction: float = 0.5
    max_samples: int = 50_000
    working_voxel_mm: float = 1.6
    shrink_factors: tuple[int, ...] = (4, 2, 1)
    smoothing_sigmas_mm: tuple[float, ...] = (2.0, 1.0, 0.0)
    max_iterations: int = 200
    learning_rate_mm: float = 1.0
    relaxation: float = 0.8
    rotation_radius_mm: float = 20.0
    min_step_mm: float = 1e-3
    min_mutual_information: float = DEFAULT_MIN_MI
    min_overlap: float = DEFAULT_MIN_OVERLAP
    seed: int = 1
    threads: int | None = None

    def check(self) -> None:
        """Raise :class:`ParameterError` for unusable values."""
        if self.initializer not in ("scanner", "moments", "geometry"):
            raise ParameterError(f"initializer must be scanner, moments or geometry, not {self.initializer!r}")
        if not 8 <= self.histogram_bins <= 256:
            raise ParameterError(f"histogram_bins must be 8-256, not {self.histogram_bins}")
        if self.max_samples < 1000:
            raise ParameterError(f"max_samples must be at least 1000, not {self.max_samples}")
        if self.working_voxel_mm < 0:
            raise ParameterError(f"working_voxel_mm must be >= 0, not {self.working_voxel_mm}")
        if not 0 < self.sampling_fraction <= 1:
            raise ParameterError(f"sampling_fraction must be in (0, 1], not {self.sampling_fraction}")
        if len(self.shrink_factors) != len(self.smoothing_sigmas_mm) or not self.shrink_factors:
            raise ParameterError("shrink_factors and smoothing_sigmas_mm need one value per level each")
        if any(int(s) < 1 for s in self.shrink_factors) or any(s < 0 for s in self.smoothing_sigmas_mm):
            raise ParameterError("shrink factors must be >= 1 and smoothing sigmas >= 0 mm")
        if self.max_iterations < 1 or self.learning_rate_mm <= 0 or self.min_step_mm <= 0:
            raise ParameterError("max_iterations, learning_rate_mm and min_step_mm must be positive")
        if self.rotation_radius_mm <= 0:
            raise ParameterError(f"rotation_radius_mm must be positive, not {self.rotation_radius_mm}")
        if not 0 < self.relaxation < 1:
            raise ParameterError(f"relaxation must be in (0, 1), not {self.relaxation}")
        if not 0 <= self.min_overlap <= 1:
            raise ParameterError(f"min_overlap must be in [0, 1], not {self.min_overlap}")
        if self.threads is not None and self.threads < 1:
            raise ParameterError(f"threads must be >= 1, not {self.threads}")


@dataclass
class RigidResult:
    """Outcome of :func:`register_rigid`.

    Attributes
    ----------
    matrix_ras : ndarray, shape (4, 4)
        Fixed-world to moving-world rigid transform (RAS+, mm); resampling the moving image with it
        puts it onto the fixed grid.
    transform : SimpleITK.Euler3DTransform
        The same transform for ITK (LPS+), centred on the fixed image's foreground centroid.
    mutual_information : float
        Final Mattes mutual information (nats, full resolution; higher is better).
    initial_mutual_information : float
        The same at the starting transform.
    overlap : float
        Fraction of the fixed foreground inside the moving field of view after registration.
    iterations : list of int
        Optimiser iterations per pyramid level.
    stop_condition : str
        The optimiser's stop reason (last level).
    correction_mm : float
        Largest displacement the correction applies over the fixed foreground (mm), relative to
        the scanner alignment.
    correction_deg : float
        Rotation angle of the correction (degrees).
    seconds : float
        Wall time.
    parameters : RigidParameters
    notes : list of str
    """

    matrix_ras: np.ndarray
    transform: sitk.Euler3DTransform
    mutual_information: float
    initial_mutual_information: float
    overlap: float
    iterations: list[int]
    stop_condition: str
    correction_mm: float
    correction_deg: float
    seconds: float
    parameters: RigidParameters
    notes: list[str] = field(default_factory=list)

    @property
    def matrix_ras_moving_to_fixed(self) -> np.ndarray:
        """Inverse transform: moves the series' world points onto the T2* world (RAS+, mm)."""
        return np.linalg.inv(self.matrix_ras)

    def summary(self) -> str:
        """One line for logs and the command line."""
        return (
            f"MI {self.mutual_information:.3f} (start {self.initial_mutual_information:.3f}), "
            f"correction {self.correction_mm:.2f} mm / {self.correction_deg:.2f} deg, "
            f"overlap {100 * self.overlap:.0f}%, iterations {'+'.join(map(str, self.iterations))}, "
            f"{self.seconds:.1f} s"
        )


def available_cores() -> int:
    """Cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def rotation_angle_deg(matrix: np.ndarray) -> float:
    """Rotation angle (degrees) of the rotation part of a rigid 3x3 or 4x4 matrix."""
    r = np.asarray(matrix, dtype=float)[:3, :3]
    return float(np.degrees(np.arccos(np.clip((np.trace(r) - 1.0) / 2.0, -1.0, 1.0))))


def max_displacement_mm(matrix_a: np.ndarray, matrix_b: np.ndarray, points_ras: np.ndarray) -> float:
    """Largest distance (mm) between where two 4x4 transforms send the given world points."""
    p = np.asarray(points_ras, dtype=float).reshape(-1, 3)
    a = p @ np.asarray(matrix_a)[:3, :3].T + np.asarray(matrix_a)[:3, 3]
    b = p @ np.asarray(matrix_b)[:3, :3].T + np.asarray(matrix_b)[:3, 3]
    return float(np.sqrt(((a - b) ** 2).sum(axis=1)).max()) if len(p) else 0.0


def check_registrable(volume: Volume, role: str) -> None:
    """Refuse images that cannot be registered: not 3-D, too small, empty, constant or non-finite."""
    data = np.asarray(volume.data)
    if data.ndim != 3:
        raise RegistrationError(
            f"{volume.name}: {role} image is {data.ndim}-D with shape {data.shape}, expected 3-D"
        )
    if min(data.shape) < 4:
        raise RegistrationError(f"{volume.name}: {role} image shape {data.shape} is too small to register")
    if not np.isfinite(data).all():
        raise RegistrationError(f"{volume.name}: {role} image contains NaN or infinite values")
    lo, hi = float(np.min(data)), float(np.max(data))
    if hi == lo:
        what = "empty (all zero)" if hi == 0 else f"constant (every voxel {hi:g})"
        raise RegistrationError(f"{volume.name}: {role} image is {what}: nothing to register")


def foreground_points(volume: Volume, *, max_points: int = 200_000, seed: int = 0) -> np.ndarray:
    """World points (RAS+, mm) of voxels above an Otsu threshold (the head), subsampled."""
    data = np.asarray(volume.data, dtype=np.float32)
    finite = data[np.isfinite(data)]
    sample = finite if finite.size <= 1_000_000 else finite[:: finite.size // 1_000_000 + 1]
    threshold = _otsu(sample)
    idx = np.argwhere(data > threshold).astype(float)
    if len(idx) > max_points:
        idx = idx[np.random.default_rng(seed).choice(len(idx), max_points, replace=False)]
    a = np.asarray(volume.affine, dtype=float)
    return idx @ a[:3, :3].T + a[:3, 3]


def _otsu(values: np.ndarray, bins: int = 256) -> float:
    hist, edges = np.histogram(values, bins=bins)
    centers = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centers)
    mu0 = m0 / np.maximum(w0, 1)
    mu1 = (m0[-1] - m0) / np.maximum(w1, 1)
    between = w0 * w1 * (mu0 - mu1) ** 2
    return float(centers[int(np.argmax(between[:-1]))])


def overlap_fraction(points_fixed_ras: np.ndarray, matrix_ras: np.ndarray, moving: Volume) -> float:
    """Fraction of fixed world points that ``matrix_ras`` sends inside the moving field of view."""
    if len(points_fixed_ras) == 0:
        return 0.0
    m = np.asarray(matrix_ras, dtype=float)
    pts = points_fixed_ras @ m[:3, :3].T + m[:3, 3]
    inv = np.linalg.inv(np.asarray(moving.affine, dtype=float))
    vox = pts @ inv[:3, :3].T + inv[:3, 3]
    shape = np.asarray(moving.shape[:3], dtype=float)
    inside = np.all((vox >= -0.5) & (vox <= shape - 0.5), axis=1)
    return float(inside.mean())


def _initial_matrix(params: RigidParameters, fixed_img, moving_img, fixed: Volume, moving: Volume,
                    fixed_points: np.ndarray) -> np.ndarray:
    if params.initializer == "scanner":
        return np.eye(4)
    if params.initializer == "geometry":
        def fov_center(v: Volume) -> np.ndarray:
            a = np.asarray(v.affine, dtype=float)
            return a[:3, :3] @ ((np.asarray(v.shape[:3]) - 1) / 2.0) + a[:3, 3]
        shift = fov_center(moving) - fov_center(fixed)
    else:
        moving_points = foreground_points(moving)
        if len(moving_points) == 0 or len(fixed_points) == 0:
            raise RegistrationError(f"{moving.name}: no foreground to compute moments from")
        shift = moving_points.mean(axis=0) - fixed_points.mean(axis=0)
    m = np.eye(4)
    m[:3, 3] = shift
    return m


def register_rigid(
    fixed: Volume,
    moving: Volume,
    *,
    params: RigidParameters | None = None,
    initial_matrix_ras: np.ndarray | None = None,
    progress: ProgressCallback | None = None,
) -> RigidResult:
    """Rigidly register ``moving`` onto ``fixed`` by Mattes mutual information.

    Parameters
    ----------
    fixed : Volume
        Reference image (the T2* magnitude), 3-D, with its RAS+ affine.
    moving : Volume
        Series to align (MPRAGE, FLAIR), 3-D, with its RAS+ affine; any grid and orientation.
    params : RigidParameters, optional
        Metric, pyramid, optimiser and sanity-check settings (defaults documented there).
    initial_matrix_ras : ndarray, shape (4, 4), optional
        Starting fixed-to-moving world transform; overrides ``params.initializer``.
    progress : callable, optional
        ``progress(fraction, message)``; may raise :class:`CancelledError` to stop.

    Returns
    -------
    RigidResult

    Raises
    ------
    RegistrationError
        Either image not 3-D, empty or constant; the fields of view do not overlap; or the result
        fails the sanity checks (mutual information below ``min_mutual_information``, overlap
        below ``min_overlap``).

    Notes
    -----
    Multi-resolution: at each level both images are smoothed (``smoothing_sigmas_mm``) and
    down-sampled (``shrink_factors``); regular-step gradient descent (Euler angles scaled by
    ``rotation_radius_mm``) runs until the step is below ``min_step_mm``. The final metric is evaluated again at full
    resolution for both the start and the end transform, so the two numbers are comparable.
    """
    params = params or RigidParameters()
    params.check()
    t0 = time.perf_counter()
    check_registrable(fixed, "fixed")
    check_registrable(moving, "moving")
    threads = params.threads or available_cores()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)

    report(progress, 0.0, f"registering {moving.name} onto {fixed.name}")
    fixed_img = working_image(sitk_image_from_volume(fixed), params.working_voxel_mm)
    moving_img = working_image(sitk_image_from_volume(moving), params.working_voxel_mm)
    fixed_points = foreground_points(fixed, seed=params.seed)
    if len(fixed_points) == 0:
        raise RegistrationError(f"{fixed.name}: fixed image has no foreground above its Otsu threshold")
    start = (np.asarray(initial_matrix_ras, dtype=float) if initial_matrix_ras is not None
             else _initial_matrix(params, fixed_img, moving_img, fixed, moving, fixed_points))
    start_overlap = overlap_fraction(fixed_points, start, moving)
    if start_overlap < params.min_overlap / 4:
        raise RegistrationError(
            f"{moving.name}: only {100 * start_overlap:.0f}% of {fixed.name}'s head lies in its field of "
            "view at the start (no overlap in world space): check both affines"
        )

    center_ras = fixed_points.mean(axis=0)
    initial_tf = itk_transform_from_ras(start, center_ras)

    method = _make_method(params, fixed_img, moving_img)
    method.SetMetricSamplingPercentagePerLevel(
        [sampling_fraction(params, fixed_img.GetSize(), s) for s in params.shrink_factors], int(params.seed)
    )
    method.SetInitialTransform(initial_tf, inPlace=False)
    method.SetShrinkFactorsPerLevel([int(s) for s in params.shrink_factors])
    method.SetSmoothingSigmasPerLevel([float(s) for s in params.smoothing_sigmas_mm])
    method.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()

    n_levels = len(params.shrink_factors)
    cost = np.array([1.0 / max(s, 1) ** 3 for s in params.shrink_factors])
    cost = cost / cost.sum()
    state = {"level": -1, "iterations": [], "cancel": None}

    def _on_level() -> None:
        state["level"] += 1
        state["iterations"].append(0)

    def _on_iteration() -> None:
        level = max(state["level"], 0)
        state["iterations"][-1] += 1
        done = cost[:level].sum() + cost[level] * min(state["iterations"][-1] / params.max_iterations, 1.0)
        try:
            report(progress, 0.05 + 0.85 * done,
                   f"{moving.name}: level {level + 1}/{n_levels}, iteration {state['iterations'][-1]}, "
                   f"MI {-method.GetMetricValue():.3f}")
        except CancelledError as exc:
            state["cancel"] = exc
            method.StopRegistration()

    method.AddCommand(sitk.sitkMultiResolutionIterationEvent, _on_level)
    method.AddCommand(sitk.sitkIterationEvent, _on_iteration)
    try:
        final_tf = method.Execute(fixed_img, moving_img)
    except RuntimeError as exc:
        if state["cancel"] is not None:
            raise state["cancel"] from None
        raise RegistrationError(f"{moving.name}: registration failed ({_first_line(exc)})") from None
    if state["cancel"] is not None:
        raise state["cancel"]
    stop = method.GetOptimizerStopConditionDescription()

    report(progress, 0.92, f"{moving.name}: checking the result")
    matrix = ras_from_itk_transform(final_tf)
    rigid_tf = itk_transform_from_ras(matrix, center_ras)
    final_mi = _mutual_information(params, fixed_img, moving_img, rigid_tf, moving)
    start_mi = _mutual_information(params, fixed_img, moving_img, initial_tf, moving)
    overlap = overlap_fraction(fixed_points, matrix, moving)
    notes = []
    if final_mi < start_mi:
        notes.append(f"mutual information fell from {start_mi:.3f} to {final_mi:.3f}")
    if final_mi < params.min_mutual_information:
        raise RegistrationError(
            f"{moving.name}: final mutual information {final_mi:.3f} is below the sanity threshold "
            f"{params.min_mutual_information:.3f} (images unrelated, empty or misaligned): result refused"
        )
    if overlap < params.min_overlap:
        raise RegistrationError(
            f"{moving.name}: after registration only {100 * overlap:.0f}% of {fixed.name}'s head lies in its "
            f"field of view (minimum {100 * params.min_overlap:.0f}%): result refused"
        )
    correction_mm = max_displacement_mm(matrix, np.eye(4), fixed_points)
    report(progress, 1.0, f"{moving.name}: MI {final_mi:.3f}")
    return RigidResult(
        matrix_ras=matrix,
        transform=rigid_tf,
        mutual_information=final_mi,
        initial_mutual_information=start_mi,
        overlap=overlap,
        iterations=list(state["iterations"]),
        stop_condition=stop,
        correction_mm=correction_mm,
        correction_deg=rotation_angle_deg(matrix),
        seconds=time.perf_counter() - t0,
        parameters=params,
        notes=notes,
    )


def working_image(image: sitk.Image, working_voxel_mm: float) -> sitk.Image:
    """Block-average ``image`` by the integer factor per axis that keeps voxels <= ``working_voxel_mm``."""
    if working_voxel_mm <= 0:
        return image
    factors = [max(1, int(np.floor(working_voxel_mm / s + 1e-6))) for s in image.GetSpacing()]
    factors = [min(f, max(1, n // 8)) for f, n in zip(factors, image.GetSize())]
    if all(f == 1 for f in factors):
        return image
    return sitk.BinShrink(image, factors)


def _make_method(params: RigidParameters, fixed_img, moving_img) -> sitk.ImageRegistrationMethod:
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=int(params.histogram_bins))
    # the derivative needs the moving image's gradient only; a smoothed gradient image (ITK's
    # gradient filter) gives a less biased optimum than central differences at the sample points
    method.SetMetricUseFixedImageGradientFilter(False)
    method.SetMetricUseMovingImageGradientFilter(True)
    method.SetMetricSamplingStrategy(method.RANDOM)
    method.SetInterpolator(sitk.sitkLinear)
    method.SetOptimizerAsRegularStepGradientDescent(
        learningRate=float(params.learning_rate_mm),
        minStep=float(params.min_step_mm),
        numberOfIterations=int(params.max_iterations),
        relaxationFactor=float(params.relaxation),
        gradientMagnitudeTolerance=1e-8,
    )
    method.SetOptimizerScales([float(params.rotation_radius_mm) ** 2] * 3 + [1.0] * 3)
    return method


def sampling_fraction(params: RigidParameters, shape: tuple[int, ...], shrink: int = 1) -> float:
    """Metric sampling fraction at a pyramid level: ``params.sampling_fraction`` capped by ``max_samples``."""
    voxels = float(np.prod([max(1, -(-int(n) // int(shrink))) for n in shape]))
    return float(min(params.sampling_fraction, params.max_samples / voxels))


def _mutual_information(params: RigidParameters, fixed_img, moving_img, transform, moving: Volume) -> float:
    """Mattes MI (nats, positive) at full resolution with a fixed random sample."""
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=int(params.histogram_bins))
    method.SetMetricUseFixedImageGradientFilter(False)  # value only: no gradient images
    method.SetMetricUseMovingImageGradientFilter(False)
    method.SetMetricSamplingStrategy(method.RANDOM)
    method.SetMetricSamplingPercentage(sampling_fraction(params, fixed_img.GetSize()), int(params.seed))
    method.SetInterpolator(sitk.sitkLinear)
    method.SetInitialTransform(sitk.Euler3DTransform(transform), inPlace=False)
    try:
        return -float(method.MetricEvaluate(fixed_img, moving_img))
    except RuntimeError as exc:
        raise RegistrationError(f"{moving.name}: cannot evaluate the metric ({_first_line(exc)})") from None


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    # ITK messages start with file/line noise; the description is usually the last line
    return lines[-1] if lines else type(exc).__name__


__all__ = [
    "DEFAULT_MIN_MI",
    "DEFAULT_MIN_OVERLAP",
    "RegistrationError",
    "RigidParameters",
    "RigidResult",
    "available_cores",
    "check_registrable",
    "foreground_points",
    "max_displacement_mm",
    "overlap_fraction",
    "register_rigid",
    "rotation_angle_deg",
]
