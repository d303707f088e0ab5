"""The magnitude's noise level, measured from the image (Donoho's MAD of the finest Haar detail)."""

import numpy as np
import pytest

from napari_qsm_ms.qsm.noise import magnitude_noise_sd


def _head(shape, rng):
    """A smooth bright ellipsoid with darker blocks inside (edges) on a zero background, and its mask."""
    z, y, x = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    inside = (z / 0.9) ** 2 + (y / 0.8) ** 2 + (x / 0.85) ** 2 < 1
    image = np.where(inside, 200.0 + 30.0 * x + 20.0 * np.cos(3 * y), 0.0)
    for _ in range(12):  # sharp-edged structures: outliers for the estimator
        c = [rng.integers(n // 4, 3 * n // 4) for n in shape]
        sl = tuple(slice(ci - 3, ci + 4) for ci in c)
        image[sl] *= 0.6
    return image, inside


@pytest.mark.parametrize("sigma", [2.0, 8.0, 25.0])
@pytest.mark.parametrize("shape", [(40, 48, 36), (33, 47, 29)])
def test_recovers_the_noise_of_a_textured_image(sigma, shape):
    rng = np.random.default_rng(int(sigma * 10) + shape[0])
    image, inside = _head(shape, rng)
    noisy = image + rng.normal(0.0, sigma, shape)
    assert magnitude_noise_sd(noisy, inside) == pytest.approx(sigma, rel=0.08)


def test_rician_magnitude_at_moderate_snr():
    rng = np.random.default_rng(3)
    image, inside = _head((40, 40, 40), rng)
    sigma = 20.0  # SNR about 10 in the darkest structures
    noisy = np.abs(image + rng.normal(0, sigma, image.shape) + 1j * rng.normal(0, sigma, image.shape))
    assert magnitude_noise_sd(noisy, inside) == pytest.approx(sigma, rel=0.08)


def test_multi_echo_is_the_median_over_echoes_and_background_is_ignored():
    rng = np.random.default_rng(4)
    image, inside = _head((36, 36, 36), rng)
    echoes = np.stack([image * f + rng.normal(0, 5.0, image.shape) for f in (1.0, 0.8, 0.6)], axis=-1)
    echoes[~inside] = rng.rayleigh(50.0, (int((~inside).sum()), 3))  # loud air outside the mask
    assert magnitude_noise_sd(echoes, inside) == pytest.approx(5.0, rel=0.08)


def test_too_small_a_mask_gives_nan():
    mask = np.zeros((20, 20, 20), bool)
    mask[4:8, 4:8, 4:8] = True
    assert np.isnan(magnitude_noise_sd(np.ones((20, 20, 20)), mask))
