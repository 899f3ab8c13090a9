"""Calibration observers: the real range [lo, hi] an activation tensor is quantized over.

A float model carries no activation ranges; post-training quantization picks them from the values
the tensor takes on calibration inputs. Too wide a range wastes levels on rare outliers (rounding
noise grows with the step), too narrow a range clips them; each method trades the two differently:

- `minmax`: the extremes seen. Never clips the calibration data; sensitive to one outlier.
- `ema`: exponential moving average of the extremes of each batch of 8 inputs (Jacob et al. 2018,
  decay 0.9), so an outlier in one batch moves the range only a little.
- `percentile`: the 99.99th percentile of the magnitudes.
- `kl`: TensorRT's search (Migacz 2017): the threshold whose quantized histogram is closest, in KL
  divergence, to the clipped one.
- `aciq`: analytical clipping (Banner et al. 2019): fit a Laplace or a Gaussian (whichever is more
  likely) and take the threshold that minimises the modelled clipping + rounding MSE.
- `mse`: OCTAV (Sakr et al. 2022): the MSE-optimal threshold of the empirical distribution, found by
  the Newton-Raphson fixed point s = E[|x| 1{|x|>s}] / (P(|x|<=s) / (12 L^2) + P(|x|>s)).

Clipping methods work on magnitudes m with L levels over [0, T]. A tensor that is never negative
(after a ReLU) is one-sided: m = x, L = 2**bits, and its exact zeros (the clamp's output, represented
exactly) are left out. Any other tensor is clipped symmetrically around its median c: m = |x - c|,
L = 2**(bits - 1). The range is [max(min, c - T), min(max, c + T)], widened to contain 0 so that
zero stays exact (TFLite's asymmetric scheme requires it).
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

METHODS = ("minmax", "ema", "percentile", "kl", "aciq", "mse")

EMA_DECAY = 0.9
EMA_BATCH = 8
PERCENTILE = 99.99
KL_BINS_PER_LEVEL = 16
KL_MAX_CLIPPED = 0.01


def observe(samples: np.ndarray, method: str, bits: int = 8) -> tuple[float, float]:
    """The range (lo <= 0 <= hi) of one tensor from its calibration values, [N, ...] (one row per input)."""
    if method not in METHODS:
        raise ValueError(f"unknown calibration method {method!r}; expected one of {', '.join(METHODS)}")
    samples = np.asarray(samples, np.float64)
    lo, hi = float(samples.min()), float(samples.max())
    if method == "ema":
        lo, hi = ema_range(samples.reshape(len(samples), -1))
    elif method != "minmax" and hi > lo:
        one_sided = lo >= 0.0
        center = 0.0 if one_sided else float(np.median(samples))
        magnitudes = samples[samples > 0] if one_sided else np.abs(samples - center).ravel()
        levels = 1 << bits if one_sided else 1 << (bits - 1)
        if magnitudes.size and magnitudes.max() > 0:
            threshold = _THRESHOLDS[method](magnitudes, levels)
            lo, hi = max(lo, center - threshold), min(hi, center + threshold)
    return min(lo, 0.0), max(hi, 0.0)


def ema_range(rows: np.ndarray, decay: float = EMA_DECAY, batch: int = EMA_BATCH) -> tuple[float, float]:
    """EMA of each batch's minimum and maximum (batches of `batch` consecutive rows, as training
    steps see them), started at the first batch's."""
    batches = [rows[i:i + batch] for i in range(0, len(rows), batch)]
    lo, hi = float(batches[0].min()), float(batches[0].max())
    for b in batches[1:]:
        lo = decay * lo + (1 - decay) * float(b.min())
        hi = decay * hi + (1 - decay) * float(b.max())
    return lo, hi


def percentile_threshold(magnitudes: np.ndarray, levels: int, percent: float = PERCENTILE) -> float:
    return float(np.percentile(magnitudes, percent))


# ---- KL divergence (TensorRT) ----

def kl_threshold(magnitudes: np.ndarray, levels: int, bins: int | None = None,
                 max_clipped: float = KL_MAX_CLIPPED) -> float:
    """The upper edge of the histogram prefix whose `levels`-level quantization has the least
    KL(P || Q): P is the prefix with the clipped tail added to its last bin, Q spreads each
    level's mass evenly over the bins of that level that were not empty.

    Prefixes that clip more than `max_clipped` of the values are not candidates: when most of
    the mass sits in P's last bin, Q (built from the unclipped bins) is a spike there too, and
    the divergence of two spikes is near zero however much was clipped (a distribution far from
    zero, such as a bottleneck layer's, would otherwise be clipped to its minimum)."""
    bins = bins or KL_BINS_PER_LEVEL * levels
    hist, edges = np.histogram(magnitudes, bins=bins, range=(0.0, float(magnitudes.max())))
    hist = hist.astype(np.float64)
    tail = np.concatenate([np.cumsum(hist[::-1])[::-1], [0.0]])  # tail[i] = sum(hist[i:])
    best, best_i = np.inf, bins
    for i in range(levels, bins + 1):
        if tail[i] > max_clipped * tail[0]:
            continue
        p = hist[:i].copy()
        p[-1] += tail[i]
        divergence = kl_divergence(p, _quantized_histogram(hist[:i], levels))
        if divergence < best:
            best, best_i = divergence, i
    return float(edges[best_i])


