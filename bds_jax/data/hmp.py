"""Protocol windows for stochastic human motion prediction (DLow / BeLFusion, H36M and AMASS).

Test windows (stochastic-HMP spec §1.3): for each test sequence, in `SequenceSet` order,
starts i = first_start, first_start + stride, … while i < T − (observed + predicted) (strict,
as Python's range in DLow); the observation is frames [i, i + observed) and the future
[i + observed, i + observed + predicted). H36M: observed 25, predicted 100, stride 25,
first_start 0 at 50 Hz (5,168 windows on S9/S11, the rows of BeLFusion's segments_test.csv up
to row order). AMASS-style lengths (30/120 at 60 Hz, stride 120, first prediction at frame 180,
i.e. first_start 150) are configurable, though our datasets are 17-joint H3.6M skeletons.

Human3.6M sequence list: VideoPose3D's npz converter, and so DLow and BeLFusion, skip the official
file S11 "Directions.cdf" (bare name, no number; corrupt video), keeping S11 "Directions 1". Our
dataset keeps it (its poses are fine), so this view drops it whatever the layout: CDF and npz
sub-action '' and, in the exp-map release, directions_2. The latter is an inference, not checked
on the data: upstream's corrupt video is S11 Directions sub-action 2, and we assume the exp-map
files are numbered by that same database sub-action index. The dataset itself is not changed.
On the full test split (S9 and S11 with all 15 actions) exactly 59 sequences and 5,168 windows
must remain with the H36M lengths, or a ValueError says which count is off (for the CDF and npz
layouts; the exp-map release's lengths are unverified, so there a mismatch is logged as a
warning); partial splits (and other datasets) are not checked.

Poses are converted to root-relative vectors: joints 1..16 minus joint 0 (the pelvis), joint 0
dropped, flattened joint-major to 48-D, metres. The absolute last observed pose (17, 3) is kept
so that a model working in world coordinates (like ours) can be conditioned on it.
"""

import dataclasses
import logging

import numpy as np

from bds_jax import skeleton
from bds_jax.data import datasets
from bds_jax.data.sources import SequenceSet
from bds_jax.h36m import actions as h36m_actions

H36M_OBSERVED = 25
H36M_PREDICTED = 100
H36M_STRIDE = 25

# The protocol's H36M test set (stochastic-HMP spec §1.3): sequences, windows per subject.
H36M_TEST_SUBJECTS = ('S9', 'S11')
H36M_TEST_SEQUENCES = 59
H36M_TEST_WINDOWS = {'S9': 3041, 'S11': 2127}
H36M_NUM_TEST_WINDOWS = sum(H36M_TEST_WINDOWS.values())  # 5,168
# The sequence the protocol leaves out: (subject, action) and its sub-action in each layout.
H36M_DROPPED = ('S11', 'Directions')
H36M_DROPPED_SUBACTION = {'cdf': '', 'npz': '', 'expmap': '2'}

log = logging.getLogger(__name__)


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


