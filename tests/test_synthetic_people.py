"""The synthetic_people renderer (cameras, projection, occlusion, looks) and its TFDS builder."""

import numpy as np
import pytest

from bds_jax import procedural
from bds_jax.procedural import appearance as appearance_lib
from bds_jax.procedural import camera as camera_lib
from bds_jax.procedural import people
from tfds_builders.synthetic_people.synthetic_people_dataset_builder import outfit_seed


@pytest.fixture(scope='module')
def people_data(tmp_path_factory):
  """The `small` synthetic_people dataset: (builder, train source, test source)."""
  from tfds_builders.synthetic_people import Builder  # pylint: disable=g-import-not-at-top
  builder = Builder(config='small', data_dir=str(tmp_path_factory.mktemp('tfds')),
                    file_format='array_record')
  builder.download_and_prepare()
  return builder, builder.as_data_source('train'), builder.as_data_source('test')


def standing_pose(subject='S7'):
  return procedural.render(subject, 'standing', 'wave', 1, 2, 1)[0]


def test_projection_matches_hand_computed_pinhole():
  k = [[100.0, 0.0, 63.5], [0.0, 120.0, 60.0], [0.0, 0.0, 1.0]]
  e = np.concatenate([np.eye(3), [[0.0], [0.0], [5.0]]], axis=1)
  cam = camera_lib.Camera.from_arrays(k, e, 128)
  poses = np.zeros((17, 3))
  poses[3] = (0.5, -0.25, 0.0)  # camera frame (0.5, -0.25, 5)
  poses[5] = (-1.0, 1.0, 5.0)  # camera frame (-1, 1, 10)
  kp = people.project(poses, cam)
  np.testing.assert_allclose(kp[3], (100 * 0.1 + 63.5, 120 * -0.05 + 60.0))
  np.testing.assert_allclose(kp[5], (100 * -0.1 + 63.5, 120 * 0.1 + 60.0))
  np.testing.assert_allclose(kp[0], (63.5, 60.0))
  # Rescaling keeps pixel centres at integers: the image edge -0.5 scales.
  np.testing.assert_allclose(people.project(poses, cam.resized(256))[3],
                             (2 * (73.5 + 0.5) - 0.5, 2 * (54.0 + 0.5) - 0.5))


def test_look_at_is_upright_and_not_mirrored():
  cam = camera_lib.look_at((-4.0, 0.0, 1.0), (0.0, 0.0, 1.0), 128)  # looking along +x
  kp = people.project(np.array([[0, 0, 1], [0, 0, 2], [0, 1, 1]] + [[0, 0, 1]] * 14, float),
                      cam)
  np.testing.assert_allclose(kp[0], (63.5, 63.5), atol=1e-9)
  assert kp[1, 1] < 63.5  # up in the world is up in the image
  assert kp[2, 0] < 63.5  # +y is on the camera's left
  np.testing.assert_allclose(cam.centre, (-4, 0, 1), atol=1e-12)


def test_default_and_seeded_cameras_keep_every_joint_in_the_image():
  for posture in procedural.POSTURES:
    for b, behavior in enumerate(procedural.BEHAVIORS):
      seq = procedural.render('S6', posture, behavior, b, 10 * b + len(posture), 160)
      for cam in (camera_lib.default_camera(seq),
                  camera_lib.camera_from_seed(b, seq, 64)):
        kp = people.project(seq, cam)
        assert kp.min() > 2 and kp.max() < cam.width - 3, (posture, behavior)


def test_render_is_deterministic_and_depends_on_pose_and_camera():
  seq = procedural.render('S1', 'sitting', 'clap', 3, 4, 40)
  cam = camera_lib.camera_from_seed(7, seq, 64)
  a = people.render_person('S1', seq[-1], cam)
  assert a.shape == (64, 64, 3) and a.dtype == np.uint8
  np.testing.assert_array_equal(a, people.render_person('S1', seq[-1], cam))
  assert not np.array_equal(a, people.render_person('S1', seq[0], cam))
  assert not np.array_equal(a, people.render_person(
      'S1', seq[-1], camera_lib.camera_from_seed(8, seq, 64)))
  assert people.render_person('S1', seq[-1], cam, size=(48, 80)).shape == (48, 80, 3)


