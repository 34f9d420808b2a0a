"""Fréchet distance between feature sets, and BeLFusion's motion classifier that provides them.

Definition (stochastic-HMP spec §3.8). Fit a Gaussian to each feature set (mean; covariance as
`np.cov(rowvar=False)`, i.e. unbiased) and return

  FD = ||μ₁ − μ₂||² + Tr(Σ₁ + Σ₂ − 2 (Σ₁ Σ₂)^{1/2}).

The trace term is computed so that the result is non-negative by construction, whatever
the CPU or BLAS: Tr((Σ₁ Σ₂)^{1/2}) = Σ_k √λ_k with λ_k the eigenvalues of the symmetric PSD
matrix Σ₁^{1/2} Σ₂ Σ₁^{1/2} (Σ₁^{1/2} from a symmetric eigendecomposition); eigenvalues that
round-off pushes below zero are clipped to zero, and so is the final distance. Mathematically
this is the same quantity as the usual recipe's `sqrtm(Σ₁ Σ₂)` (which can return complex values
and small negative distances on near-identical sets), without its ε-ridge retry.

FID for stochastic HMP on H36M (BeLFusion) = FD between the classifier features of the N GT
futures and of the N·K predictions. It is only computed when a classifier checkpoint is
available: the features are those of BeLFusion's `ClassifierForFID`, implemented here as
`MotionClassifier`:

  2-layer GRU (input 48, hidden 128) over the (T_p = 100, 48) root-relative metre sequence;
  the top layer's output at the last step -> Linear(128 → 30) -> tanh = the 30-D FID feature
  -> Linear(30 → 15) = action logits.

Deviation: upstream draws the GRU's initial hidden state from N(0, 1) on every call, making the
features (slightly) random; we start from zeros, so features are deterministic. Scores from the
same weights therefore differ a little from upstream's.

Weights load from an **npz** of named float arrays (no torch/pickle loading), named like the
PyTorch state dict of `ClassifierForFID` (convert with
`np.savez(path, **{k: v.numpy() for k, v in state_dict.items()})`):

  recurrent.weight_ih_l0 (384, 48)    recurrent.weight_hh_l0 (384, 128)
  recurrent.bias_ih_l0   (384,)       recurrent.bias_hh_l0   (384,)
  recurrent.weight_ih_l1 (384, 128)   recurrent.weight_hh_l1 (384, 128)
  recurrent.bias_ih_l1   (384,)       recurrent.bias_hh_l1   (384,)
  linear1.weight (30, 128)  linear1.bias (30,)
  linear2.weight (15, 30)   linear2.bias (15,)

(3H = 384 rows in PyTorch's GRU gate order reset, update, candidate; Linear weights are
(out, in) as in PyTorch.)
"""

import os
from typing import Protocol

from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np

from bds_jax.metrics import recurrent


class FeatureExtractor(Protocol):
  """Anything that maps (B, T, D) motion sequences to (B, F) features."""

  def __call__(self, sequences) -> jax.Array:
    ...


def gaussian_stats(features) -> tuple[np.ndarray, np.ndarray]:
  """Mean (F,) and unbiased covariance (F, F) of (N, F) features, float64."""
  x = np.asarray(features, np.float64)
  if x.ndim != 2 or len(x) < 2:
    raise ValueError(f'Need (N >= 2, F) features for a covariance, got shape {x.shape}.')
  return x.mean(axis=0), np.atleast_2d(np.cov(x, rowvar=False))


def _psd_sqrt(m: np.ndarray) -> np.ndarray:
  """Symmetric square root of a symmetric PSD matrix (eigenvalues below zero clipped)."""
  lam, vec = np.linalg.eigh(0.5 * (m + m.T))
  return (vec * np.sqrt(np.clip(lam, 0.0, None))) @ vec.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
  """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2) (see module docstring)."""
  mu1 = np.atleast_1d(np.asarray(mu1, np.float64))
  mu2 = np.atleast_1d(np.asarray(mu2, np.float64))
  s1 = np.atleast_2d(np.asarray(sigma1, np.float64))
  s2 = np.atleast_2d(np.asarray(sigma2, np.float64))
  if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (len(mu1), len(mu1)):
    raise ValueError(f'Mismatched Gaussians: means {mu1.shape}, {mu2.shape}; covariances '
                     f'{s1.shape}, {s2.shape}.')
  for name, a in (('mean 1', mu1), ('covariance 1', s1), ('mean 2', mu2), ('covariance 2', s2)):
    if not np.all(np.isfinite(a)):
      raise ValueError(f'Fréchet distance: {name} has non-finite entries (NaN or inf features?).')
  root1 = _psd_sqrt(s1)
  inner = root1 @ s2 @ root1
  lam = np.linalg.eigvalsh(0.5 * (inner + inner.T))
  trace_covmean = np.sum(np.sqrt(np.clip(lam, 0.0, None)))
  diff = mu1 - mu2
  d = diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * trace_covmean
  return float(max(d, 0.0))


