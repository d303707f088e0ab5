"""GRE forward model: susceptibility -> field -> magnitude and wrapped phase at one echo.

The field of a susceptibility distribution is the dipole convolution

    field_ppm = IFFT(D * FFT(chi_ppm)),   D(k) = 1/3 - (k . b0)^2 / |k|^2,  D(0) = 0,

with the package's one dipole kernel (:func:`napari_qsm_ms.qsm.dipole.dipole_kernel`) on a
zero-padded grid (zero padding = sources surrounded by a medium of susceptibility 0, i.e. the
reference of ``chi``). This is the Lorentz-sphere-corrected convention: a uniformly magnetised
sphere has zero field inside and the field of a point dipole ``chi V / (4 pi r^3) (3 cos^2 - 1)``
outside. Phase at echo time TE is ``field_ppm / ppm_per_radian(TE, B0)``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import scipy.fft

from ..errors import ParameterError
from ..io.geometry import b0_direction_voxel
from ..io.units import wrap_to_pi
from ..progress import ProgressCallback, report
from ..qsm.dipole import dipole_kernel, ppm_per_radian

DEFAULT_TE_S = 0.0177
DEFAULT_B0_T = 7.0
DEFAULT_SNR = 40.0
"""Magnitude SNR of normal-appearing WM (mean WM magnitude / noise SD per channel)."""


def _workers() -> int:
    return max(1, os.cpu_count() or 1)


def padded_shape(shape, pad: bool | float = True) -> tuple[int, int, int]:
    """Grid size used for the convolution.

    Parameters
    ----------
    shape : tuple of 3 int
        Array shape.
    pad : bool, int or float
        ``True``: twice the size (no circular wrap-around of the dipole field within the
        array); ``False``: no padding; an int: that many voxels added on each axis; a float
        ``f >= 1``: ``f`` times the size. Each axis is then rounded up to a fast FFT length.
    """
    shape = tuple(int(n) for n in shape)
    if pad is True:
        target = [2 * n for n in shape]
    elif pad is False or pad is None:
        target = list(shape)
    elif isinstance(pad, (int, np.integer)):
        if pad < 0:
            raise ParameterError(f"padding must be >= 0 voxels, got {pad}")
        target = [n + int(pad) for n in shape]
    else:
        if float(pad) < 1.0:
            raise ParameterError(f"padding factor must be >= 1, got {pad}")
        target = [int(np.ceil(float(pad) * n)) for n in shape]
    return tuple(scipy.fft.next_fast_len(t, real=True) for t in target)


def local_field_ppm(
    chi_ppm: np.ndarray,
    voxel_size_mm,
    b0_dir,
    pad: bool | float = True,
) -> np.ndarray:
    """Field (ppm of B0) produced by ``chi_ppm``: dipole convolution on a zero-padded grid.

    Parameters
    ----------
    chi_ppm : ndarray, 3-D
        Susceptibility (ppm) relative to the surrounding medium (zero outside the array).
    voxel_size_mm : sequence of 3 float
        Voxel edge lengths along the array axes, mm.
    b0_dir : sequence of 3 float
        Main-field direction along the array axes (e.g. from
        :func:`napari_qsm_ms.io.geometry.b0_direction_voxel`).
    pad : bool, int or float
        Zero padding, see :func:`padded_shape` (default: to twice the size).

    Returns
    -------
    ndarray, float32
        Relative field change ``delta_B / B0`` in ppm, same shape as ``chi_ppm``.
    """
    chi = np.asarray(chi_ppm, dtype=np.float32)
    if chi.ndim != 3:
        raise ParameterError(f"chi must be 3-D, got shape {chi.shape}")
    vs = np.asarray(voxel_size_mm, dtype=float)
    if vs.shape != (3,) or not np.all(vs > 0):
        raise ParameterError(f"voxel size must be 3 positive numbers (mm), got {voxel_size_mm}")
    big = padded_shape(chi.shape, pad)
    kernel = dipole_kernel(big, vs, b0_dir, rfft=True, dtype=np.float32)
    spec = scipy.fft.rfftn(chi, s=big, workers=_workers())
    spec *= kernel
    del kernel
    field = scipy.fft.irfftn(spec, s=big, workers=_workers())
    del spec
    out = field[: chi.shape[0], : chi.shape[1], : chi.shape[2]]
    return np.ascontiguousarray(out, dtype=np.float32)


def demagnetisation_factors(semi_axes_mm) -> np.ndarray:
    """Demagnetising factors ``N_i`` of an ellipsoid (they sum to 1; 1/3 each for a sphere).

    ``N_i = (a b c / 2) * integral_0^inf ds / ((s + a_i^2) sqrt((s + a^2)(s + b^2)(s + c^2)))``
    (Osborn, Phys Rev 1945), evaluated with Carlson's symmetric integral
    ``N_i = (a b c / 3) R_D(a_j^2, a_k^2, a_i^2)``.
    """
    from scipy.special import elliprd

    a = np.asarray(semi_axes_mm, dtype=float)
    sq = a**2
    prod = float(np.prod(a))
    return np.array([prod / 3.0 * elliprd(sq[(i + 1) % 3], sq[(i + 2) % 3], sq[i]) for i in range(3)])


def uniform_ellipsoid_field_ppm(chi_ppm: float, semi_axes_mm, b0_dir) -> float:
    """Field (ppm) inside a uniformly magnetised ellipsoid, Lorentz-corrected: ``chi (1/3 - b.N.b)``.

    ``b0_dir`` is expressed in the ellipsoid's principal axes. A sphere gives 0, a long cylinder
    along B0 ``chi / 3``. The field inside is exactly uniform, which a zero-padded FFT of a
    field-of-view-filling ellipsoid reproduces only with very large padding (its periodic images
    add a curvature of ~0.25 ppm for a -9.4 ppm head at padding 2); hence this term is analytic.
    """
    b = np.asarray(b0_dir, dtype=float)
    b = b / np.linalg.norm(b)
    n = demagnetisation_factors(semi_axes_mm)
    return float(chi_ppm * (1.0 / 3.0 - np.sum(n * b**2)))


@dataclass
class GRESignal:
    """One simulated GRE echo and the fields behind it (all on the phantom's grid).

    Attributes
    ----------
    magnitude : ndarray, float32
        Noisy magnitude (arbitrary units, WM about 1000).
    phase_rad : ndarray, float32
        Noisy wrapped phase in ``[-pi, pi)``.
    total_field_ppm, local_field_ppm, background_field_ppm : ndarray, float32
        Noise-free fields; ``total = local + background``. The local field is produced by the
        brain's susceptibility (``phantom.chi_ppm``), the background field by everything outside
        the brain (air/tissue interfaces, skull, and the brain's own offset from air).
    te_s, b0_t : float
        Echo time (s) and field strength (T).
    b0_dir : ndarray, shape (3,)
        Main-field direction along the array axes.
    noise_sd : float
        Standard deviation of the complex Gaussian noise (per real/imaginary channel).
    phase_offset_rad : float
        Constant receiver phase offset added to every voxel.
    """

    magnitude: np.ndarray
    phase_rad: np.ndarray
    total_field_ppm: np.ndarray
    local_field_ppm: np.ndarray
    background_field_ppm: np.ndarray
    te_s: float
    b0_t: float
    b0_dir: np.ndarray
    noise_sd: float
    phase_offset_rad: float


def field_to_phase_rad(field_ppm: np.ndarray, te_s: float, b0_t: float) -> np.ndarray:
    """Unwrapped phase (rad) accumulated at ``te_s`` by a field in ppm at ``b0_t`` tesla."""
    return (np.asarray(field_ppm, dtype=np.float64) / ppm_per_radian(te_s, b0_t)).astype(np.float32)


def add_complex_noise(
    magnitude: np.ndarray, phase_rad: np.ndarray, noise_sd: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Add complex Gaussian noise of SD ``noise_sd`` per channel; return (magnitude, wrapped phase).

    The phase noise SD of a voxel is about ``noise_sd / magnitude`` (radians), so dark voxels
    (veins, air) have noisy phase as in real data, and the magnitude becomes Rician.
    """
    signal = magnitude.astype(np.float32) * np.exp(1j * phase_rad.astype(np.float32)).astype(np.complex64)
    if noise_sd > 0:
        noise = rng.standard_normal(signal.shape, dtype=np.float32) + 1j * rng.standard_normal(
            signal.shape, dtype=np.float32
        )
        signal = signal + (noise_sd * noise).astype(np.complex64)
    mag = np.abs(signal).astype(np.float32)
    phase = wrap_to_pi(np.angle(signal).astype(np.float32))
    return mag, phase


def background_field_ppm(phantom, b0_dir, pad: bool | float = True) -> np.ndarray:
    """Field (ppm) of the sources outside the brain (``phantom.chi_background_ppm``).

    The head is split into a uniform ellipsoid of ``phantom.head_chi_ppm`` (tissue relative to
    air, -9.4 ppm) and localised deviations (skull, air cavities). The deviations go through the
    zero-padded dipole convolution; the uniform ellipsoid contributes its exact uniform field
    inside the head (:func:`uniform_ellipsoid_field_ppm`) and its convolved field outside (air,
    where there is no signal).
    """
    head = phantom.head_mask
    uniform = np.float32(phantom.head_chi_ppm)
    deviation = phantom.chi_background_ppm - uniform * head.astype(np.float32)
    field = local_field_ppm(deviation, phantom.voxel_size_mm, b0_dir, pad=pad)
    del deviation
    outside = local_field_ppm(uniform * head.astype(np.float32), phantom.voxel_size_mm, b0_dir, pad=pad)
    inside_value = uniform_ellipsoid_field_ppm(float(uniform), phantom.model.head_semi_mm, b0_dir)
    field += np.where(head, np.float32(inside_value), outside)
    return field


def gre_signal(
    phantom,
    *,
    te_s: float = DEFAULT_TE_S,
    b0_t: float = DEFAULT_B0_T,
    snr: float = DEFAULT_SNR,
    seed: int | np.random.SeedSequence | None = 0,
    b0_dir=None,
    phase_offset_rad: float = 0.4,
    pad: bool | float = True,
    progress: ProgressCallback | None = None,
) -> GRESignal:
    """Single-echo GRE magnitude and wrapped phase of a phantom, with background field and noise.

    Parameters
    ----------
    phantom : napari_qsm_ms.simulate.phantom.Phantom
        Uses ``chi_ppm`` (brain sources), ``chi_background_ppm`` (sources outside the brain),
        ``t2star_magnitude`` (noise-free magnitude at ``te_s``), ``voxel_size_mm``, ``affine``.
    te_s : float
        Echo time, s (default 0.0177, as in the paper).
    b0_t : float
        Field strength, T (default 7).
    snr : float
        Mean normal-appearing WM magnitude over the noise SD (default 40).
    seed : int or SeedSequence or None
        Noise seed.
    b0_dir : sequence of 3 float, optional
        Main-field direction along the array axes; default from the phantom's affine.
    phase_offset_rad : float
        Constant receiver phase offset (rad).
    pad : bool, int or float
        Zero padding of the dipole convolution (see :func:`padded_shape`).
    progress : callable, optional
        ``progress(fraction, message)``.

    Returns
    -------
    GRESignal
    """
    if te_s <= 0 or b0_t <= 0:
        raise ParameterError(f"echo time and field strength must be positive (TE {te_s} s, B0 {b0_t} T)")
    if snr <= 0:
        raise ParameterError(f"SNR must be positive, got {snr}")
    if b0_dir is None:
        b0_dir = b0_direction_voxel(phantom.affine)
    b0_dir = np.asarray(b0_dir, dtype=float)
    b0_dir = b0_dir / np.linalg.norm(b0_dir)
    report(progress, 0.0, "local field")
    local = local_field_ppm(phantom.chi_ppm, phantom.voxel_size_mm, b0_dir, pad=pad)
    report(progress, 0.35, "background field")
    background = background_field_ppm(phantom, b0_dir, pad=pad)
    total = (local + background).astype(np.float32)
    report(progress, 0.9, "signal and noise")
    wm = phantom.tissue == 3
    ref = float(np.mean(phantom.t2star_magnitude[wm])) if wm.any() else float(phantom.t2star_magnitude.max())
    noise_sd = ref / float(snr)
    rng = np.random.default_rng(seed)
    phase_clean = field_to_phase_rad(total, te_s, b0_t) + np.float32(phase_offset_rad)
    mag, phase = add_complex_noise(phantom.t2star_magnitude, phase_clean, noise_sd, rng)
    report(progress, 1.0, "done")
    return GRESignal(
        magnitude=mag,
        phase_rad=phase,
        total_field_ppm=total,
        local_field_ppm=local,
        background_field_ppm=background,
        te_s=float(te_s),
        b0_t=float(b0_t),
        b0_dir=b0_dir,
        noise_sd=noise_sd,
        phase_offset_rad=float(phase_offset_rad),
    )