def test_subjects_look_different():
  pose = standing_pose('S1')
  cam = camera_lib.default_camera(pose, 64)
  renders = {s: people.render_person(s, pose, cam, return_mask=True)
             for s in procedural.SUBJECTS}
  # Pixels on every subject's body (girths differ, so silhouettes differ slightly).
  person = np.all([mask > 0.99 for _, mask in renders.values()], axis=0)
  assert person.sum() > 200
  for i, a in enumerate(procedural.SUBJECTS):
    for b in procedural.SUBJECTS[i + 1:]:
      diff = np.abs(renders[a][0][person].astype(float) - renders[b][0][person]).mean()
      assert diff > 25, f'{a} and {b} look alike (mean |difference| {diff:.1f} / 255)'


def test_limb_in_front_occludes_torso_and_torso_occludes_limb_behind():
  """S7's right forearm (bare skin) across the front of the (white / blue) shirt."""
  pose = standing_pose('S7').astype(np.float64)
  left = pose[4] - pose[1]
  left /= np.linalg.norm(left)
  forward = np.cross(left, [0.0, 0.0, 1.0])
  chest = pose[8] - [0.0, 0.0, 0.15]
  pose[15] = pose[14] + 0.25 * forward - [0.0, 0.0, 0.08]  # right elbow ahead of the chest
  pose[16] = chest + 0.22 * forward + 0.18 * left  # right wrist ahead of the left chest
  mid = 0.5 * (pose[15] + pose[16])
  heading = np.degrees(np.arctan2(forward[1], forward[0]))

  def colour_at_forearm(azimuth):
    cam = camera_lib.orbit_camera(chest, azimuth, 0.0, 3.0, 128)
    image = people.render_person('S7', pose, cam).astype(int)
    x, y = np.round(people.project(np.broadcast_to(mid, (17, 3)), cam)[0]).astype(int)
    return np.median(image[y - 1:y + 2, x - 1:x + 2].reshape(-1, 3), axis=0)

  def skin_like(rgb):  # S7's dark brown skin: red above blue, not bright
    return rgb[0] - rgb[2] > 30 and rgb.max() < 170

  assert skin_like(colour_at_forearm(heading)), colour_at_forearm(heading)
  assert not skin_like(colour_at_forearm(heading + 180.0)), colour_at_forearm(heading + 180)


def test_rendering_covers_the_torso_joints():
  seq = procedural.render('S5', 'bent_forward', 'bow', 2, 9, 30)
  cam = camera_lib.camera_from_seed(1, seq)
  _, mask = people.render_person('S5', seq[-1], cam, return_mask=True)
  for joint in (0, 7, 8):  # pelvis, spine, thorax lie inside the body
    x, y = np.round(people.project(seq[-1], cam)[joint]).astype(int)
    assert mask[y, x] == 1.0


@pytest.mark.parametrize('kwargs, match', [
    (dict(pose=np.zeros((16, 3))), r'\(\.\.\., 17, 3\)'),
    (dict(pose=np.zeros((2, 17, 3))), 'render_sequence'),
    (dict(pose=np.full((17, 3), np.nan)), 'NaN'),
    (dict(subject='S2'), 'Unknown subject'),
    (dict(camera='front'), 'Camera'),
    (dict(size=0), 'size'),
    (dict(supersample=0), 'supersample'),
])
def test_render_errors(kwargs, match):
  pose = standing_pose()
  args = dict(subject='S1', pose=pose, camera=camera_lib.default_camera(pose, 32))
  args.update(kwargs)
  with pytest.raises(ValueError, match=match):
    people.render_person(**args)


def test_camera_errors():
  pose = standing_pose()
  cam = camera_lib.default_camera(pose, 32)
  behind = camera_lib.look_at(pose[0] + [5.0, 0.0, 0.0], pose[0] + [10.0, 0.0, 0.0], 32)
  with pytest.raises(ValueError, match='behind the camera'):
    people.project(pose, behind)
  with pytest.raises(ValueError, match='coincide'):
    camera_lib.look_at((0, 0, 1), (0, 0, 1))
  with pytest.raises(ValueError, match='intrinsics'):
    camera_lib.Camera.from_arrays(np.eye(3) * -1, cam.extrinsics, 32)
  with pytest.raises(ValueError, match='seed'):
    camera_lib.camera_from_seed(-1, pose)


def _key(ex) -> str:
  return ex['sequence'].decode() if isinstance(ex['sequence'], bytes) else ex['sequence']


