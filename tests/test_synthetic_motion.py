"""Tests of the procedural motion generator and its TFDS builder (synthetic_motion)."""

import sys

import numpy as np
import pytest

from bds_jax import skeleton
from bds_jax import procedural
from tfds_builders.synthetic_motion import Builder

_NUM_COMBOS = len(procedural.POSTURES) * len(procedural.BEHAVIORS)
_FEET = (3, 6)


@pytest.fixture(scope='module')
def builder(tmp_path_factory):
  b = Builder(config='small', data_dir=str(tmp_path_factory.mktemp('tfds')),
              file_format='array_record')
  b.download_and_prepare()
  return b


@pytest.fixture(scope='module')
def splits(builder):
  """All stored examples of both splits, as lists of dicts."""
  return {name: [builder.as_data_source(name)[i]
                 for i in range(len(builder.as_data_source(name)))]
          for name in ('train', 'test')}


def _body_frame(poses):
  """Pelvis-relative positions rotated so that the frame-0 person faces +x."""
  rel = poses - poses[:1, :1]
  left = poses[0, 4] - poses[0, 1]  # right hip -> left hip
  heading = np.arctan2(left[1], left[0]) - np.pi / 2
  c, s = np.cos(-heading), np.sin(-heading)
  return np.stack([c * rel[..., 0] - s * rel[..., 1], s * rel[..., 0] + c * rel[..., 1],
                   rel[..., 2]], axis=-1)


def test_builder_name_and_features(builder):
  assert builder.name == 'synthetic_motion'
  features = builder.info.features
  assert features['poses'].shape == (None, skeleton.NUM_JOINTS, 3)
  assert features['poses'].np_dtype == np.float32
  assert tuple(features['behavior'].names) == procedural.BEHAVIORS
  assert tuple(features['posture'].names) == procedural.POSTURES
  assert tuple(features['subject'].names) == procedural.SUBJECTS
  assert features['behavior_seed'].np_dtype == np.int64
  assert len(procedural.POSTURES) >= 6 and len(procedural.BEHAVIORS) >= 8


def test_split_sizes_and_subjects(splits):
  assert len(splits['train']) == len(procedural.TRAIN_SUBJECTS) * _NUM_COMBOS
  assert len(splits['test']) == len(procedural.TEST_SUBJECTS) * _NUM_COMBOS
  assert set(procedural.TRAIN_SUBJECTS).isdisjoint(procedural.TEST_SUBJECTS)
  assert set(procedural.TRAIN_SUBJECTS) | set(procedural.TEST_SUBJECTS) == set(procedural.SUBJECTS)
  for split, expected in (('train', procedural.TRAIN_SUBJECTS),
                          ('test', procedural.TEST_SUBJECTS)):
    names = {procedural.SUBJECTS[ex['subject']] for ex in splits[split]}
    assert names == set(expected)
    # Every subject × posture × behavior exactly once (1 repetition in `small`).
    combos = {(ex['subject'], ex['posture'], ex['behavior']) for ex in splits[split]}
    assert len(combos) == len(splits[split])


def test_stored_examples_shapes_and_labels(splits):
  for ex in splits['train'] + splits['test']:
    assert ex['poses'].shape == (160, skeleton.NUM_JOINTS, 3)
    assert ex['poses'].dtype == np.float32
    assert np.all(np.isfinite(ex['poses']))
    assert 0 <= ex['behavior'] < len(procedural.BEHAVIORS)
    assert 0 <= ex['posture'] < len(procedural.POSTURES)
    assert 0 <= ex['subject'] < len(procedural.SUBJECTS)
    assert ex['behavior_seed'] >= 0 and ex['placement_seed'] >= 0
    onset = procedural.behavior_onset(ex['subject'], ex['posture'], ex['behavior'],
                                     ex['behavior_seed'])
    assert ex['behavior_onset'] == pytest.approx(onset, rel=1e-6)


def test_no_tensorflow_imported(splits):
  del splits  # built and read
  assert 'tensorflow' not in sys.modules


def test_renderer_reproduces_stored_examples(splits):
  for ex in splits['test'] + splits['train'][::7]:
    poses = procedural.render(ex['subject'], ex['posture'], ex['behavior'], ex['behavior_seed'],
                             ex['placement_seed'], len(ex['poses']))
    np.testing.assert_array_equal(poses, ex['poses'])


