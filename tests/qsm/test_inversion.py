import numpy as np
import pytest

from napari_qsm_ms.qsm._fft import irfftn, rfftn
from napari_qsm_ms.qsm.dipole import dipole_kernel, ppm_per_radian
from napari_qsm_ms.qsm.inversion import gradient_mask, medi_l1, tkd, tv_admm

from ._spheres import field_ppm, nrmse_percent, sphere_phantom

VS = (1.0, 1.0, 1.5)


def test_tkd_is_exact_where_the_kernel_is_well_conditioned():
    shape, vs, b0 = (32, 40, 36), (0.8, 1.0, 1.3), (0.1, 0.3, 0.95)
    rng = np.random.default_rng(0)
    d = dipole_kernel(shape, vs, b0, rfft=True)
    spec = rfftn(rng.standard_normal(shape).astype(np.float32))
    spec[np.abs(d) <= 0.2] = 0  # chi with no energy where |D| <= 0.2
    chi = irfftn(spec, shape).astype(np.float32)
    field = irfftn(d * rfftn(chi), shape).astype(np.float32)
    mask = np.ones(shape, bool)
    out = tkd(field, mask, vs, b0, threshold=0.19, pad_mm=0.0)
    np.testing.assert_allclose(out, chi, atol=1e-4 * np.abs(chi).max())


def test_dipole_field_of_a_sphere_reconstructed():
    chi, brain, mag = sphere_phantom()
    b0 = (0.0, 0.0, 1.0)
    f = field_ppm(chi, VS, b0)
    # the analytic field outside a sphere: at distance r along B0, chi/3 * (R/r)^3 * 2 (Lorentz-corrected)
    c = (24 + 5, 24 - 2, 20)
    r_mm = 12.0
    z = int(round(c[2] + r_mm / VS[2]))
    assert f[c[0], c[1], z] == pytest.approx(0.1 / 3 * 2 * (6.0 / r_mm) ** 3, rel=0.15)
    out = tkd(f, brain, VS, b0)
    # literature TKD (dropped frequencies, issue 13) loses more of the spheres' low frequencies
    # than the clamped variant this bound (45 %) was written for: 56 % here
    assert nrmse_percent(out, chi, brain) < 60
    inc = chi > 0.09
    # dropping the cone's frequencies underestimates (Schweser F. et al., MRM 2013): 0.059 here
    assert 0.04 < out[inc].mean() < 0.1


def test_medi_on_noiseless_spheres_is_close():
    chi, brain, mag = sphere_phantom()
    b0 = (0.0, 0.15, 0.99)
    f = field_ppm(chi, VS, b0) * brain
    out = medi_l1(f, brain, mag, VS, b0, ppm_per_rad=ppm_per_radian(0.0177, 7.0), max_iter=6)
    assert nrmse_percent(out, chi, brain) < 15
    assert np.all(out[~brain] == 0)


def test_medi_lambda_is_independent_of_te_and_b0():
    chi, brain, mag = sphere_phantom()
    b0 = (0.0, 0.0, 1.0)
    f = field_ppm(chi, VS, b0) * brain
    a = medi_l1(f, brain, mag, VS, b0, ppm_per_rad=ppm_per_radian(0.0177, 7.0), max_iter=4)
    b = medi_l1(f, brain, mag, VS, b0, ppm_per_rad=ppm_per_radian(0.025, 3.0), max_iter=4)
    assert nrmse_percent(a, b, brain) < 5


def test_tv_admm_on_noiseless_spheres():
    chi, brain, mag = sphere_phantom()
    b0 = (0.0, 0.0, 1.0)
    f = field_ppm(chi, VS, b0) * brain
    out = tv_admm(f, brain, VS, b0, lam=1e-4)
    assert nrmse_percent(out, chi, brain) < 30