def resample(start, predicted, frame_lag: int, frames: int):
  """Model frames at raw offsets lag, 2 lag, ... (after `start` at 0) -> raw offsets 1..frames.

  start: (..., J, 3); predicted: (..., S, J, 3) -> (..., frames, J, 3), linear interpolation.
  """
  start = np.broadcast_to(start, (*predicted.shape[:-3], *start.shape[-2:]))
  track = np.concatenate([start[..., None, :, :], predicted], axis=-3)  # offsets 0, lag, ...
  offsets = np.arange(1, frames + 1)
  left = np.minimum(offsets // frame_lag, track.shape[-3] - 1)
  right = np.minimum(left + 1, track.shape[-3] - 1)
  frac = ((offsets - left * frame_lag) / frame_lag)[:, None, None]
  return (1 - frac) * track[..., left, :, :] + frac * track[..., right, :, :]


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
    observed_abs: (N, observed, 17, 3) the absolute (world) observed poses, for a model that
      conditions on the observation in its own input space (the diffusion prior), or None.
  """
  observed: np.ndarray
  future: np.ndarray
  last_observed_abs: np.ndarray
  sequence: np.ndarray
  start: np.ndarray
  label: np.ndarray
  label_names: tuple[str, ...]
  observed_abs: np.ndarray | None = None

  def __len__(self) -> int:
    return len(self.sequence)

  def subset(self, keep) -> 'HMPWindows':
    """The windows at indices `keep`, in that order."""
    return HMPWindows(
        self.observed[keep], self.future[keep], self.last_observed_abs[keep],
        self.sequence[keep], self.start[keep], self.label[keep], self.label_names,
        None if self.observed_abs is None else self.observed_abs[keep])

  @property
  def last_observed(self) -> np.ndarray:
    """(N, 48) the last observed root-relative pose (the multimodal-GT key)."""
    return self.observed[:, -1]


def _h36m_names(seqs: SequenceSet, i: int) -> tuple[str, str]:
  return seqs.subject_names[seqs.subjects[i]], seqs.label_names[seqs.labels[i]]


def h36m_protocol_sequences(seqs: SequenceSet) -> np.ndarray:
  """Indices of the sequences the protocol uses: all but S11 "Directions" on Human3.6M."""
  keep = np.ones(len(seqs), bool)
  if not datasets.follows_hmp_protocol(seqs.name):
    return np.flatnonzero(keep)
  for i in range(len(seqs)):
    if _h36m_names(seqs, i) != H36M_DROPPED:
      continue
    if 'subaction' not in seqs.extras or 'layout' not in seqs.extras:
      raise ValueError(f'{seqs.name}/{seqs.split}: S11 Directions present but the SequenceSet has '
                       'no subaction/layout extras, so the sequence the protocol drops cannot be '
                       'told apart; load it with bds_jax.data.sources.load_split.')
    layout, subaction = str(seqs.extras['layout'][i]), str(seqs.extras['subaction'][i])
    keep[i] = H36M_DROPPED_SUBACTION.get(layout) != subaction
    if not keep[i]:
      log.info('HMP protocol: leaving out S11 Directions, %s sub-action %r.', layout, subaction)
  return np.flatnonzero(keep)


def _check_h36m_counts(seqs: SequenceSet, kept: np.ndarray, windows_per_seq: dict) -> None:
  """On the full H36M test split, the protocol's 59 sequences and 5,168 windows, or a ValueError."""
  pairs = {_h36m_names(seqs, i) for i in range(len(seqs))}
  full = {(s, a) for s in H36M_TEST_SUBJECTS for a in h36m_actions.ACTIONS}
  if not datasets.follows_hmp_protocol(seqs.name) or pairs != full:
    return  # Synthetic data, another split or a partial one: nothing to compare with.
  got = {s: 0 for s in H36M_TEST_SUBJECTS}
  for i in kept:
    got[_h36m_names(seqs, i)[0]] += windows_per_seq[i]
  if len(kept) != H36M_TEST_SEQUENCES or got != H36M_TEST_WINDOWS:
    layouts = set(np.asarray(seqs.extras.get('layout', ['?']), str).tolist())
    if not layouts <= {'cdf', 'npz'}:
      # The exp-map release's sequence lengths are not known to match the position files'
      # frame for frame, so there a different count is reported, not fatal.
      log.warning('%s/%s (layouts %s): %d sequences and %d HMP windows %s, not the protocol\'s '
                  '%d and %d %s.', seqs.name, seqs.split, sorted(layouts), len(kept),
                  sum(got.values()), got, H36M_TEST_SEQUENCES, H36M_NUM_TEST_WINDOWS,
                  H36M_TEST_WINDOWS)
      return
    raise ValueError(
        f'{seqs.name}/{seqs.split} is the full Human3.6M test split (S9 and S11, all actions), so '
        f'the stochastic-HMP protocol expects {H36M_TEST_SEQUENCES} sequences and '
        f'{H36M_NUM_TEST_WINDOWS} windows ({H36M_TEST_WINDOWS}); got {len(kept)} sequences and '
        f'{sum(got.values())} windows ({got}) after leaving out S11 Directions. Missing, skipped '
        f'or truncated files, or a release with other sequence lengths, change the protocol.')


def protocol_windows(seqs: SequenceSet, observed: int = H36M_OBSERVED,
                     predicted: int = H36M_PREDICTED, stride: int = H36M_STRIDE,
                     first_start: int = 0) -> HMPWindows:
  """Every protocol window of `seqs` (see module docstring), converted to 48-D vectors.

  On Human3.6M the sequence the protocol leaves out is skipped, and with the H36M lengths the
  full test split is checked against the protocol's counts.
  """
  obs, fut, last, seq_ids, starts, obs_abs = [], [], [], [], [], []
  span = observed + predicted
  kept = h36m_protocol_sequences(seqs)
  begins = {int(s): window_starts(len(seqs.poses[s]), observed, predicted, stride, first_start)
            for s in kept}
  if (observed, predicted, stride, first_start) == (H36M_OBSERVED, H36M_PREDICTED, H36M_STRIDE,
                                                     0):
    _check_h36m_counts(seqs, kept, {s: len(b) for s, b in begins.items()})
  for s, begin in begins.items():
    if not len(begin):
      continue
    poses = np.asarray(seqs.poses[s], np.float32)
    frames = poses[begin[:, None] + np.arange(span)]  # (W, span, 17, 3)
    rel = to_root_relative(frames)
    obs.append(rel[:, :observed])
    fut.append(rel[:, observed:])
    last.append(frames[:, observed - 1])
    obs_abs.append(frames[:, :observed])
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
      label_names=tuple(seqs.label_names),
      observed_abs=np.concatenate(obs_abs))