def test_random_outfits_are_seeded_varied_and_dress_any_body():
  looks = [appearance_lib.random_outfit(s) for s in range(200)]
  assert appearance_lib.random_outfit(7) == looks[7]
  assert len({(l.shirt, l.trousers) for l in looks}) == 200
  for l in looks:
    assert 0.9 <= l.girth <= 1.12
    assert all(0.0 <= c <= 1.0 for c in l.shirt + l.trousers + l.shoes)
    assert 'plain' in (l.shirt_pattern, l.trousers_pattern)
  kinds = {l.shirt_pattern for l in looks} | {l.trousers_pattern for l in looks}
  assert kinds == set(appearance_lib.PATTERNS)
  for flag in ('long_sleeves', 'shorts', 'long_hair'):
    assert 0.1 < np.mean([getattr(l, flag) for l in looks]) < 0.7, flag
  assert appearance_lib.look('S1', -1) == appearance_lib.appearance('S1')
  assert appearance_lib.look('S1', 3) == looks[3]
  with pytest.raises(ValueError, match='non-negative int'):
    appearance_lib.random_outfit(-2)
  with pytest.raises(ValueError, match='subject'):
    appearance_lib.look('S2', 3)
  # The same body and pose in two outfits: the same silhouette up to girth, other colours.
  pose = standing_pose('S9')
  cam = camera_lib.default_camera(pose, 64)
  a, mask_a = people.render_person('S9', pose, cam, return_mask=True, outfit_seed=1)
  b, mask_b = people.render_person('S9', pose, cam, return_mask=True, outfit_seed=2)
  inside = (mask_a > 0.99) & (mask_b > 0.99)
  assert inside.sum() > 100
  assert np.abs(a[inside].astype(int) - b[inside]).mean() > 20
  np.testing.assert_array_equal(a, people.render_person('S9', pose, cam, outfit_seed=1))


def test_outfit_seeds_follow_the_key_and_the_mode():
  assert outfit_seed(0, 'S1/standing/wave/0') == outfit_seed(0, 'S1/standing/wave/0') >= 0
  assert outfit_seed(0, 'S1/standing/wave/0') != outfit_seed(0, 'S1/standing/wave/1')
  assert outfit_seed(0, 'S1/standing/wave/0') != outfit_seed(1, 'S1/standing/wave/0')
  assert outfit_seed(0, 'S1/standing/wave/0', 'subject') == -1
  with pytest.raises(ValueError, match='outfits='):
    outfit_seed(0, 'S1/standing/wave/0', 'person')


def test_builder_images_equal_fresh_renderings(people_data):
  builder, train, test = people_data
  config = builder.builder_config
  size = config.image_size
  names = builder.info.features['subject'].names
  assert len(train) == 5 * 2 * 2 * 2 and len(test) == 2 * 2 * 2 * 2
  for source, subjects in ((train, procedural.TRAIN_SUBJECTS), (test, procedural.TEST_SUBJECTS)):
    for i in range(len(source)):
      ex = source[i]
      subject = names[ex['subject']]
      assert subject in subjects
      cam = camera_lib.Camera.from_arrays(ex['intrinsics'], ex['extrinsics'], size)
      assert ex['outfit_seed'] == outfit_seed(config.seed, _key(ex)) >= 0
      fresh = people.render_person(subject, ex['keypoints_3d'], cam,
                                   supersample=config.supersample,
                                   outfit_seed=ex['outfit_seed'])
      np.testing.assert_array_equal(ex['image'], fresh)
      np.testing.assert_allclose(ex['keypoints_2d'], people.project(ex['keypoints_3d'], cam),
                                 atol=1e-4)
  # The stored pose is the generator's frame for the stored seeds, under the same key.
  ex = train[0]
  key = _key(ex)
  subject, posture, behavior, _ = key.split('/')
  assert (ex['behavior_seed'], ex['placement_seed']) == procedural.example_seeds(config.seed,
                                                                                key)
  poses = procedural.render(subject, posture, behavior, ex['behavior_seed'],
                           ex['placement_seed'], config.num_frames)
  np.testing.assert_array_equal(ex['keypoints_3d'], poses[ex['frame']])
  assert procedural.BEHAVIORS[ex['behavior']] == behavior
  assert procedural.POSTURES[ex['posture']] == posture