def fid_from_features(features_a, features_b) -> float:
  """Fréchet distance between the Gaussians fitted to two (N >= 2, F) feature sets.

  With no more samples than features (e.g. 2048-d image features in a quick evaluation) the
  same quantity is computed in the samples' space, exactly: with centred features A (n1, F)
  and B (n2, F), Σ1 = AᵀA / (n1 − 1), Σ2 = BᵀB / (n2 − 1), the nonzero eigenvalues of
  Σ1^½ Σ2 Σ1^½ are those of (A Bᵀ)(A Bᵀ)ᵀ / ((n1 − 1)(n2 − 1)), so Tr((Σ1 Σ2)^½) is the sum of
  the singular values of A Bᵀ over √((n1 − 1)(n2 − 1)): an (n1, n2) SVD instead of two (F, F)
  eigendecompositions.
  """
  a = np.asarray(features_a, np.float64)
  b = np.asarray(features_b, np.float64)
  if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
    raise ValueError(f'FID needs two (N >= 2, F) feature sets, got {a.shape} and {b.shape}.')
  if min(len(a), len(b)) > a.shape[1]:
    return frechet_distance(*gaussian_stats(a), *gaussian_stats(b))
  if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
    raise ValueError('FID: non-finite features (NaN or inf inputs?).')
  mu_a, mu_b = a.mean(0), b.mean(0)
  ca, cb = a - mu_a, b - mu_b
  na, nb = len(a) - 1, len(b) - 1
  trace_covmean = np.sum(np.linalg.svd(ca @ cb.T, compute_uv=False)) / np.sqrt(na * nb)
  diff = mu_a - mu_b
  d = diff @ diff + np.sum(ca * ca) / na + np.sum(cb * cb) / nb - 2.0 * trace_covmean
  return float(max(d, 0.0))


def extract_features(extractor: FeatureExtractor, sequences, batch_size: int = 1024) -> np.ndarray:
  """Runs `extractor` over (N, T, D) sequences in batches; returns (N, F) float64 features."""
  x = np.asarray(sequences, np.float32)
  out = [np.asarray(extractor(jnp.asarray(x[i:i + batch_size])))
         for i in range(0, len(x), batch_size)]
  return np.concatenate(out).astype(np.float64)


def fid(extractor: FeatureExtractor, real_sequences, generated_sequences,
        batch_size: int = 1024) -> float:
  """FID between GT sequences (N, T, D) and generated ones (M, T, D) under `extractor`."""
  return fid_from_features(extract_features(extractor, real_sequences, batch_size),
                           extract_features(extractor, generated_sequences, batch_size))


def fid_from_checkpoint(path: str | None, real_sequences, generated_sequences,
                        batch_size: int = 1024) -> float | None:
  """FID under the classifier in npz `path`; None when no checkpoint is given (FID skipped)."""
  if not path:
    return None
  extractor = feature_extractor(load_motion_classifier(path))
  return fid(extractor, real_sequences, generated_sequences, batch_size)


# ----------------------------------------------------------------------------------------------
# BeLFusion's FID motion classifier.
# ----------------------------------------------------------------------------------------------
_GRU_NAMES = ('weight_ih', 'weight_hh', 'bias_ih', 'bias_hh')


class GRULayer(nnx.Module):
  """One GRU layer's parameters in PyTorch's layout (see `recurrent`)."""

  def __init__(self, in_dim: int, hidden: int, rngs: nnx.Rngs):
    init = recurrent.init_gru_layer(rngs.params(), in_dim, hidden)
    for name in _GRU_NAMES:
      setattr(self, name, nnx.Param(init[name]))

  def as_dict(self) -> dict:
    return {name: getattr(self, name)[...] for name in _GRU_NAMES}


