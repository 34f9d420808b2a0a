"""Protocol windows for stochastic human motion prediction (DLow / BeLFusion, H36M and AMASS).

Test windows (stochastic-HMP spec §1.3): for each test sequence, in `SequenceSet` order,
starts i = first_start, first_start + stride, … while i < T − (observed + predicted) (strict,
as Python's range in DLow); the observation is frames [i, i + observed) and the future
[i + observed, i + observed + predicted). H36M: observed 25, predicted 100, stride 25,
first_start 0 at 50 Hz (5,168 windows on S9/S11, the rows of BeLFusion's segments_test.csv up
to row order). AMASS-style lengths (30/120 at 60 Hz, stride 120, first prediction at frame 180,
i.e. first_start 150) are configurable, though our datasets are 17-joint H3.6M skeletons.

Poses are converted to root-relative vectors: joints 1..16 minus joint 0 (the pelvis), joint 0
dropped, flattened joint-major to 48-D, metres. The absolute last observed pose (17, 3) is kept
so that a model working in world coordinates (like ours) can be conditioned on it.
"""

import dataclasses

import numpy as np

from bds_jax import skeleton
from bds_jax.data.sources import SequenceSet

H36M_OBSERVED = 25
H36M_PREDICTED = 100
H36M_STRIDE = 25


def to_root_relative(poses) -> np.ndarray:
  """(..., 17, 3) absolute poses -> (..., 48): joints 1..16 minus joint 0, joint 0 dropped."""
  poses = np.asarray(poses)
  if poses.ndim < 2 or poses.shape[-2:] != (skeleton.NUM_JOINTS, 3):
    raise ValueError(f'Expected (..., {skeleton.NUM_JOINTS}, 3) poses, got {poses.shape}.')
  rel = poses[..., 1:, :] - poses[..., :1, :]
  return rel.reshape(*rel.shape[:-2], (skeleton.NUM_JOINTS - 1) * 3)


def from_root_relative(rel, root) -> np.ndarray:
  """Inverse of `to_root_relative` given the root: (..., 48) and (..., 3) -> (..., 17, 3).

  For predictions (which carry no root trajectory), pass the last observed root to place the
  whole future at the observed position.
  """
  rel = np.asarray(rel)
  root = np.asarray(root)
  if rel.shape[-1] != (skeleton.NUM_JOINTS - 1) * 3 or root.shape[-1] != 3:
    raise ValueError(f'Expected (..., 48) root-relative poses and (..., 3) roots, got '
                     f'{rel.shape} and {root.shape}.')
  joints = rel.reshape(*rel.shape[:-1], skeleton.NUM_JOINTS - 1, 3) + root[..., None, :]
  root = np.broadcast_to(root[..., None, :], (*joints.shape[:-2], 1, 3))
  return np.concatenate([root.astype(joints.dtype), joints], axis=-2)


def window_starts(length: int, observed: int = H36M_OBSERVED, predicted: int = H36M_PREDICTED,
                  stride: int = H36M_STRIDE, first_start: int = 0) -> np.ndarray:
  """Starts i = first_start, first_start + stride, … while i < length − (observed + predicted)."""
  if observed < 1 or predicted < 1 or stride < 1 or first_start < 0:
    raise ValueError(f'observed ({observed}), predicted ({predicted}) and stride ({stride}) must '
                     f'be >= 1 and first_start ({first_start}) >= 0.')
  return np.arange(first_start, max(first_start, length - observed - predicted), stride,
                   dtype=np.int64)


@dataclasses.dataclass
class HMPWindows:
  """The test windows of one split, in protocol order.

  Attributes:
    observed: (N, observed, 48) root-relative observed poses, metres.
    future: (N, predicted, 48) root-relative true futures, metres.
    last_observed_abs: (N, 17, 3) the absolute (world) last observed pose.
    sequence: (N,) index of the window's sequence in the SequenceSet.
    start: (N,) first observed frame of the window in its sequence.
    label: (N,) the sequence's class label (action on H36M; the CMD class).
    label_names: class names.
  """
  observed: np.ndarray
  future: np.ndarray
  last_observed_abs: np.ndarray
  sequence: np.ndarray
  start: np.ndarray
  label: np.ndarray
  label_names: tuple[str, ...]

  def __len__(self) -> int:
    return len(self.sequence)

  @property
  def last_observed(self) -> np.ndarray:
    """(N, 48) the last observed root-relative pose (the multimodal-GT key)."""
    return self.observed[:, -1]


def protocol_windows(seqs: SequenceSet, observed: int = H36M_OBSERVED,
                     predicted: int = H36M_PREDICTED, stride: int = H36M_STRIDE,
                     first_start: int = 0) -> HMPWindows:
  """Every protocol window of `seqs` (see module docstring), converted to 48-D vectors."""
  obs, fut, last, seq_ids, starts = [], [], [], [], []
  span = observed + predicted
  for s, poses in enumerate(seqs.poses):
    poses = np.asarray(poses, np.float32)
    begin = window_starts(len(poses), observed, predicted, stride, first_start)
    if not len(begin):
      continue
    frames = poses[begin[:, None] + np.arange(span)]  # (W, span, 17, 3)
    rel = to_root_relative(frames)
    obs.append(rel[:, :observed])
    fut.append(rel[:, observed:])
    last.append(frames[:, observed - 1])
    seq_ids.append(np.full(len(begin), s, np.int64))
    starts.append(begin)
  if not obs:
    raise ValueError(f'No sequence of {seqs.name}/{seqs.split} is long enough for a window of '
                     f'{span} frames (the window rule needs more than {first_start + span} '
                     f'frames); the longest has {seqs.lengths.max()} frames.')
  seq_ids = np.concatenate(seq_ids)
  dim = (skeleton.NUM_JOINTS - 1) * 3
  return HMPWindows(
      observed=np.concatenate(obs).reshape(-1, observed, dim),
      future=np.concatenate(fut).reshape(-1, predicted, dim),
      last_observed_abs=np.concatenate(last),
      sequence=seq_ids,
      start=np.concatenate(starts),
      label=np.asarray(seqs.labels)[seq_ids].astype(np.int32),
      label_names=tuple(seqs.label_names))