def test_examples_keys_unique_and_deterministic():
  first = list(procedural.examples(['S9'], 12, 2, seed=3))
  second = list(procedural.examples(['S9'], 12, 2, seed=3))
  keys = [k for k, _ in first]
  assert len(keys) == len(set(keys)) == 2 * _NUM_COMBOS
  assert keys == [k for k, _ in second]
  for (_, a), (_, b) in zip(first, second):
    np.testing.assert_array_equal(a['poses'], b['poses'])
    assert a['behavior_seed'] == b['behavior_seed']
  other = dict(procedural.examples(['S9'], 12, 2, seed=4))
  assert other[keys[0]]['behavior_seed'] != first[0][1]['behavior_seed']


def test_frame0_depends_only_on_subject_posture_placement():
  for subject in ('S1', 'S11'):
    for posture in procedural.POSTURES:
      reference = procedural.render(subject, posture, 0, 0, 42, 1)[0]
      for behavior in procedural.BEHAVIORS:
        for behavior_seed in (1, 999):
          poses = procedural.render(subject, posture, behavior, behavior_seed, 42, 60)
          np.testing.assert_array_equal(poses[0], reference)
  standing = procedural.render('S1', 'standing', 'wave', 0, 42, 1)[0]
  assert not np.allclose(standing, procedural.render('S1', 'standing', 'wave', 0, 43, 1)[0])
  assert not np.allclose(standing, procedural.render('S5', 'standing', 'wave', 0, 42, 1)[0])
  assert not np.allclose(standing, procedural.render('S1', 'sitting', 'wave', 0, 42, 1)[0])


def test_determinism_and_seed_roles():
  a = procedural.render('S7', 'crouching', 'kick', 11, 22, 200)
  np.testing.assert_array_equal(a, procedural.render('S7', 'crouching', 'kick', 11, 22, 200))
  # Names and indices are interchangeable.
  np.testing.assert_array_equal(
      a, procedural.render(procedural.SUBJECTS.index('S7'), procedural.POSTURES.index('crouching'),
                          procedural.BEHAVIORS.index('kick'), 11, 22, 200))
  assert a.dtype == np.float32 and a.shape == (200, 17, 3)
  # A longer rendering starts with the shorter one.
  np.testing.assert_array_equal(a[:100], procedural.render('S7', 'crouching', 'kick', 11, 22, 100))
  # The behavior seed changes the motion, not the start.
  b = procedural.render('S7', 'crouching', 'kick', 12, 22, 200)
  assert np.abs(a[1:] - b[1:]).max() > 0.05
  # The placement seed moves and turns the whole performance rigidly.
  c = procedural.render('S7', 'crouching', 'kick', 11, 23, 200)
  np.testing.assert_allclose(_body_frame(a), _body_frame(c), atol=1e-4)
  assert np.abs(a[0, 0, :2] - c[0, 0, :2]).max() > 1e-3


def _bone_lengths(poses):
  parents = np.array(skeleton.PARENTS[1:])
  return np.linalg.norm(poses[:, 1:] - poses[:, parents], axis=-1)  # (T, 16)


def test_bone_lengths_constant_per_subject(splits):
  per_subject = {}
  for ex in splits['train'] + splits['test']:
    lengths = _bone_lengths(ex['poses'].astype(np.float64))
    assert np.ptp(lengths, axis=0).max() < 1e-4
    per_subject.setdefault(ex['subject'], []).append(lengths[0])
  for lengths in per_subject.values():
    assert np.ptp(np.stack(lengths), axis=0).max() < 1e-4
  means = np.stack([np.mean(v, axis=0) for v in per_subject.values()])
  assert np.ptp(means.sum(axis=1)) > 0.05  # subjects differ in size
  # Lengths (metres) close to the Human3.6M bones, e.g. thigh 0.443 and shin 0.454.
  assert np.all((means[:, 1] > 0.38) & (means[:, 1] < 0.5))
  assert np.all((means[:, 2] > 0.38) & (means[:, 2] < 0.52))


def test_feet_on_the_floor(splits):
  for ex in splits['train'] + splits['test']:
    poses = ex['poses']
    np.testing.assert_allclose(poses[:, _FEET, 2].min(axis=1), 0.0, atol=1e-6)
    assert poses[..., 2].min() > -1e-6
    assert np.abs(poses[..., :2]).max() < 3.5  # stays in the room