class MotionClassifier(nnx.Module):
  """BeLFusion's `ClassifierForFID` in Flax NNX, with a zero initial GRU state (see module doc).

  Input: (B, T, 48) root-relative 16-joint sequences in metres (batch, time, features; upstream
  takes (B, 48, T)).
  """

  def __init__(self, input_size: int = 48, hidden_size: int = 128, num_layers: int = 2,
               feature_size: int = 30, num_classes: int = 15, *, rngs: nnx.Rngs):
    self.gru = nnx.List([GRULayer(input_size if i == 0 else hidden_size, hidden_size, rngs)
                         for i in range(num_layers)])
    self.linear1 = nnx.Linear(hidden_size, feature_size, rngs=rngs)
    self.linear2 = nnx.Linear(feature_size, num_classes, rngs=rngs)

  def features(self, sequences) -> jax.Array:
    """(B, T, 48) -> (B, 30) tanh features, the FID embedding."""
    layers = [layer.as_dict() for layer in self.gru]
    last = recurrent.gru_stack_last_output(layers, jnp.asarray(sequences, jnp.float32))
    return jnp.tanh(self.linear1(last))

  def __call__(self, sequences) -> jax.Array:
    """(B, T, 48) -> (B, 15) action logits."""
    return self.linear2(self.features(sequences))


def feature_extractor(model: MotionClassifier) -> FeatureExtractor:
  """A jitted (B, T, 48) -> (B, 30) function of the model's FID features."""
  graphdef, state = nnx.split(model)

  @jax.jit
  def run(state, sequences):
    return nnx.merge(graphdef, state).features(sequences)

  return lambda sequences: run(state, sequences)


def expected_npz_shapes(input_size: int = 48, hidden_size: int = 128, num_layers: int = 2,
                        feature_size: int = 30, num_classes: int = 15) -> dict:
  """Array name -> shape of the npz that `load_motion_classifier` reads."""
  shapes = {}
  for i in range(num_layers):
    in_dim = input_size if i == 0 else hidden_size
    shapes[f'recurrent.weight_ih_l{i}'] = (3 * hidden_size, in_dim)
    shapes[f'recurrent.weight_hh_l{i}'] = (3 * hidden_size, hidden_size)
    shapes[f'recurrent.bias_ih_l{i}'] = (3 * hidden_size,)
    shapes[f'recurrent.bias_hh_l{i}'] = (3 * hidden_size,)
  shapes['linear1.weight'] = (feature_size, hidden_size)
  shapes['linear1.bias'] = (feature_size,)
  shapes['linear2.weight'] = (num_classes, feature_size)
  shapes['linear2.bias'] = (num_classes,)
  return shapes


def load_motion_classifier(path: str) -> MotionClassifier:
  """Builds a `MotionClassifier` from an npz of named arrays (names and shapes: module doc)."""
  if not os.path.exists(path):
    raise FileNotFoundError(f'FID classifier weights {path} do not exist.')
  with np.load(path, allow_pickle=False) as f:
    arrays = {k: np.asarray(f[k], np.float32) for k in f.files}
  expected = expected_npz_shapes()
  missing = sorted(set(expected) - set(arrays))
  unexpected = sorted(set(arrays) - set(expected))
  if missing or unexpected:
    raise ValueError(f'{path}: not a BeLFusion FID classifier npz. Missing arrays {missing}; '
                     f'unexpected arrays {unexpected}. Expected names and shapes: {expected}.')
  wrong = {k: arrays[k].shape for k in expected if arrays[k].shape != expected[k]}
  if wrong:
    raise ValueError(f'{path}: arrays with wrong shapes {wrong}; expected {expected}.')
  model = MotionClassifier(rngs=nnx.Rngs(0))
  for i, layer in enumerate(model.gru):
    for name in _GRU_NAMES:
      getattr(layer, name)[...] = jnp.asarray(arrays[f'recurrent.{name}_l{i}'])
  for lin, name in ((model.linear1, 'linear1'), (model.linear2, 'linear2')):
    lin.kernel[...] = jnp.asarray(arrays[f'{name}.weight'].T)  # flax kernels are (in, out)
    lin.bias[...] = jnp.asarray(arrays[f'{name}.bias'])
  return model


def save_motion_classifier(model: MotionClassifier, path: str):
  """Writes `model` in the npz layout `load_motion_classifier` reads (for tests and exports)."""
  arrays = {}
  for i, layer in enumerate(model.gru):
    for name, value in layer.as_dict().items():
      arrays[f'recurrent.{name}_l{i}'] = np.asarray(value)
  for lin, name in ((model.linear1, 'linear1'), (model.linear2, 'linear2')):
    arrays[f'{name}.weight'] = np.asarray(lin.kernel[...]).T
    arrays[f'{name}.bias'] = np.asarray(lin.bias[...])
  np.savez(path, **arrays)
