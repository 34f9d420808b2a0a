"""Human3.6M is wired into training: a VideoPose3D-format npz -> TFDS build -> behavior steps."""

import numpy as np
import pytest

from bds_jax import skeleton
from bds_jax import procedural
from bds_jax.data import sources
from bds_jax.train import behavior as trainer


def _to_32_joints(poses17):
  """Places each of the 32 joints at its nearest ancestor among the 17 kept ones."""
  out = np.zeros((len(poses17), 32, 3), np.float32)
  for j in range(32):
    a = j
    while a not in skeleton.H36M_32_TO_17:
      a = skeleton.PARENTS_32[a]
    out[:, j] = poses17[:, skeleton.H36M_32_TO_17.index(a)]
  return out


@pytest.fixture(scope='module')
def manual_dir(tmp_path_factory):
  d = tmp_path_factory.mktemp('h36m_manual')
  actions = {'Walking': 'walk_in_place', 'Walking 1': 'walk_in_place', 'Eating': 'wave',
             'Sitting 1': 'squat', 'Greeting': 'raise_both_arms'}
  positions = {}
  for i, subject in enumerate(('S1', 'S5', 'S9')):
    positions[subject] = {
        name: _to_32_joints(procedural.render(subject, 'standing', behavior, 10 * i + k, k, 240))
        for k, (name, behavior) in enumerate(actions.items())}
  np.savez(d / 'data_3d_h36m.npz', positions_3d=positions)  # pickled dict, as VideoPose3D
  return str(d)


def test_behavior_trains_on_human36m_npz(manual_dir, tmp_path):
  from configs import behavior  # pylint: disable=g-import-not-at-top
  c = behavior.get_config('smoke')
  c.data.name = 'human36m'
  c.data.builder_config = ''
  c.data.data_dir = str(tmp_path / 'tfds')
  c.data.manual_dir = manual_dir
  c.num_steps = 4
  c.final_gif = False
  result = trainer.train_and_evaluate(c, str(tmp_path / 'run'))
  assert result.step == 4 and np.isfinite(result.eval_metrics['eval/recon'])
  test = sources.load_sequences('human36m', 'test', c.data.data_dir, prepare_mode='never')
  assert {test.subject_names[s] for s in test.subjects} == {'S9'}
  assert sorted({test.label_names[l] for l in test.labels}) == [
      'Eating', 'Greeting', 'Sitting', 'Walking']
  assert len(test) == 5 and test.poses[0].shape == (240, 17, 3)