def _quantized_histogram(hist: np.ndarray, levels: int) -> np.ndarray:
    """Merge `hist` into `levels` groups of consecutive bins, then spread each group's total over
    its non-empty bins (an empty bin stays empty: the quantized value cannot land there either)."""
    bounds = np.round(np.linspace(0, hist.size, levels + 1)).astype(int)
    group = np.searchsorted(bounds, np.arange(hist.size), side="right") - 1
    used = hist > 0
    totals = np.bincount(group, weights=hist, minlength=levels)
    counts = np.bincount(group, weights=used, minlength=levels)
    return np.where(used, totals[group] / np.maximum(counts[group], 1), 0.0)


def kl_divergence(p: np.ndarray, q: np.ndarray, eps: float = 1e-4) -> float:
    """KL(p || q) of two histograms after normalisation; where q is empty but p is not, q gets
    `eps` of mass (taken proportionally from its other bins), as TensorRT smooths it."""
    p = p / p.sum()
    q = q / q.sum()
    empty = q == 0
    if np.any(empty & (p > 0)):
        q = np.where(empty, eps, q * (1 - eps * empty.sum()))
    used = p > 0
    return float(np.sum(p[used] * np.log(p[used] / q[used])))


# ---- ACIQ (Banner et al.): Laplace and Gaussian priors ----

def aciq_alpha(prior: str, levels: int) -> float:
    """The clipping threshold in units of b (Laplace) or sigma (Gaussian) that minimises
    clip MSE + alpha^2 / (12 L^2) for magnitudes of a unit-scale prior (L levels over [0, alpha]).

    Laplace: 2 e^-a + a^2/(12 L^2), stationary at a e^a = 12 L^2 (8 bits, L = 128: a = 9.89).
    Gaussian: (a^2 + 1) erfc(a / sqrt 2) - sqrt(2/pi) a e^(-a^2/2) + a^2/(12 L^2) (8 bits: 3.92).
    """
    k = 1.0 / (12.0 * levels * levels)
    if prior == "laplace":
        slope = lambda a: -2.0 * math.exp(-a) + 2.0 * k * a  # noqa: E731
    elif prior == "gaussian":
        slope = lambda a: (2 * a * math.erfc(a / math.sqrt(2))  # noqa: E731
                           - 2 * math.sqrt(2 / math.pi) * math.exp(-a * a / 2) + 2.0 * k * a)
    else:
        raise ValueError(f"unknown ACIQ prior {prior!r}")
    return _bisect(slope, 1e-6, 64.0)


def _bisect(f: Callable[[float], float], lo: float, hi: float) -> float:
    """The root of an increasing f on [lo, hi] (f(lo) < 0 < f(hi)), to double precision."""
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if f(mid) < 0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def aciq_threshold(magnitudes: np.ndarray, levels: int) -> float:
    """Fit both priors to the magnitudes by maximum likelihood (exponential: b = mean; half-normal:
    sigma = rms) and clip with the more likely one."""
    b = float(np.mean(magnitudes))
    sigma = float(np.sqrt(np.mean(magnitudes ** 2)))
    laplace_nll = math.log(b) + 1.0
    gaussian_nll = math.log(sigma) + 0.5 * math.log(math.pi / 2) + 0.5
    if laplace_nll <= gaussian_nll:
        return aciq_alpha("laplace", levels) * b
    return aciq_alpha("gaussian", levels) * sigma


# ---- OCTAV (Sakr et al.): MSE-optimal clipping by Newton-Raphson ----

def clipping_mse(magnitudes: np.ndarray, threshold: float, levels: int) -> float:
    """The modelled MSE of clipping at `threshold`: rounding noise T^2 / (12 L^2) for values inside,
    squared clipping error for values outside."""
    inside = magnitudes <= threshold
    rounding = threshold ** 2 / (12.0 * levels * levels) * np.mean(inside)
    clipping = np.mean(np.where(inside, 0.0, (magnitudes - threshold) ** 2))
    return float(rounding + clipping)


def mse_threshold(magnitudes: np.ndarray, levels: int, tol: float = 1e-9, max_iter: int = 200) -> float:
    """OCTAV's iteration from the mean magnitude until the threshold stops moving."""
    k = 1.0 / (12.0 * levels * levels)
    s = float(np.mean(magnitudes))
    for _ in range(max_iter):
        outside = magnitudes > s
        if not outside.any():  # every value inside: only rounding noise, least at the maximum
            return float(magnitudes.max())
        new = float(np.sum(magnitudes[outside]) / (k * np.sum(~outside) + np.sum(outside)))
        if abs(new - s) <= tol * s:
            return new
        s = new
    return s


_THRESHOLDS: dict[str, Callable[[np.ndarray, int], float]] = {
    "percentile": percentile_threshold,
    "kl": kl_threshold,
    "aciq": aciq_threshold,
    "mse": mse_threshold,
}
