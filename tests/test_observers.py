"""Calibration observers against cases computed by hand or by brute force."""
from __future__ import annotations

import math

import numpy as np
import pytest

from mcugen.quant import observers as obs


def test_minmax_includes_zero():
    assert obs.observe(np.array([[-1.0, 2.0], [0.5, 3.0]]), "minmax") == (-1.0, 3.0)
    assert obs.observe(np.array([[1.0, 2.0]]), "minmax") == (0.0, 2.0)  # zero must stay exact
    assert obs.observe(np.array([[-3.0, -1.0]]), "minmax") == (-3.0, 0.0)


def test_ema_of_batch_extremes():
    rows = np.array([[0.0, 1.0], [-2.0, 3.0]])
    # started at the first batch (0, 1), then 0.5 * previous + 0.5 * batch
    assert obs.ema_range(rows, decay=0.5, batch=1) == (-1.0, 2.0)
    # one batch holding both rows is just min/max
    assert obs.ema_range(rows, decay=0.5, batch=2) == (-2.0, 3.0)


def test_percentile_of_magnitudes():
    values = np.arange(1, 10001, dtype=np.float64)
    # numpy's linear interpolation: rank 0.9999 * 9999 = 9998.0001 -> 9999.0001
    assert obs.percentile_threshold(values, 256) == pytest.approx(9999.0001)
    lo, hi = obs.observe(np.concatenate([[0.0] * 5000, values])[None], "percentile")
    assert lo == 0.0 and hi == pytest.approx(9999.0001)  # one-sided: exact zeros left out


def test_kl_threshold_hand_computed():
    """Histogram [6, 2, 1, 1] over 4 bins of width 0.875, quantized to 2 levels:
    i=2: P=[.6,.4], Q=[.75,.25]                   KL = .6 ln .8 + .4 ln 1.6          = 0.0541
    i=3: P=[.6,.2,.2], Q=[4,4,1]/9                KL = .6 ln 1.35 + .2 ln .45 + .2 ln 1.8 = 0.1379
    i=4: P=[.6,.2,.1,.1], Q=[.4,.4,.1,.1]         KL = .6 ln 1.5 + .2 ln .5          = 0.1046
    so the threshold is the upper edge of bin 2: 1.75."""
    magnitudes = np.repeat([0.5, 1.5, 2.5, 3.5], [6, 2, 1, 1])
    p = lambda *v: np.array(v, np.float64)  # noqa: E731
    assert obs.kl_divergence(p(6, 4), p(6, 2)) == pytest.approx(.6 * math.log(.8) + .4 * math.log(1.6))
    assert obs.kl_divergence(p(6, 2, 1, 1), p(4, 4, 1, 1)) == pytest.approx(.6 * math.log(1.5) + .2 * math.log(.5))
    assert obs.kl_threshold(magnitudes, levels=2, bins=4, max_clipped=1.0) == pytest.approx(1.75)
    # the default guard refuses to clip 40 % of the values
    assert obs.kl_threshold(magnitudes, levels=2, bins=4) == pytest.approx(3.5)


def test_kl_on_known_distributions():
    rng = np.random.default_rng(0)
    uniform = rng.uniform(0, 1, 100_000)
    assert obs.kl_threshold(uniform, 128) > 0.99  # nothing to gain by clipping a uniform
    # Laplace(b = 1), 8 bits symmetric: KL lands near the MSE-optimal 9.89 b, well inside the max
    laplace = np.abs(rng.laplace(0.0, 1.0, 400_000))
    threshold = obs.kl_threshold(laplace, 128)
    assert 9.0 < threshold < 11.5 < laplace.max()


@pytest.mark.parametrize("bits, laplace, gaussian", [(2, 2.83, 1.71), (3, 3.89, 2.15), (4, 5.03, 2.55), (8, 9.89, 3.92)])
def test_aciq_alpha_matches_banner(bits, laplace, gaussian):
    """Banner et al.'s optimal clipping values (symmetric, 2**(bits-1) levels per side)."""
    levels = 1 << (bits - 1)
    assert obs.aciq_alpha("laplace", levels) == pytest.approx(laplace, abs=0.01)
    assert obs.aciq_alpha("gaussian", levels) == pytest.approx(gaussian, abs=0.01)
    a = obs.aciq_alpha("laplace", levels)  # the stationarity condition a e^a = 12 L^2
    assert a * math.exp(a) == pytest.approx(12 * levels ** 2, rel=1e-9)


def test_aciq_fits_the_right_prior():
    rng = np.random.default_rng(1)
    laplace = rng.laplace(0.0, 2.0, 400_000)
    lo, hi = obs.observe(laplace[None], "aciq")
    assert hi == pytest.approx(9.8968 * 2.0, rel=0.02) and lo == pytest.approx(-hi, rel=0.02)
    gauss = rng.normal(0.0, 1.0, 400_000)
    assert obs.aciq_threshold(np.abs(gauss), 128) == pytest.approx(3.9240, rel=0.02)


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_octav_converges_to_brute_force_minimum(bits):
    """OCTAV's fixed point drops the k s^2 f(s) term of dJ/ds (f the density at s), so at 2 bits
    it lands a little off the exact minimum: within 0.5 % of the least MSE, 3 % of its argmin."""
    rng = np.random.default_rng(bits)
    magnitudes = np.abs(rng.laplace(0.0, 1.0, 50_000))
    levels = 1 << (bits - 1)
    s = obs.mse_threshold(magnitudes, levels)
    grid = np.linspace(0.05, magnitudes.max(), 4000)
    costs = [obs.clipping_mse(magnitudes, t, levels) for t in grid]
    best = grid[int(np.argmin(costs))]
    assert obs.clipping_mse(magnitudes, s, levels) <= min(costs) * 1.005
    assert s == pytest.approx(best, rel=0.03)


def test_methods_are_deterministic_and_clip_inside_minmax():
    rng = np.random.default_rng(2)
    samples = np.concatenate([rng.normal(0.5, 1.0, (16, 500)), np.full((16, 1), 30.0)], axis=1)
    for method in obs.METHODS:
        lo, hi = obs.observe(samples, method)
        assert (lo, hi) == obs.observe(samples, method)
        assert samples.min() <= lo <= 0.0 <= hi <= samples.max()
    with pytest.raises(ValueError, match="unknown calibration method"):
        obs.observe(samples, "magic")
