"""How Gaussian are codes? Per-dimension Kolmogorov-Smirnov tests against N(0, 1).

Definition: for codes (N, D), run a two-sided one-sample KS test of each dimension's N values
against the standard normal CDF; report the fraction of dimensions whose p-value is >= alpha
(the test does not reject normality at level alpha), and the mean p-value. Upstream logged
only the mean p-value of the flow-Gaussianized posteriors (reference spec §5.6).
"""

import numpy as np
from scipy import stats


def ks_normal(codes, alpha: float = 0.05) -> dict:
  codes = np.asarray(codes, np.float64)
  if codes.ndim != 2 or len(codes) < 2:
    raise ValueError(f'KS test needs codes of shape (N >= 2, D), got {codes.shape}.')
  p = stats.ks_1samp(codes, stats.norm.cdf, axis=0).pvalue
  return {'ks_pass_fraction': float(np.mean(p >= alpha)), 'ks_mean_p': float(np.mean(p))}
