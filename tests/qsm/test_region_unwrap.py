import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_qsm_ms.errors import ParameterError
from napari_qsm_ms.qsm.region_unwrap import edge_qualities, unwrap_region_growing
from napari_qsm_ms.qsm.unwrap import unwrap_laplacian

TWO_PI = 2.0 * np.pi


def _wrap(phi):
    return np.angle(np.exp(1j * np.asarray(phi, dtype=np.float64))).astype(np.float32)


def _grids(shape):
    return np.meshgrid(*(np.arange(n, dtype=np.float64) for n in shape), indexing="ij")


def _max_step(phi):
    return max(float(np.abs(np.diff(phi, axis=a)).max()) for a in range(phi.ndim))


def _smooth_phase(rng, shape, max_step):
    """Random smooth phase (linear + quadratic + low-frequency cosines), scaled to ``max_step``."""
    g = _grids(shape)
    c = [n / 2 + rng.uniform(-5, 5) for n in shape]
    x = [gi - ci for gi, ci in zip(g, c)]
    phi = sum(rng.uniform(-1, 1) * xi for xi in x)
    phi = phi + sum(rng.uniform(-0.015, 0.015) * xi * xj for i, xi in enumerate(x) for xj in x[i:])
    for _ in range(3):
        k = rng.uniform(-0.15, 0.15, 3)
        phi = phi + rng.uniform(1, 5) * np.cos(sum(ki * gi for ki, gi in zip(k, g)) + rng.uniform(0, TWO_PI))
    return phi * (max_step / _max_step(phi))


def _ellipsoid(shape, center, radii):
    g = np.ogrid[tuple(slice(0, n) for n in shape)]
    return sum(((gi - c) / r) ** 2 for gi, c, r in zip(g, center, radii)) <= 1.0


def _largest_component(mask):
    labels, n = ndi.label(mask)
    assert n >= 1
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(np.argmax(sizes))


def _random_mask(rng, shape):
    """Ellipsoid with random centre/radii and a few random spherical holes, largest component."""
    center = [n / 2 + rng.uniform(-4, 4) for n in shape]
    radii = [n * rng.uniform(0.3, 0.45) for n in shape]
    mask = _ellipsoid(shape, center, radii)
    for _ in range(rng.integers(1, 5)):
        hc = [c + rng.uniform(-0.6, 0.6) * r for c, r in zip(center, radii)]
        mask &= ~_ellipsoid(shape, hc, [rng.uniform(2, 6)] * 3)
    return _largest_component(mask)


def _smooth_magnitude(rng, shape):
    m = np.exp(1.5 * ndi.gaussian_filter(rng.standard_normal(shape), 4) / 0.05)
    return (rng.uniform(0.1, 1000) * m / m.max() + 1e-3).astype(np.float32)


def _offset_error(out, phi, region):
    """Max |out - phi - 2 pi k| on ``region`` for the best single integer k, and that k."""
    d = out[region].astype(np.float64) - phi[region]
    k = np.round(np.median(d) / TWO_PI)
    return float(np.abs(d - TWO_PI * k).max()), k


@pytest.mark.parametrize("seed", range(6))
def test_random_smooth_phase_is_recovered_up_to_one_multiple_of_2pi(seed):
    """Random smooth phase wrapping many times, random holed mask and magnitude: exact up to one
    global 2 pi k in the mask, 0 outside, an integer number of turns from the wrapped phase."""
    rng = np.random.default_rng(seed)
    shape = tuple(int(n) for n in rng.integers(40, 56, 3))
    phi = _smooth_phase(rng, shape, rng.uniform(1.0, 2.0))
    mask = _random_mask(rng, shape)
    assert mask.sum() > 5000 and np.ptp(phi[mask]) > 4 * np.pi  # several wraps in the mask
    psi = _wrap(phi)
    psi_in = psi.copy()
    mag = _smooth_magnitude(rng, shape)
    out = unwrap_region_growing(psi, mask, mag)
    assert out.dtype == np.float32 and out.shape == shape
    np.testing.assert_array_equal(psi, psi_in)  # input untouched
    err, _ = _offset_error(out, phi, mask)
    assert err < 1e-4
    assert np.all(out[~mask] == 0)
    turns = (out[mask].astype(np.float64) - psi[mask]) / TWO_PI
    assert np.abs(turns - np.round(turns)).max() < 1e-4


