"""human36m_frames on a tiny release: VideoPose3D-style poses, two cameras, an mp4 and a frame
folder, camera-parameters.json; the projection against a hand computation; bad inputs."""

import json
import os

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from bds_jax import skeleton
from bds_jax.data import datasets
from bds_jax.data import images
from bds_jax.h36m import cameras as cameras_lib
from tfds_builders import human36m_frames

CAMS = ('54138969', '55011271')
N = 12  # pose and video frames per sequence
W, H = 80, 64  # video size (non-square: keypoints scale per axis)
# Camera 1: R = I, t = (0, 0, 3000) mm; camera 2: turned 90° about the optical axis.
K1 = [[100.0, 0.0, 40.0], [0.0, 110.0, 30.0], [0.0, 0.0, 1.0]]
K2 = [[120.0, 0.0, 40.0], [0.0, 120.0, 32.0], [0.0, 0.0, 1.0]]
R2 = [[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
PELVIS = (0.1, -0.05, 0.5)  # metres, world frame, pose frame 0


def _poses(seed):
  rng = np.random.default_rng(seed)
  p = rng.uniform(-0.3, 0.3, (N, 32, 3)) + np.array([0.0, 0.0, 1.0])
  p[0, 0] = PELVIS
  return p.astype(np.float32)


def _video(path, folder=False):
  """Frame i is a flat grey of level 20·i."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  levels = [np.full((H, W, 3), 20 * i, np.uint8) for i in range(N)]
  if folder:
    os.makedirs(path)
    for i, img in enumerate(levels):
      Image.fromarray(img).save(os.path.join(path, f'img_{i + 1:06d}.png'))
    return
  writer = imageio_ffmpeg.write_frames(path, (W, H), fps=50, macro_block_size=16,
                                       ffmpeg_log_level='error')
  writer.send(None)
  for img in levels:
    writer.send(img.tobytes())
  writer.close()


def write_release(root):
  positions = {'S1': {'Directions 1': _poses(1)}, 'S9': {'Walking': _poses(2)}}
  np.savez(os.path.join(root, 'data_3d_h36m.npz'), positions_3d=positions)
  for cam in CAMS:
    _video(os.path.join(root, 'S1', 'Videos', f'Directions 1.{cam}.mp4'))
  _video(os.path.join(root, 'S9', 'Videos', f'Walking.{CAMS[0]}'), folder=True)
  _video(os.path.join(root, 'S9', 'Videos', f'Walking.{CAMS[1]}.mp4'))
  extr = {s: {CAMS[0]: {'R': np.eye(3).tolist(), 't': [[0.0], [0.0], [3000.0]]},
              CAMS[1]: {'R': R2, 't': [[10.0], [20.0], [4000.0]]}} for s in ('S1', 'S9')}
  params = {'intrinsics': {CAMS[0]: {'calibration_matrix': K1, 'distortion': [0.0] * 5},
                           CAMS[1]: {'calibration_matrix': K2, 'distortion': [0.0] * 5}},
            'extrinsics': extr}
  with open(os.path.join(root, cameras_lib.CAMERA_FILENAME), 'w') as f:
    json.dump(params, f)


CONFIG = human36m_frames.FramesConfig(name='tiny', image_size=32, stride=5, cameras=CAMS,
                                      train_subjects=('S1',), test_subjects=('S9',))


def build(manual, data_dir):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  builder = human36m_frames.Builder(config=CONFIG, data_dir=str(data_dir),
                                    file_format='array_record')
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=str(manual), try_download_gcs=False))
  return builder


@pytest.fixture(scope='module')
def built(tmp_path_factory):
  manual = tmp_path_factory.mktemp('h36m_raw')
  write_release(str(manual))
  return build(manual, tmp_path_factory.mktemp('h36m_tfds')), manual


def test_frames_strides_splits_and_images(built):
  builder, _ = built
  for split, subject in (('train', 'S1'), ('test', 'S9')):
    source = builder.as_data_source(split)
    got = sorted((source[i]['camera'].decode(), int(source[i]['frame']))
                 for i in range(len(source)))
    assert got == [(c, f) for c in CAMS for f in (0, 5, 10)]  # every 5th of 12 frames
    for i in range(len(source)):
      ex = source[i]
      assert ex['image'].shape == (32, 32, 3)
      assert builder.info.features['subject'].names[ex['subject']] == subject
      # The stored frame is video frame `frame` (flat grey 20·frame; JPEG and H.264 round it).
      assert abs(ex['image'].mean() - 20 * ex['frame']) < 6, (split, ex['camera'], ex['frame'])
      want_3d = _poses(1 if subject == 'S1' else 2)[ex['frame']][list(skeleton.H36M_32_TO_17)]
      np.testing.assert_array_equal(ex['keypoints_3d'], want_3d)


def test_projection_matches_a_hand_computation(built):
  builder, _ = built
  source = builder.as_data_source('train')
  ex = {(source[i]['camera'].decode(), int(source[i]['frame'])): source[i]
        for i in range(len(source))}
  # Camera 1: x_cam = (100, -50, 500) mm + (0, 0, 3000) = (100, -50, 3500);
  # u = 100·100/3500 + 40 = 42.857, v = 110·(-50)/3500 + 30 = 28.429 in the 80×64 video,
  # then × 32/80 and × 32/64 for the stored 32×32 frame.
  np.testing.assert_allclose(ex[(CAMS[0], 0)]['keypoints_2d'][0],
                             (42.857143 * 0.4, 28.428571 * 0.5), rtol=1e-6)
  # Camera 2: R·(100, -50, 500) = (50, 100, 500), + (10, 20, 4000) = (60, 120, 4500);
  # u = 120·60/4500 + 40 = 41.6, v = 120·120/4500 + 32 = 35.2.
  np.testing.assert_allclose(ex[(CAMS[1], 0)]['keypoints_2d'][0], (41.6 * 0.4, 35.2 * 0.5),
                             rtol=1e-6)
  # Every joint agrees with the stored camera (K for the 32 px frame, [R | t] in metres).
  for e in ex.values():
    cam = np.asarray(e['intrinsics'], np.float64) @ np.asarray(e['extrinsics'], np.float64)
    x = np.concatenate([e['keypoints_3d'], np.ones((17, 1))], axis=1) @ cam.T
    np.testing.assert_allclose(e['keypoints_2d'], x[:, :2] / x[:, 2:], rtol=1e-5, atol=1e-4)


def test_frames_feed_17_joint_pairs_of_one_subject(built):
  builder, _ = built
  source = builder.as_data_source('train')
  ims = images.ImageSet(
      source=source, image_size=32,
      keypoints=np.stack([source[i]['keypoints_2d'] for i in range(len(source))]),
      subjects=np.zeros(len(source), np.int32), subject_names=('S1',),
      sequences=np.array(['s'] * len(source)), frames=np.arange(len(source)), extras={},
      name='human36m_frames', split='train', layout=datasets.get('human36m_frames').keypoints)
  item = ims.item(0, 3)
  assert item['keypoints'].shape == (17, 2) and item['image'].shape == (32, 32, 3)
  assert item['stickman'].max() > -1  # something is drawn


def _break_missing_video(root):
  os.remove(os.path.join(root, 'S1', 'Videos', f'Directions 1.{CAMS[1]}.mp4'))
  return FileNotFoundError, rf'Directions 1\.{CAMS[1]}\.mp4 not found'


def _break_truncated_video(root):
  path = os.path.join(root, 'S9', 'Videos', f'Walking.{CAMS[1]}.mp4')
  with open(path, 'rb') as f:
    raw = f.read()
  with open(path, 'wb') as f:
    f.write(raw[:len(raw) // 3])
  return ValueError, rf'Walking\.{CAMS[1]}\.mp4: (cannot open|decoding failed)'


def _break_camera_file(root):
  path = os.path.join(root, cameras_lib.CAMERA_FILENAME)
  with open(path) as f:
    params = json.load(f)
  del params['extrinsics']['S9']
  with open(path, 'w') as f:
    json.dump(params, f)
  return ValueError, r"camera-parameters\.json: no extrinsics\['S9'\]"


@pytest.mark.parametrize('breaker', [_break_missing_video, _break_truncated_video,
                                     _break_camera_file])
def test_bad_input_is_a_clear_error_naming_the_file(tmp_path, breaker):
  os.makedirs(tmp_path / 'raw')
  write_release(str(tmp_path / 'raw'))
  error, match = breaker(str(tmp_path / 'raw'))
  with pytest.raises(error, match=match):
    build(tmp_path / 'raw', tmp_path / 'tfds')