def test_placement_and_heading_convention():
  for placement_seed in range(5):
    x, y, heading = procedural.placement(placement_seed)
    pose = procedural.render('S6', 'standing', 'clap', 0, placement_seed, 1)[0]
    np.testing.assert_allclose(pose[_FEET, :2].mean(axis=0), (x, y), atol=1e-5)
    forward = np.array([np.cos(heading), np.sin(heading)])
    left = np.array([-np.sin(heading), np.cos(heading)])
    hips = pose[4, :2] - pose[1, :2]
    np.testing.assert_allclose(hips / np.linalg.norm(hips), left, atol=1e-5)
    assert np.dot(pose[9, :2] - pose[8, :2], forward) > 0.02  # the nose is in front


def test_standing_height_in_metres():
  for subject in procedural.SUBJECTS:
    pose = procedural.render(subject, 'standing', 'wave', 0, 5, 1)[0]
    height = pose[10, 2] - pose[_FEET, 2].min()
    assert 1.5 < height < 2.0, (subject, height)
    assert pose[10, 2] > pose[8, 2] > pose[0, 2] > pose[2, 2] > pose[3, 2]  # upright


def test_behaviors_move_visibly(splits):
  for behavior, name in enumerate(procedural.BEHAVIORS):
    excursions = []
    for ex in splits['train']:
      if ex['behavior'] == behavior and procedural.POSTURES[ex['posture']] == 'standing':
        body = _body_frame(ex['poses'])
        # Largest distance of each joint from where it started.
        excursions.append(np.linalg.norm(body - body[:1], axis=-1).max(axis=0))
    excursions = np.stack(excursions)
    assert len(excursions) == len(procedural.TRAIN_SUBJECTS)
    assert excursions.max(axis=1).min() > 0.25, name  # some joint moves > 25 cm
    assert excursions.mean() > 0.05, name  # averaged over all 17 joints


def test_behaviors_are_distinguishable(splits):
  """A nearest-centroid classifier on simple motion statistics separates the behaviors."""
  def features(examples):
    body = np.stack([_body_frame(ex['poses'])[-100:] for ex in examples])  # the last 2 s
    speed = np.abs(np.diff(body, axis=1)).mean(axis=1)
    return np.concatenate([body.std(axis=1).reshape(len(body), -1),
                           10.0 * speed.reshape(len(body), -1)], axis=1)

  train_x, test_x = features(splits['train']), features(splits['test'])
  train_y = np.array([ex['behavior'] for ex in splits['train']])
  test_y = np.array([ex['behavior'] for ex in splits['test']])
  mean, std = train_x.mean(axis=0), train_x.std(axis=0) + 1e-6
  train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
  centroids = np.stack([train_x[train_y == b].mean(axis=0)
                        for b in range(len(procedural.BEHAVIORS))])
  predicted = np.argmin(((test_x[:, None] - centroids[None]) ** 2).sum(axis=-1), axis=1)
  assert np.mean(predicted == test_y) > 0.9
  # Pairwise: the same performance seeds give clearly different motions.
  motions = [_body_frame(procedural.render('S9', 'standing', b, 7, 8, 250))
             for b in procedural.BEHAVIORS]
  for i in range(len(motions)):
    for j in range(i):
      gap = np.linalg.norm(motions[i] - motions[j], axis=-1).mean()
      assert gap > 0.02, (procedural.BEHAVIORS[i], procedural.BEHAVIORS[j], gap)


def test_needs_transition_table():
  for behavior in procedural.BEHAVIORS:
    assert not procedural.needs_transition('standing', behavior)
  for posture, behavior in (('sitting', 'walk_in_place'), ('sitting', 'kick'),
                            ('crouching', 'squat'), ('lunging', 'walk_in_place'),
                            ('arms_raised', 'raise_right_arm'),
                            ('arms_raised', 'raise_both_arms'), ('bent_forward', 'bow')):
    assert procedural.needs_transition(posture, behavior), (posture, behavior)
  for posture, behavior in (('sitting', 'wave'), ('sitting', 'raise_right_arm'),
                            ('sitting', 'bow'), ('arms_raised', 'walk_in_place')):
    assert not procedural.needs_transition(posture, behavior), (posture, behavior)


def test_sitting_stands_up_before_walking():
  for behavior_seed in range(4):
    poses = procedural.render('S8', 'sitting', 'walk_in_place', behavior_seed, 3, 300)
    pelvis = poses[:, 0, 2]
    foot_gap = np.abs(poses[:, 3, 2] - poses[:, 6, 2])
    first_step = np.argmax(foot_gap > 0.05)
    assert first_step > 0 and foot_gap.max() > 0.1  # it does walk
    assert pelvis[first_step] - pelvis[0] > 0.3  # already standing up
    # The pelvis rises smoothly: no jumps between frames.
    assert np.abs(np.diff(pelvis)).max() < 0.03