@pytest.mark.parametrize("offset", [-57.3, -9.0, 0.0, 3.2, 40.1, 123.4])
def test_largest_component_mean_lies_within_pi_of_zero(offset):
    """Whatever constant the true phase carries, the result's mean is within pi of 0 and the
    result is still the true phase up to 2 pi k."""
    rng = np.random.default_rng(11)
    shape = (44, 40, 36)
    phi = _smooth_phase(rng, shape, 1.5) + offset
    mask = _random_mask(rng, shape)
    out = unwrap_region_growing(_wrap(phi), mask)
    assert abs(float(out[mask].astype(np.float64).mean())) <= np.pi + 1e-5
    err, _ = _offset_error(out, phi, mask)
    assert err < 1e-4


@pytest.mark.parametrize("seed", range(3))
def test_result_does_not_depend_on_how_the_input_is_wrapped(seed):
    """Adding random multiples of 2 pi per voxel to the input (e.g. passing the true phase itself)
    leaves the result unchanged: it only depends on exp(i psi)."""
    rng = np.random.default_rng(100 + seed)
    shape = (40, 44, 36)
    phi = _smooth_phase(rng, shape, 1.8)
    mask = _random_mask(rng, shape)
    mag = _smooth_magnitude(rng, shape)
    psi = _wrap(phi)
    ref = unwrap_region_growing(psi, mask, mag)
    rewrapped = psi + TWO_PI * rng.integers(-3, 4, shape)
    for other in (phi.astype(np.float32), rewrapped.astype(np.float32)):
        out = unwrap_region_growing(other, mask, mag)
        assert np.abs(out.astype(np.float64) - ref).max() < 1e-4


@pytest.mark.parametrize("seed", range(8))
def test_disconnected_components_are_each_exact_and_aligned_to_the_largest(seed):
    """Four components (incl. a single voxel): each is the true phase up to its own 2 pi k, the
    largest has mean within pi of 0, the others mean within pi of the largest one's."""
    rng = np.random.default_rng(200 + seed)
    shape = (64, 48, 40)
    phi = _smooth_phase(rng, shape, 1.5) + rng.uniform(-30, 30)
    mask = _ellipsoid(shape, (20, 24, 20), (17, 20, 17))
    mask |= _ellipsoid(shape, (50, 18, 20), (9, 9, 12))
    mask |= _ellipsoid(shape, (52, 38, 10), (3, 4, 3))
    mask[60, 44, 36] = True
    labels, n = ndi.label(mask)
    assert n == 4
    sizes = np.bincount(labels.ravel())[1:]
    largest = labels == int(np.argmax(sizes)) + 1
    out = unwrap_region_growing(_wrap(phi), mask, _smooth_magnitude(rng, shape))
    assert np.all(out[~mask] == 0)
    ref_mean = float(out[largest].astype(np.float64).mean())
    assert abs(ref_mean) <= np.pi + 1e-5
    for lab in range(1, n + 1):
        comp = labels == lab
        err, _ = _offset_error(out, phi, comp)
        assert err < 1e-4, f"component {lab} of {comp.sum()} voxels"
        assert abs(float(out[comp].astype(np.float64).mean()) - ref_mean) <= np.pi + 1e-5


