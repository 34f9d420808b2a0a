"""Every data source describes people with one handedness (no layout yields mirror images).

Measure: the sign of det[right hip - left hip, forward, thorax - pelvis]; +1 for a real person
in a right-handed z-up frame (right x forward = up). Forward is where the toes point for the
32-joint Human3.6M arrays and the documented heading for the synthetic generator, which has no
toes. The exp-map layout used to end with a y/z column swap, a reflection, and gave -1.
"""

import numpy as np
import pytest

from bds_jax import procedural
from bds_jax.h36m import formats
from bds_jax.h36m import kinematics
# Its helpers write one motion in the three on-disk layouts (tests/ is on sys.path).
import test_human36m_builder as h36m_files


def _handedness_32(poses):
  """Per-frame sign for [N, 32, 3] Human3.6M joints: hips 1 (right) and 6 (left), toes 4 and 9."""
  right = poses[:, 1] - poses[:, 6]
  forward = (poses[:, 4] - poses[:, 3]) + (poses[:, 9] - poses[:, 8])
  up = poses[:, 13] - poses[:, 0]
  return np.sign(np.linalg.det(np.stack([right, forward, up], axis=1)))


def _handedness_17(poses, heading):
  """Per-frame sign for [N, 17, 3] poses of a person facing (cos h, sin h, 0)."""
  right = poses[:, 1] - poses[:, 4]
  forward = np.broadcast_to([np.cos(heading), np.sin(heading), 0.0], right.shape)
  up = poses[:, 8] - poses[:, 0]
  return np.sign(np.linalg.det(np.stack([right, forward, up], axis=1)))


def test_rest_skeleton_is_not_mirrored():
  rest = kinematics.expmap_to_positions(np.zeros((1, kinematics.NUM_EXPMAP_CHANNELS)))
  assert _handedness_32(rest).tolist() == [1.0]
  assert np.linalg.det(kinematics.Y_UP_TO_Z_UP) == pytest.approx(1.0)
  np.testing.assert_allclose(rest[0, 15, :2], 0.0, atol=1e-12)  # head straight above the root
  assert rest[0, 15, 2] > 0.5


def test_layouts_and_synthetic_share_handedness(tmp_path):
  # Near-rest joint rotations keep the toes pointing forward; the root heading is random.
  motion = h36m_files._make_motion(seed=1, scale=0.15)  # pylint: disable=protected-access
  h36m_files._write_layouts(tmp_path, motion)  # pylint: disable=protected-access
  signs = {}
  for layout in formats.LAYOUTS:
    for root in ('zero', 'keep') if layout == 'expmap' else ('zero',):
      reader = formats.H36MReader(tmp_path / layout, expmap_root=root)
      seqs = list(reader.sequences())
      assert len(seqs) == len(motion)
      signs[f'{layout}/{root}'] = set(np.concatenate([_handedness_32(s.poses_32) for s in seqs]))
  for seed in range(4):
    heading = procedural.placement(seed)[2]
    poses = procedural.render('S9', seed % 3, 'walk_in_place', seed, seed, 100)
    signs.setdefault('synthetic', set()).update(_handedness_17(poses, heading))
  assert signs == {name: {1.0} for name in signs}