def test_gradient_mask_marks_about_30_percent_of_entries_as_edges():
    chi, brain, mag = sphere_phantom()
    rng = np.random.default_rng(0)
    noisy = mag + 0.02 * rng.standard_normal(mag.shape).astype(np.float32)
    m = gradient_mask(noisy, brain, VS, percentage=0.9)
    assert m.shape == (3,) + brain.shape
    n_edges = (m == 0).sum()
    assert n_edges == pytest.approx(0.9 * brain.sum(), rel=0.02)
    # the inclusion boundaries are edges
    g = np.abs(np.diff(mag, axis=0))
    strong = np.zeros_like(brain)
    strong[:-1] = g > 0.15
    assert (m[0][strong & brain] == 0).mean() > 0.9


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("percentage", [0.05, 0.9, 2.9])
def test_gradient_mask_threshold_is_the_exact_order_statistic(seed, percentage):
    """Against a full sort: the entries above the (n_edges + 1)-th largest gradient are the edges,
    also when most entries are zero (outside the mask) and when n_edges exceeds the non-zero ones."""
    rng = np.random.default_rng(seed)
    shape = (20, 18, 12)
    mask = rng.random(shape) > 0.6
    mag = np.round(rng.random(shape) * 4).astype(np.float32)  # many ties
    m = gradient_mask(mag, mask, VS, percentage=percentage)
    from napari_qsm_ms.qsm.gradients import forward_gradient

    g = np.abs(forward_gradient(np.where(mask, mag, 0).astype(np.float32), VS))
    n_edges = int(round(percentage * mask.sum()))
    thr = np.sort(g.ravel())[g.size - n_edges - 1]
    np.testing.assert_array_equal(m, (g <= thr).astype(np.float32))


def _small_noisy_phantom():
    """A small head phantom (3 mm voxels), its local field with the GRE signal's phase noise
    (SNR 50, 7 T), the brain mask eroded by 2.5 mm, the magnitude and B0."""
    from napari_qsm_ms.io.geometry import b0_direction_voxel
    from napari_qsm_ms.qsm.mask import erode_mask_mm
    from napari_qsm_ms.simulate.forward import field_to_phase_rad, gre_signal
    from napari_qsm_ms.simulate.phantom import make_phantom

    vs = (3.0, 3.0, 3.0)
    ph = make_phantom((52, 64, 56), vs, seed=1, n_lesions=(2, 0, 0))
    sig = gre_signal(ph, te_s=0.0177, b0_t=7.0, snr=50, seed=1)
    clean = field_to_phase_rad(sig.total_field_ppm, 0.0177, 7.0) + np.float32(sig.phase_offset_rad)
    noise = np.angle(np.exp(1j * (sig.phase_rad - clean)))
    mask = erode_mask_mm(ph.brain_mask, vs, 2.5)
    field = np.where(mask, sig.local_field_ppm + noise * ppm_per_radian(0.0177, 7.0), 0).astype(np.float32)
    return field, mask, sig.magnitude, vs, b0_direction_voxel(ph.affine)


def test_medi_default_schedule_reaches_its_criterion_and_the_toolbox_solution():
    """Issue 13, build 7: every inner CG solve of the default reaches the toolbox's relative residual
    (0.01) instead of being cut at a fixed count, Gauss-Newton stops on the relative update, both
    are recorded; at the toolbox's weight the map lies within 3 % NRMSE of the same outer schedule
    with inner solves ten times tighter (1.5 % here; the toolbox's own plain-CG schedule is 2.0 %
    from that, ours 2.3 % from the toolbox's: benchmarks/bench_medi_convergence.py compares them
    on larger phantoms)."""
    from napari_qsm_ms.qsm import defaults

    field, mask, mag, vs, b0 = _small_noisy_phantom()
    ppr = ppm_per_radian(0.0177, 7.0)
    lam = 1000.0 / ppr  # the toolbox's default weight

    def run(**kw):
        info = []
        out = medi_l1(field, mask, mag, vs, b0, ppm_per_rad=ppr, lam=lam, info=info, prior_region="grid", **kw)
        return out, info[0]

    ours, info = run()
    assert info.converged and info.final_change < defaults.MEDI_TOL
    assert info.cg_converged
    assert len(info.cg_iterations) == len(info.cg_residuals) == info.iterations
    assert max(info.cg_residuals) <= defaults.MEDI_CG_TOL
    assert max(info.cg_iterations) < defaults.MEDI_CG_MAX_ITER
    rec = info.record("medi")
    assert rec["medi_cg_converged"] is True and len(rec["medi_cg_residuals"]) == info.iterations
    tight_inner, _ = run(cg_tol=1e-3, cg_max_iter=400)
    assert nrmse_percent(ours, tight_inner, mask) < 3