@pytest.mark.parametrize("kind", ["noise", "aliased ramp", "flat"])
@pytest.mark.parametrize("seed", range(2))
def test_damage_in_a_dark_block_stays_local(kind, seed):
    """A damaged block (random phase, a ramp of 4 rad per voxel, or a constant phase) with low
    magnitude inside a steep smooth phase (steps up to 2.4 rad): every voxel more than 3 voxels from
    the block is still exact (one global 2 pi k). The flat block has high phase-only qualities, so
    there the magnitude term is what keeps the error local."""
    rng = np.random.default_rng(300 + seed)
    shape = (56, 52, 44)
    phi = _smooth_phase(rng, shape, 2.4)
    mask = _ellipsoid(shape, (28, 26, 22), (25, 23, 20))
    block = np.zeros(shape, bool)
    lo = [int(n // 2 + rng.integers(-6, 2)) for n in shape]
    block[lo[0]:lo[0] + 9, lo[1]:lo[1] + 8, lo[2]:lo[2] + 7] = True
    assert np.all(mask[block])
    psi = _wrap(phi)
    if kind == "noise":
        psi[block] = rng.uniform(-np.pi, np.pi, int(block.sum()))
    elif kind == "aliased ramp":
        g = _grids(shape)
        psi[block] = _wrap(phi + 4.0 * (g[0] + g[1] - g[2]))[block]
    else:
        psi[block] = 0.0
    mag = _smooth_magnitude(rng, shape)
    mag[block] = 0.02 * np.median(mag[mask])
    out = unwrap_region_growing(psi, mask, mag)
    far = mask & (ndi.distance_transform_edt(~block) > 3)
    err, _ = _offset_error(out, phi, far)
    assert err < 1e-4
    turns = (out[mask].astype(np.float64) - psi[mask]) / TWO_PI
    assert np.abs(turns - np.round(turns)).max() < 1e-4


def test_steep_phase_is_exact_where_laplacian_leaves_sine_error():
    """Steep but not aliased phase (steps up to ~2.5 rad per voxel), mask = whole volume (borders
    included): region growing is exact; the Laplacian method's error is not a multiple of 2 pi."""
    shape = (48, 44, 40)
    g = _grids(shape)
    phi = sum((gi - n / 2 + 0.3) ** 2 for gi, n in zip(g, shape))
    phi *= 2.5 / _max_step(phi)
    assert 2.3 < _max_step(phi) < np.pi
    psi = _wrap(phi)
    mask = np.ones(shape, bool)
    out = unwrap_region_growing(psi, mask)
    err, _ = _offset_error(out, phi, mask)
    assert err < 1e-4
    lap = unwrap_laplacian(psi, (1.0, 1.0, 1.0)).astype(np.float64) - phi
    lap -= np.median(lap)
    off_turn = np.abs(lap - TWO_PI * np.round(lap / TWO_PI))
    assert off_turn.max() > 0.1


def test_accepts_integer_mask_and_float64_phase():
    """Mask of 0/1 ints and float64 phase are accepted; the result is float32 and exact."""
    rng = np.random.default_rng(5)
    shape = (32, 30, 28)
    phi = _smooth_phase(rng, shape, 1.5)
    mask = _ellipsoid(shape, (16, 15, 14), (12, 12, 11))
    out = unwrap_region_growing(_wrap(phi).astype(np.float64), mask.astype(np.int32))
    assert out.dtype == np.float32
    err, _ = _offset_error(out, phi, mask)
    assert err < 1e-4 and np.all(out[~mask] == 0)


def _both_inside(mask, ax):
    lo = [slice(None)] * 3
    hi = [slice(None)] * 3
    lo[ax], hi[ax] = slice(0, -1), slice(1, None)
    return mask[tuple(lo)] & mask[tuple(hi)], tuple(lo)


@pytest.mark.parametrize("with_magnitude", [False, True])
def test_edge_qualities_range_and_support(with_magnitude):
    """uint8 (3, nx, ny, nz); 0 exactly for edges leaving the mask and on each axis's last row,
    >= 1 for every edge inside the mask (random phase, holed multi-component mask)."""
    rng = np.random.default_rng(7)
    shape = (30, 26, 22)
    psi = rng.uniform(-np.pi, np.pi, shape).astype(np.float32)
    mask = ndi.gaussian_filter(rng.standard_normal(shape), 2) > -0.05
    mag = rng.uniform(0, 5, shape).astype(np.float32) if with_magnitude else None
    if mag is not None:
        mag[rng.random(shape) < 0.05] = 0.0  # zero-magnitude voxels are still crossable
    q = edge_qualities(psi, mag, mask)
    assert q.dtype == np.uint8 and q.shape == (3,) + shape
    for ax in range(3):
        both, lo = _both_inside(mask, ax)
        qa = q[ax][lo]
        assert np.all(qa[~both] == 0)
        assert np.all(qa[both] >= 1)
        assert np.all(np.take(q[ax], -1, axis=ax) == 0)
    assert q.max() > 200  # not everything squashed to the bottom level


def test_edge_quality_decreases_with_wrapped_step_without_magnitude():
    """Magnitude None: 255 for no step, strictly lower for each larger |wrapped step|, equal for
    +-step and (within one level) for step + 2 pi k."""
    steps = np.round(np.arange(-3.1, 3.1001, 0.1), 6)
    n = steps.size
    base = np.random.default_rng(8).uniform(-np.pi, np.pi, n)
    shifted = steps + TWO_PI * np.array([-2, -1, 1, 2] * n)[:n]
    psi = np.zeros((2, 2 * n, 1), np.float32)
    psi[0, :n, 0] = base
    psi[1, :n, 0] = _wrap(base + steps)
    psi[0, n:, 0] = base
    psi[1, n:, 0] = _wrap(base + shifted)
    q = edge_qualities(psi, None, np.ones(psi.shape, bool))[0, 0, :, 0].astype(int)
    q_step, q_shift = q[:n], q[n:]
    assert q_step[np.argmin(np.abs(steps))] == 255
    order = np.argsort(np.abs(steps), kind="stable")
    a, qs = np.abs(steps)[order], q_step[order]
    distinct = np.diff(a) > 0.05
    assert np.all(np.diff(qs)[distinct] < 0)  # strictly decreasing in |step|
    assert np.all(np.abs(np.diff(qs)[~distinct]) <= 1)  # +-step: same level (rounding aside)
    assert np.abs(q_shift - q_step).max() <= 1
    assert q_step[np.argmax(np.abs(steps))] <= 10


def test_edge_quality_penalises_magnitude_contrast_and_darkness():
    """Same phase step: bright-dark edge < bright-bright edge, dark-dark < bright-bright;
    magnitude None equals a constant magnitude, and the magnitude's scale does not matter."""
    rng = np.random.default_rng(9)
    shape = (12, 10, 8)
    psi = _wrap(0.4 * _grids(shape)[0] + rng.uniform(-0.2, 0.2, shape))
    mask = np.ones(shape, bool)
    mag = np.ones(shape, np.float32)
    mag[5, 3:, :] = 0.3  # plane x=5 dark from y=3 on
    q = edge_qualities(psi, mag, mask)
    bright = edge_qualities(psi, np.ones(shape, np.float32), mask)
    np.testing.assert_array_equal(bright, edge_qualities(psi, None, mask))
    # x edges 4->5 and 5->6 at y >= 3 are bright-dark; at y < 3 bright-bright (same geometry)
    for x in (4, 5):
        assert np.all(q[0, x, 3:, :] < bright[0, x, 3:, :])
        np.testing.assert_array_equal(q[0, x, :3, :], bright[0, x, :3, :])
    # y edges inside the dark plane (dark-dark) are lower than the same edges all bright
    assert np.all(q[1, 5, 3:-1, :] < bright[1, 5, 3:-1, :])
    # bright-dark is worse than dark-dark for the same step: contrast is penalised, not only darkness
    psi_flat = np.zeros(shape, np.float32)
    qf = edge_qualities(psi_flat, mag, mask)
    assert qf[0, 4, 5, 2] < qf[1, 5, 5, 2] < 255
    for scale in (2.0**10, 2.0**-6):
        np.testing.assert_array_equal(edge_qualities(psi, mag * scale, mask), q)


def test_bad_inputs_raise_parameter_error():
    """Empty mask, mask/phase shape mismatch, 2-D phase and a magnitude of another shape raise
    ParameterError naming the problem."""
    psi = np.zeros((8, 7, 6), np.float32)
    mask = np.ones(psi.shape, bool)
    with pytest.raises(ParameterError, match="empty"):
        unwrap_region_growing(psi, np.zeros(psi.shape, bool))
    with pytest.raises(ParameterError, match=r"\(8, 7, 5\)"):
        unwrap_region_growing(psi, np.ones((8, 7, 5), bool))
    with pytest.raises(ParameterError, match="3-D"):
        unwrap_region_growing(psi[:, :, 0], mask[:, :, 0])
    with pytest.raises(ParameterError, match="3-D"):
        unwrap_region_growing(psi[..., None], mask[..., None])
    with pytest.raises(ParameterError, match=r"magnitude \(8, 7\)"):
        unwrap_region_growing(psi, mask, np.ones((8, 7), np.float32))


def test_progress_is_monotone_in_unit_interval_and_reaches_one():
    """The callback gets fractions in [0, 1], non-decreasing, ending at 1.0, with a message; the
    result is the same as without a callback."""
    rng = np.random.default_rng(12)
    shape = (40, 32, 30)
    phi = _smooth_phase(rng, shape, 1.5)
    mask = _ellipsoid(shape, (12, 16, 15), (10, 12, 12)) | _ellipsoid(shape, (32, 16, 15), (6, 6, 6))
    mask[38, 2, 2] = True
    calls = []
    out = unwrap_region_growing(_wrap(phi), mask, progress=lambda f, m: calls.append((f, m)))
    fractions = [f for f, _ in calls]
    assert len(calls) >= 3
    assert all(0.0 <= f <= 1.0 for f in fractions)
    assert all(b >= a for a, b in zip(fractions, fractions[1:]))
    assert fractions[0] == 0.0 and fractions[-1] == 1.0
    assert all(isinstance(m, str) and m for _, m in calls)
    np.testing.assert_array_equal(out, unwrap_region_growing(_wrap(phi), mask))


def test_non_finite_input_in_the_mask_is_refused():
    """NaN/inf in the phase or magnitude inside the mask gives a ParameterError, not a garbage quality."""
    psi = np.zeros((8, 8, 8), np.float32)
    mask = np.ones_like(psi, bool)
    bad = psi.copy()
    bad[3, 3, 3] = np.nan
    with pytest.raises(ParameterError, match="phase has NaN"):
        unwrap_region_growing(bad, mask)
    with pytest.raises(ParameterError, match="magnitude has NaN"):
        unwrap_region_growing(psi, mask, np.where(bad == bad, 1.0, np.inf))
    mask[3, 3, 3] = False  # outside the mask it does not matter
    assert np.isfinite(unwrap_region_growing(bad, mask)).all()


def _two_rooms_with_a_hidden_alias():
    """Rooms A (x < 15) and B (x >= 26) joined by a narrow bridge (steps of 1.4 rad, sampled well
    enough) and by a wide corridor C whose phase hides a whole turn: it ramps by only 0.83 rad per
    voxel and meets B with a step of exactly 2 pi (wrapped: 0). C's edges are better than the
    bridge's, so growth goes through it and puts B a turn off; the true B - A is 15.4 rad."""
    shape = (40, 20, 6)
    x = np.arange(shape[0])[:, None, None] * np.ones(shape)
    y = np.arange(shape[1])[None, :, None] * np.ones(shape)
    room_a, room_b = x < 15, x >= 26
    bridge = (x >= 15) & (x < 26) & (y < 3)
    corridor = (x >= 15) & (x < 26) & (y >= 10)
    truth = np.where(room_b, 15.4, 0.0)
    truth = np.where(bridge, 1.4 * (x - 14), truth)
    truth = np.where(corridor, (15.4 - 2 * np.pi) / 11 * (x - 14), truth)
    core = room_a | room_b | bridge
    return np.angle(np.exp(1j * truth)).astype(np.float32), core | corridor, core, truth


def test_growth_through_a_hidden_alias_puts_a_room_a_turn_off_without_a_core():
    psi, mask, _, _ = _two_rooms_with_a_hidden_alias()
    out = unwrap_region_growing(psi, mask)
    x = np.arange(psi.shape[0])
    assert abs((out[x >= 26].mean() - out[x < 15].mean()) - (15.4 - 2 * np.pi)) < 1e-3


def test_core_is_unwrapped_through_its_own_edges_first():
    psi, mask, core, truth = _two_rooms_with_a_hidden_alias()
    out = unwrap_region_growing(psi, mask, core=core)
    err = (out - truth)[core]
    assert np.allclose(err, err[0], atol=1e-4)  # the whole core right up to one constant
    assert np.allclose(np.round((out - psi)[mask] / (2 * np.pi), 4) % 1, 0, atol=1e-3)  # still exact turns


def test_core_of_another_shape_is_refused():
    psi, mask, core, _ = _two_rooms_with_a_hidden_alias()
    with pytest.raises(ParameterError):
        unwrap_region_growing(psi, mask, core=core[:-1])
