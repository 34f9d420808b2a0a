"""Ground-truth transfer: the source window and the truth show the behavior at the same time."""

import numpy as np
import pytest

from bds_jax import procedural
from bds_jax.data.sources import SequenceSet
from bds_jax.evaluation import gt_transfer
from bds_jax.metrics import transfer

LAG, T = 2, 50


def _seqs(specs, frames=300):
  """A SequenceSet of synthetic examples (subject, posture, behavior, seed, placement)."""
  poses, extras = [], {k: [] for k in ('posture', 'behavior_seed', 'placement_seed',
                                       'behavior_onset')}
  for subject, posture, behavior, seed, placement in specs:
    poses.append(procedural.render(subject, posture, behavior, seed, placement, frames))
    extras['posture'].append(procedural.POSTURES.index(posture))
    extras['behavior_seed'].append(seed)
    extras['placement_seed'].append(placement)
    extras['behavior_onset'].append(procedural.behavior_onset(subject, posture, behavior, seed))
  return SequenceSet(
      poses=poses, labels=np.array([procedural.BEHAVIORS.index(s[2]) for s in specs]),
      label_names=procedural.BEHAVIORS,
      subjects=np.array([procedural.SUBJECTS.index(s[0]) for s in specs]),
      subject_names=procedural.SUBJECTS, extras={k: np.array(v) for k, v in extras.items()},
      name='synthetic_motion', split='test')


def _rigid_z_mpjpe(a, b) -> float:
  """MPJPE (mm) of (T, 17, 3) `a` after the best rotation about z and translation onto `b`."""
  ca, cb = a.reshape(-1, 3).mean(0), b.reshape(-1, 3).mean(0)
  pa, pb = (a - ca).reshape(-1, 3), (b - cb).reshape(-1, 3)
  angle = np.arctan2(np.sum(pa[:, 0] * pb[:, 1] - pa[:, 1] * pb[:, 0]),
                     np.sum(pa[:, 0] * pb[:, 0] + pa[:, 1] * pb[:, 1]))
  c, s = np.cos(angle), np.sin(angle)
  rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
  aligned = (a - ca) @ rot.T + cb
  return transfer.mpjpe_mm(aligned, b)['mean']


def test_source_window_and_truth_are_aligned_at_the_behavior_onset():
  # Source: sits, stands up (a transition), then walks. Target: standing (the neutral stance
  # the transition ends in), so the truth is the same walk, rigidly moved, with no stand-up.
  seqs = _seqs([('S9', 'sitting', 'walk_in_place', 3, 10), ('S9', 'standing', 'wave', 4, 11)])
  source, start, truth, transition = gt_transfer.source_and_truth(seqs, [0], [1], LAG, T)
  assert source.shape == (1, T + 1, 17, 3) and truth.shape == (1, T, 17, 3)
  assert not transition[0]
  np.testing.assert_array_equal(start[0], seqs.poses[1][0])
  motion = transfer.mpjpe_mm(source[0, 1:], np.repeat(source[0, :1], T, 0))['mean']
  assert motion > 30.0  # the window shows real movement...
  # ...the truth's, up to sway, a 4° trunk offset between standing and the neutral stance
  # and the onset rounded to a frame (18.8 mm here).
  assert _rigid_z_mpjpe(source[0, 1:], truth[0]) < 0.6 * motion
  # The old cut (the first 2 s of the source) is dominated by the hold and the stand-up.
  old = seqs.poses[0][0:LAG * T + 1:LAG][1:]
  assert _rigid_z_mpjpe(old, truth[0]) > 2.0 * motion  # 215 mm


def test_pairs_fit_after_the_onset_and_change_posture():
  specs = [('S9', p, b, k, 20 + k) for k, (p, b) in enumerate(
      [('sitting', 'walk_in_place'), ('standing', 'wave'), ('crouching', 'kick'),
       ('lunging', 'bow')])]
  seqs = _seqs(specs, frames=160)
  src, tgt = gt_transfer.pairs(seqs, 40, 0, LAG * T + 1)
  onset = gt_transfer.onset_frames(seqs)
  assert np.all(onset[src] + LAG * T + 1 <= 160)
  assert np.all(seqs.extras['posture'][src] != seqs.extras['posture'][tgt])
  with pytest.raises(ValueError, match='behavior onset'):
    gt_transfer.pairs(seqs, 4, 0, 200)


def test_references():
  rng = np.random.default_rng(0)
  source = rng.normal(size=(3, T + 1, 17, 3))
  start = rng.normal(size=(3, 17, 3))
  refs = gt_transfer.references(source, start)
  np.testing.assert_allclose(refs['static'][:, 7], start)
  np.testing.assert_allclose(refs['source_offsets'][:, 0], start + source[:, 1] - source[:, 0])
  copy = refs['copy_source']
  np.testing.assert_allclose(copy - source[:, 1:], np.broadcast_to(
      start[:, None, :1] - source[:, :1, :1], copy.shape), rtol=1e-12, atol=1e-12)