@pytest.mark.parametrize("shape", [(14, 12, 10), (14, 12, 9)])  # even and odd last axis (Parseval weights)
@pytest.mark.parametrize("precondition", [True, False])
def test_medi_inner_solve_meets_its_residual_on_the_true_operator(shape, precondition):
    # the fused k-space CG must solve (G^T V G + 2 lam D W^2 D) dx = b: its relative residual,
    # recomputed here in image space, is at most the tolerance, and the one it reports matches
    from napari_qsm_ms.qsm.gradients import weighted_gradient_normal
    from napari_qsm_ms.qsm.inversion import _medi_inner_solve

    rng = np.random.default_rng(3)
    vs, b0 = (0.5, 0.5, 1.0), (0.0, 0.2, 0.98)
    d = dipole_kernel(shape, vs, b0, rfft=True)
    weights = rng.uniform(200.0, 1000.0, (3,) + shape).astype(np.float32)
    weights[rng.random(weights.shape) < 0.2] = 0  # edges of the prior
    w2 = rng.uniform(0.2, 1.5, shape).astype(np.float32)
    b = rng.standard_normal(shape).astype(np.float32)
    b -= b.mean()  # constants are the operator's null space (D(0) = 0, G 1 = 0)
    two_lam, m_in = np.float32(300.0), np.ones(shape, bool)
    dx, d_dx, it, rel = _medi_inner_solve(b, weights, vs, d, w2, two_lam, m_in, precondition, tol=0.01, max_iter=300)

    def dconv(x):
        return irfftn(d * rfftn(x.astype(np.float64)), shape)

    ax = weighted_gradient_normal(dx, weights, vs).astype(np.float64) + two_lam * dconv(w2 * dconv(dx))
    true_rel = np.linalg.norm(b - ax) / np.linalg.norm(b)
    assert it < 300 and rel <= 0.01
    assert true_rel == pytest.approx(rel, rel=0.03)
    np.testing.assert_allclose(d_dx, dconv(dx), atol=1e-5 * np.abs(d_dx).max())


def _outside_sources_field(shape, brain):
    """The field (ppm) inside ``brain`` of two balls outside it: what background removal may leave."""
    from ._spheres import ball

    src = np.zeros(shape, np.float32)
    src[ball(shape, VS, (4, 6, 6), 5.0)] = 1.0
    src[ball(shape, VS, (shape[0] - 4, shape[1] - 8, shape[2] - 6), 4.0)] = -1.0
    src[brain] = 0
    return field_ppm(src, VS, (0.0, 0.0, 1.0))