def test_behavior_onset_ends_the_hold_and_transition():
  for posture, behavior in (('standing', 'wave'), ('sitting', 'walk_in_place'),
                            ('lunging', 'squat'), ('arms_raised', 'raise_right_arm')):
    transition = procedural.needs_transition(posture, behavior)
    for seed in range(3):
      onset = procedural.behavior_onset('S9', posture, behavior, seed)
      transition_seconds = procedural.behavior_onset('S9', posture, behavior, seed, hold=0.0)
      assert (transition_seconds > 0.5) if transition else (transition_seconds == 0.0)
      hold = onset - transition_seconds
      assert 0.2 <= hold <= 0.6
      n = int(np.ceil(onset * procedural.FPS)) + 40
      poses = procedural.render('S9', posture, behavior, seed, 4, n)
      still = procedural.render('S9', posture, behavior, seed, 4, n, hold=100.0)  # sway only
      k = int(np.floor(hold * procedural.FPS))
      np.testing.assert_allclose(poses[:k], still[:k], rtol=0, atol=1e-6)
      assert not np.allclose(poses[k + 5], still[k + 5], rtol=0, atol=1e-3)  # moving after it
      if not transition:  # the behavior itself starts at the onset, and moves within 0.8 s
        assert np.abs(poses[-1] - still[-1]).max() > 0.02


def test_zero_hold_starts_at_the_start_posture_and_keeps_the_behavior():
  for posture, behavior in (('standing', 'wave'), ('crouching', 'kick')):
    a = procedural.render('S11', posture, behavior, 5, 6, 300)
    b = procedural.render('S11', posture, behavior, 5, 6, 300, hold=0.0)
    np.testing.assert_array_equal(a[0], b[0])  # frame 0 is the start posture at rest
    hold = procedural.behavior_onset('S11', posture, behavior, 5) - procedural.behavior_onset(
        'S11', posture, behavior, 5, hold=0.0)
    shift = int(round(hold * procedural.FPS))
    # Shifted by the hold, the two performances agree up to the sway (a few degrees, which
    # runs on absolute time) and the sub-frame remainder of the shift.
    gap = np.linalg.norm(a[shift:] - b[:len(a) - shift], axis=-1).mean()
    moving = np.linalg.norm(a[shift:] - a[shift:shift + 1], axis=-1).mean()
    assert gap < 0.25 * moving
  with pytest.raises(ValueError, match='hold'):
    procedural.render('S1', 'standing', 'wave', 0, 0, 10, hold=-1.0)


def test_arm_is_lowered_before_raising_again():
  poses = procedural.render('S1', 'arms_raised', 'raise_right_arm', 2, 3, 300)
  wrist_over_head = poses[:, 16, 2] - poses[:, 10, 2]
  assert wrist_over_head[0] > 0.1
  low = np.argmax(wrist_over_head < -0.6)  # the right wrist comes down to the hip...
  assert low > 0
  assert wrist_over_head[low:].max() > 0.1  # ...and is raised again
  assert np.all(poses[:, 13, 2] - poses[:, 10, 2] > 0.1)  # the left arm stays up


def test_bad_input_raises_clear_errors():
  with pytest.raises(ValueError, match=r"behavior 'dance'.*walk_in_place"):
    procedural.render('S1', 'standing', 'dance', 0, 0, 10)
  with pytest.raises(ValueError, match='behavior 99'):
    procedural.render('S1', 'standing', 99, 0, 0, 10)
  with pytest.raises(ValueError, match='posture -1'):
    procedural.render('S1', -1, 'wave', 0, 0, 10)
  with pytest.raises(ValueError, match="subject 'S2'.*S11"):
    procedural.render('S2', 'standing', 'wave', 0, 0, 10)
  with pytest.raises(ValueError, match='posture'):
    procedural.needs_transition('lying', 'wave')
  with pytest.raises(ValueError, match='behavior_seed'):
    procedural.render('S1', 'standing', 'wave', -3, 0, 10)
  with pytest.raises(ValueError, match='num_frames'):
    procedural.render('S1', 'standing', 'wave', 0, 0, 0)
  with pytest.raises(ValueError, match='subject'):
    list(procedural.examples(['S3'], 10, 1, 0))
