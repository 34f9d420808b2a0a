"""Per-dimension z-scoring of flattened poses (reference spec §1.3).

Statistics come from the TRAIN split only (upstream pooled all subjects, leaking the test
subjects into the model's input scaling). They are saved next to the checkpoint, so evaluation
and figures un-normalise with exactly the numbers the model was trained with.
"""

import dataclasses
import json
import os
from typing import Sequence

import numpy as np

from bds_jax import errors
from bds_jax import skeleton

MIN_STD = 1e-4  # dims below this are left unscaled (std set to 1), as upstream


@dataclasses.dataclass(frozen=True)
class Normalizer:
  mean: np.ndarray  # (51,)
  std: np.ndarray   # (51,)

  @classmethod
  def fit(cls, poses: Sequence[np.ndarray]) -> 'Normalizer':
    """Statistics over every frame of the given (frames, 17, 3) sequences, in float64."""
    flat = np.concatenate([np.asarray(p, np.float64).reshape(len(p), -1) for p in poses])
    std = flat.std(axis=0)
    std = np.where(std < MIN_STD, 1.0, std)
    return cls(flat.mean(axis=0).astype(np.float32), std.astype(np.float32))

  def normalize(self, poses):
    """(..., 17, 3) metres -> (..., 51) z-scores."""
    poses = np.asarray(poses, np.float32)
    return (poses.reshape(*poses.shape[:-2], skeleton.POSE_DIM) - self.mean) / self.std

  def denormalize(self, x):
    """(..., 51) z-scores -> (..., 17, 3) metres. Works on numpy and jax arrays."""
    y = x * self.std + self.mean
    return y.reshape(*y.shape[:-1], skeleton.NUM_JOINTS, 3)

  def save(self, path: str):
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
      json.dump({'mean': self.mean.tolist(), 'std': self.std.tolist(),
                 'layout': 'joint-major 17x3, metres'}, f)
    os.replace(tmp, path)  # atomic: never a half-written file

  @classmethod
  def load(cls, path: str) -> 'Normalizer':
    if not os.path.exists(path):
      raise FileNotFoundError(
          f'Normalization file {path} does not exist; it is written by train.py next to the '
          'checkpoint. Point --workdir at a training run directory.')
    try:
      with open(path) as f:
        d = json.load(f)
      mean = np.asarray(d['mean'], np.float32)
      std = np.asarray(d['std'], np.float32)
    except (ValueError, KeyError, TypeError) as e:
      raise errors.InputError(f'Normalization file {path} is not valid JSON with "mean" and '
                              f'"std" lists ({e}): the run directory is damaged.') from None
    if mean.shape != (skeleton.POSE_DIM,) or std.shape != (skeleton.POSE_DIM,):
      raise errors.InputError(f'Normalization file {path}: mean and std must each have '
                              f'{skeleton.POSE_DIM} values, got {mean.shape} and {std.shape}.')
    if not (np.all(np.isfinite(mean)) and np.all(std > 0)):
      raise errors.InputError(f'Normalization file {path}: mean must be finite and std '
                              'positive.')
    return cls(mean, std)