@pytest.mark.parametrize("remainder", [0.0, 1.0])
def test_medi_prior_in_the_mask_lets_the_exterior_take_up_a_background_remainder(remainder):
    """With the prior inside the mask only (the default), the field of sources outside the mask is
    explained outside, not by sheets along the mask's edge: a remainder of 34 % of the local field
    (rms) costs the map < 3 points of NRMSE, against > 10 with the toolbox's prior on the whole grid;
    without one, both are the same."""
    chi, brain, mag = sphere_phantom()
    b0 = (0.0, 0.0, 1.0)
    rem = _outside_sources_field(chi.shape, brain)
    f = field_ppm(chi, VS, b0)
    assert 0.3 < np.sqrt(np.mean(rem[brain] ** 2) / np.mean(f[brain] ** 2)) < 0.4
    noise = 0.002 * np.random.default_rng(0).standard_normal(chi.shape).astype(np.float32)
    data = np.where(brain, f + remainder * rem + noise, 0)
    clean = np.where(brain, f + noise, 0)
    err = {}
    for region in ("mask", "grid"):
        for name, field in (("data", data), ("clean", clean)):
            out = medi_l1(field, brain, mag, VS, b0, ppm_per_rad=1.0, lam=1e4, prior_region=region)
            err[region, name] = nrmse_percent(out, chi, brain)
            assert np.all(out[~brain] == 0)  # the exterior is never returned
    assert err["mask", "data"] < err["mask", "clean"] + 3
    if remainder:
        assert err["grid", "data"] > err["grid", "clean"] + 10
        assert err["mask", "data"] < 0.75 * err["grid", "data"]
    else:
        assert abs(err["mask", "data"] - err["grid", "data"]) < 0.1 * err["grid", "data"]


def test_medi_ends_on_a_full_step_when_the_automatic_weight_freezes_unchanged(monkeypatch):
    """A search that freezes on target at the weight it already had (two misfits in a row on target)
    used to end MEDI at once, so the map came from inner solves cut at the search's cap; now one
    more step at the final weight solves to the tolerance before the stopping rule may end it."""
    from napari_qsm_ms.qsm import defaults, inversion, regularisation

    calls = []

    def freeze_on_the_fourth_check(self, misfit):
        calls.append(misfit)
        if len(calls) >= 4:
            self.tracker.frozen = True  # on target: the weight stays what it was
        return self.weight

    monkeypatch.setattr(regularisation.LambdaSearch, "after_check", freeze_on_the_fourth_check)
    field, mask, mag, vs, b0 = _small_noisy_phantom()
    info, trace = [], []
    medi_l1(field, mask, mag, vs, b0, ppm_per_rad=ppm_per_radian(0.0177, 7.0), lam="auto-noise", noise_sd=0.02,
            info=info, trace=trace)
    info = info[0]
    steps_searching = 5  # steps 1-5 ran while the weight could still move (the checks follow steps 2-5)
    assert len(calls) == 4 and info.iterations > steps_searching
    assert trace[steps_searching - 1]["update"] < 0.1  # the old rule would have stopped after step 5
    assert all(n <= inversion.SEARCH_CG_MAX_ITER for n in info.cg_iterations[:steps_searching])
    last_n, last_res = info.cg_iterations[-1], info.cg_residuals[-1]
    assert last_n > inversion.SEARCH_CG_MAX_ITER or last_res <= defaults.MEDI_CG_TOL
    assert info.converged and info.final_change < 0.1


def test_convergence_warnings_name_the_solver_its_cap_the_last_change_and_the_option():
    from napari_qsm_ms.qsm.inversion import convergence_warnings

    medi = dict(medi_converged=False, medi_iterations=10, medi_final_change=0.151, medi_final_change_in_mask=0.071,
                medi_criterion="relative update ||dx||/||x|| < 0.1; each inner CG to relative residual 0.01")
    (line,) = convergence_warnings(medi)
    assert line == ("MEDI stopped at its cap of 10 Gauss-Newton steps before its stopping rule (relative update "
                    "||dx||/||x|| < 0.1); the last one still changed chi by 15.1 % over the padded grid (7.1 % in "
                    "the mask); raise the cap (--medi-max-iter; 'MEDI steps (max)' in the QSM dock; medi_max_iter in "
                    "Python)")
    tv = dict(tv_converged=False, tv_iterations=60, tv_final_change=0.004, tv_final_change_in_mask=None,
              tv_criterion="relative change of chi < 0.001")
    (line,) = convergence_warnings(tv)
    assert line.startswith("TV stopped at its cap of 60 ADMM iterations") and "--tv-max-iter" in line
    assert "chi by 0.4 %;" in line and "padded grid" not in line
    assert convergence_warnings(dict(medi_converged=True, tv_converged=True)) == []
    assert convergence_warnings(dict(tkd_threshold=0.19)) == []  # no iterative inversion ran


def test_no_cap_warning_when_only_the_free_exterior_still_moves():
    """At the cap, the grid's update above the tolerance but the reported map's (in the mask) below it:
    no warning (the sidecar keeps converged False and both ratios); at or above it in the mask, the
    warning stays."""
    from napari_qsm_ms.qsm.inversion import convergence_warnings

    base = dict(medi_converged=False, medi_iterations=10, medi_final_change=0.151, medi_tolerance=0.1,
                medi_criterion="relative update ||dx||/||x|| < 0.1")
    assert convergence_warnings(dict(base, medi_final_change_in_mask=0.067)) == []
    (line,) = convergence_warnings(dict(base, medi_final_change_in_mask=0.1))
    assert "(10 % in the mask)" in line
    (line,) = convergence_warnings(dict(base, medi_final_change_in_mask=None))  # no ratio in the mask
    assert line.startswith("MEDI stopped at its cap of 10")


def test_medi_records_the_tolerance_its_update_is_compared_with():
    field, mask, mag, vs, b0 = _small_noisy_phantom()
    info = []
    medi_l1(field, mask, mag, vs, b0, ppm_per_rad=ppm_per_radian(0.0177, 7.0), lam=2000.0, max_iter=1,
            tol_norm_ratio=0.05, info=info)
    record = info[0].record("medi")
    assert record["medi_tolerance"] == 0.05 and record["medi_converged"] is False
    assert record["medi_final_change_in_mask"] == pytest.approx(1.0)  # one step from zero: dx = x


@pytest.mark.parametrize("region", ["mask", "grid"])
def test_medi_stops_on_the_update_over_the_grid_and_records_it_in_the_mask(monkeypatch, region):
    """Gauss-Newton's ||dx|| / ||x|| is the toolbox's, over the padded grid, whatever the prior
    region; the same ratio in the mask (the reported map) is recorded beside it. Both checked
    against the steps recomputed from the solves' dx."""
    from napari_qsm_ms.qsm import inversion

    steps = []
    solve = inversion._medi_inner_solve

    def recording(b, weights, vs, d, w2, two_lam, m_in, *args, **kwargs):
        out = solve(b, weights, vs, d, w2, two_lam, m_in, *args, **kwargs)
        steps.append((out[0].astype(np.float64), m_in))
        return out

    monkeypatch.setattr(inversion, "_medi_inner_solve", recording)
    field, mask, mag, vs, b0 = _small_noisy_phantom()
    info, trace = [], []
    medi_l1(field, mask, mag, vs, b0, ppm_per_rad=ppm_per_radian(0.0177, 7.0), lam=2000.0, prior_region=region,
            info=info, trace=trace)
    x = np.zeros_like(steps[0][0])
    for (dx, m_in), t in zip(steps, trace):
        x += dx
        assert t["update"] == pytest.approx(np.linalg.norm(dx) / np.linalg.norm(x), rel=1e-4)
        assert t["update_in_mask"] == pytest.approx(np.linalg.norm(dx[m_in]) / np.linalg.norm(x[m_in]), rel=1e-4)
    info = info[0]
    assert info.final_change == trace[-1]["update"] and info.final_change_in_mask == trace[-1]["update_in_mask"]
    assert info.converged == (info.final_change < 0.1)
    assert info.record("medi")["medi_final_change_in_mask"] == pytest.approx(info.final_change_in_mask, rel=1e-5)
