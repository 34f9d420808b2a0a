"""bds_jax.motion: BVH (written with bvhio from synthetic_motion clips, two namings, cm and
m, y and z up, 30 and 120 Hz), SMPL joints, VideoPose3D output and .npy read back to the
original 17-joint poses; retargeting; and one clear error per bad file."""

import json
import logging
import warnings

import numpy as np
import pytest

with warnings.catch_warnings():
  warnings.simplefilter('ignore', PendingDeprecationWarning)  # bvhio imports PyGLM by its old name
  import bvhio  # pylint: disable=g-import-not-at-top

from bds_jax import errors
from bds_jax import skeleton
from bds_jax import procedural
from bds_jax.motion import bvh as bvh_reader
from bds_jax.motion import files as motion_files
from bds_jax.motion import retarget
from bvh_files import CMU, MIXAMO, TO_FILE_AXES  # pylint: disable=g-bad-import-order
from bvh_files import rest_pose, write_bvh  # pylint: disable=g-bad-import-order

FRAMES = 60  # 1.2 s at 50 Hz
TOL = 0.005  # metres: "within a few millimetres" (the writer slerps 50 Hz rotations: <3 mm)


@pytest.fixture(scope='module')
def clip():
  """(60, 17, 3) metres, z up, 50 Hz: S9 waving, and its rest pose (all joint angles zero)."""
  poses = procedural.render('S9', 'standing', 'wave', 1, 2, FRAMES).astype(np.float64)
  return poses, rest_pose('S9')


@pytest.mark.parametrize('spec, unit, up, fps', [
    (CMU, 0.01, 'y', 120.0), (CMU, 1.0, 'z', 30.0),
    (MIXAMO, 0.01, 'y', 30.0), (MIXAMO, 1.0, 'z', 120.0)],
    ids=['cmu-cm-yup-120hz', 'cmu-m-zup-30hz', 'mixamo-cm-yup-30hz', 'mixamo-m-zup-120hz'])
def test_bvh_reads_back_the_clip(clip, tmp_path, caplog, spec, unit, up, fps):
  poses, rest = clip
  path = write_bvh(tmp_path / 'walk.bvh', poses, rest, spec, unit, up, fps)
  with caplog.at_level(logging.INFO, logger='bds_jax'):
    got = motion_files.read_motion(str(path), 50.0, retarget='never', place=False)
  # The file's last frame may fall just before the clip's last 50 Hz frame.
  assert got.shape[1:] == (17, 3) and len(got) >= FRAMES - 1 and got.dtype == np.float32
  np.testing.assert_allclose(got, poses[:len(got)], atol=TOL)
  unit_name = 'cm' if unit == 0.01 else 'm'
  assert f'units {unit_name} (detected), up {up} (detected)' in caplog.text
  assert f'{fps:g} Hz -> 50 Hz' in caplog.text
  # At the model's rate: every frame_lag-th frame of the 50 Hz clip.
  got = motion_files.read_motion(str(path), 25.0, retarget='never', place=False)
  np.testing.assert_allclose(got, poses[::2][:len(got)], atol=TOL)


def test_numpy_kinematics_match_bvhio(clip, tmp_path):
  poses, rest = clip
  path = write_bvh(tmp_path / 'a.bvh', poses[:5], rest, CMU, 0.01, 'y', 50.0, order='YXZ')
  mine = bvh_reader.read(str(path))
  root = bvhio.readAsHierarchy(str(path))
  for frame in (0, 4):
    root.loadPose(frame)
    for joint, _, _ in root.layout():
      np.testing.assert_allclose(mine.positions[frame, mine.names.index(joint.Name)],
                                 np.array(joint.PositionWorld), atol=1e-3)  # cm


def test_placing_and_retargeting(clip, tmp_path, caplog):
  poses, rest = clip
  big = poses[:, :1] + 1.3 * (poses - poses[:, :1])  # every bone 30% longer
  path = write_bvh(tmp_path / 'big.bvh', big, rest * 1.3, CMU, 0.01, 'y', 60.0)
  with caplog.at_level(logging.INFO, logger='bds_jax'):
    got = motion_files.read_motion(str(path), 50.0)
  assert 'bones rescaled to the reference skeleton' in caplog.text
  lengths = retarget.bone_lengths(got)
  np.testing.assert_allclose(lengths, np.broadcast_to(retarget.REFERENCE_BONE_LENGTHS,
                                                      lengths.shape), atol=1e-4)
  # Directions and the pelvis path are kept (the path moved to the origin, the floor to 0).
  parents = np.array(skeleton.PARENTS[1:])
  unit = lambda p: (p[:, 1:] - p[:, parents]) / np.linalg.norm(p[:, 1:] - p[:, parents],
                                                               axis=-1, keepdims=True)
  poses = poses[:len(got)]
  np.testing.assert_allclose(unit(got), unit(poses), atol=0.01)
  path_xy = poses[:, 0, :2] - poses[0, 0, :2]
  np.testing.assert_allclose(got[:, 0, :2], path_xy, atol=TOL)
  assert abs(got[:, (3, 6), 2].min()) < 1e-5 and got[0, 0, :2] == pytest.approx([0, 0], abs=1e-5)
  poses = clip[0]
  # S9 is within the threshold of the reference: 'auto' leaves its bones alone.
  assert abs(retarget.largest_difference(poses)[0]) < retarget.DEFAULT_THRESHOLD
  np.testing.assert_allclose(retarget.maybe_retarget(poses), poses, atol=1e-6)


def _smpl(poses):
  """SMPL-layout (T, 24, 3) joints holding the clip's joints where SMPL has them."""
  out = np.zeros((len(poses), 24, 3))
  for ours, smpl in enumerate(motion_files.SMPL_TO_OURS):
    if smpl >= 0:
      out[:, smpl] = poses[:, ours]
  out[:, 3] = 0.5 * (poses[:, 0] + poses[:, 7])   # spine1
  out[:, 9] = 0.5 * (poses[:, 7] + poses[:, 8])   # spine3
  out[:, (10, 11)] = poses[:, (6, 3)] + [0.1, 0, -0.05]  # toes
  out[:, (13, 14)] = 0.5 * (poses[:, (8, 8)] + poses[:, (11, 14)])  # collars
  out[:, (22, 23)] = poses[:, (13, 16)] + [0, 0, -0.08]  # hands
  return out


def _resample(poses, fps):
  t = np.arange(int((len(poses) - 1) / 50.0 * fps) + 1) / fps
  src = np.arange(len(poses)) / 50.0
  return np.stack([[np.interp(t, src, poses[:, j, a]) for a in range(3)]
                   for j in range(poses.shape[1])]).transpose(2, 0, 1)


def test_smpl_joints(clip, tmp_path):
  poses, _ = clip
  joints = _resample(_smpl(poses), 120.0) @ TO_FILE_AXES['y'].T  # y up, as many pipelines
  np.savez(tmp_path / 'amass.npz', joints=joints, mocap_framerate=np.array(120.0))
  got = motion_files.read_motion(str(tmp_path / 'amass.npz'), 50.0, retarget='never',
                                 place=False)
  body = [j for j in range(17) if j != 10]
  poses = poses[:len(got)]
  assert len(got) >= FRAMES - 1
  np.testing.assert_allclose(got[:, body], poses[:, body], atol=TOL)
  # The head top is derived: near the real one.
  assert np.max(np.linalg.norm(got[:, 10] - poses[:, 10], axis=-1)) < 0.05
  # A .npy of joints needs its frame rate.
  np.save(tmp_path / 'joints.npy', joints[:, :22])
  with pytest.raises(errors.InputError, match=r'joints.npy: the file does not say its frame '
                                              r'rate; pass it \(--source_fps'):
    motion_files.read_motion(str(tmp_path / 'joints.npy'))
  got = motion_files.read_motion(str(tmp_path / 'joints.npy'), 50.0, source_fps=120.0,
                                 retarget='never', place=False)
  np.testing.assert_allclose(got[:, body], poses[:, body], atol=TOL)


def test_videopose3d(clip, tmp_path):
  poses, _ = clip
  rel = poses - poses[:, :1]  # VideoPose3D predicts root-relative poses
  camera = np.stack([rel[..., 0], -rel[..., 2], rel[..., 1]], -1)  # x right, y down, z ahead
  np.save(tmp_path / 'vp3d.npy', camera.astype(np.float32))
  got = motion_files.read_motion(str(tmp_path / 'vp3d.npy'), 50.0, format='videopose3d',
                                 source_fps=50.0, retarget='never')
  want = rel.copy()
  want[..., 2] -= rel[:, (3, 6), 2].min()  # the lowest ankle on the floor
  np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.mark.parametrize('up', ['x', 'y', 'z', '-x', '-y', '-z'])
def test_up_axis_rotations_are_proper(up):
  rot = motion_files._rotation_to_z_up(up)  # pylint: disable=protected-access
  axis = np.zeros(3)
  axis['xyz'.index(up[-1])] = -1.0 if up.startswith('-') else 1.0
  np.testing.assert_allclose(rot @ axis, [0, 0, 1])
  assert np.linalg.det(rot) == pytest.approx(1.0)  # a rotation: left stays left


def test_own_npy_format_is_returned_as_stored(clip, tmp_path):
  poses, _ = clip
  np.save(tmp_path / 'mine.npy', poses[None, ::2].astype(np.float32))
  got = motion_files.read_motion(str(tmp_path / 'mine.npy'), 25.0)
  np.testing.assert_allclose(got, poses[None, ::2], atol=1e-6)
  got = motion_files.read_motion(str(tmp_path / 'mine.npy'), 25.0, source_fps=50.0)
  np.testing.assert_allclose(got, poses[None, ::4], atol=1e-6)  # stored at 50 Hz


def test_unmapped_skeleton_and_joint_map(clip, tmp_path):
  poses, rest = clip
  spec = tuple((n.replace('LeftLeg', 'LeftShinBone'), p and p.replace('LeftLeg', 'LeftShinBone'),
                j, e) for n, p, j, e in CMU)
  path = str(write_bvh(tmp_path / 'odd.bvh', poses[:20], rest, spec, 0.01, 'y'))
  with pytest.raises(errors.InputError, match=r'odd.bvh: cannot find our joint\(s\) l_knee among '
                                              r'the file\'s joints \(Hips, LHipJoint, .*'
                                              r'LeftShinBone.*--joint_map=map.json'):
    motion_files.read_motion(path)
  with open(tmp_path / 'map.json', 'w') as f:
    json.dump({'l_knee': 'LeftShinBone'}, f)
  got = motion_files.read_motion(path, joint_map=str(tmp_path / 'map.json'), retarget='never',
                                 place=False)
  np.testing.assert_allclose(got, poses[:20], atol=TOL)
  with open(tmp_path / 'swapped.json', 'w') as f:
    json.dump({'l_knee': 'LeftShinBone', 'l_foot': 'RightFoot'}, f)
  with pytest.raises(errors.InputError, match=r'our l_foot \(RightFoot\) is not below our l_knee'):
    motion_files.read_motion(path, joint_map=str(tmp_path / 'swapped.json'))


def test_bad_files_are_one_clear_error(clip, tmp_path):
  poses, rest = clip
  good = write_bvh(tmp_path / 'good.bvh', poses[:20], rest, CMU, 0.01, 'y').read_text()
  motion = good.index('MOTION')
  files = {
      'cut_motion.bvh': good[:good.rstrip().rfind('\n') + 1],
      'cut_hierarchy.bvh': good[:motion // 2],
      'empty.bvh': '',
      'not_bvh.bvh': 'hello world\n',
      'bad_number.bvh': good[:-20] + ' abc\n',
  }
  for name, text in files.items():
    (tmp_path / name).write_text(text)
  (tmp_path / 'binary.bvh').write_bytes(bytes(range(256)) * 4)
  (tmp_path / 'garbage.npz').write_bytes(b'PK\x03\x04' + bytes(100))
  np.savez(tmp_path / 'params.npz', poses=np.zeros((10, 156)), betas=np.zeros(16))
  nan = _smpl(poses)
  nan[3, 5, 1] = np.nan
  np.savez(tmp_path / 'nan.npz', joints=nan, fps=50)
  zero = _smpl(poses)
  zero[:, 4] = zero[:, 1]  # l_knee on l_hip
  np.savez(tmp_path / 'zero.npz', joints=zero, fps=50)
  np.savez(tmp_path / 'short.npz', joints=_smpl(poses[:8]), fps=50)
  np.save(tmp_path / 'obj.npy', np.array([{'a': 1}], dtype=object), allow_pickle=True)
  for name, message in (
      ('cut_motion.bvh', r'declares 20 frames but holds 19 \(a truncated'),
      ('cut_hierarchy.bvh', r'no complete MOTION section'),
      ('empty.bvh', r'not a BVH file: it does not start with HIERARCHY'),
      ('not_bvh.bvh', r'not a BVH file'),
      ('bad_number.bvh', r'frame 19 has|other than numbers'),
      ('binary.bvh', r'not a BVH file \(not text\)'),
      ('garbage.npz', r'cannot read it as a NumPy file'),
      ('params.npz', r'no SMPL joint positions among its arrays \(poses, betas\)'),
      ('nan.npz', r'contains NaN or inf \(first at index \(3, 5, 1\)\)'),
      ('zero.npz', r'zero-length bones \(l_hip-l_knee\)'),
      ('short.npz', r'8 frames at 50 Hz \(0.16 s\), need at least 11'),
      ('obj.npy', r'not a plain NumPy file'),
      ('missing.bvh', r'motion file not found')):
    with pytest.raises((errors.InputError, FileNotFoundError), match=message) as e:
      motion_files.read_motion(str(tmp_path / name), 50.0, min_frames=11)
    assert str(tmp_path / name) in str(e.value) and '\n' not in str(e.value), name
  # A body tens of metres tall: centimetres read as metres.
  with pytest.raises(errors.InputError, match=r'good.bvh: the body is 1\d\d m from ankle to '
                                              r'head top in units m'):
    motion_files.read_motion(str(tmp_path / 'good.bvh'), units='m')


def test_synthesize_inputs_take_motion_files(clip, tmp_path, caplog):
  """synthesize.py's --source/--target (inputs.select) read motion files through read_motion,
  and rescale the bones of the project's own .npy poses too."""
  from bds_jax.data.normalization import Normalizer  # pylint: disable=g-import-not-at-top
  from bds_jax.synthesis import inputs  # pylint: disable=g-import-not-at-top
  poses, rest = clip
  norm = Normalizer(np.zeros(51, np.float32), np.ones(51, np.float32))
  motion = dict(fps=25.0, format='auto', source_fps=None, units='auto', up='auto',
                joint_map=None, retarget='auto')
  bvh = write_bvh(tmp_path / 'Walk.BVH', poses, rest, CMU, 0.01, 'y', 120.0)
  np.savez(tmp_path / 'pose.npz', joints=_smpl(poses), fps=50)
  assert inputs.is_file(str(bvh)) and inputs.is_file('pose.npz') and not inputs.is_file('test:3')
  for path in (bvh, tmp_path / 'pose.npz'):
    clips = inputs.select(str(path), 1, None, norm, 11, '--source', motion=motion)
    assert clips.poses.shape == (1, 11, 17, 3) and clips.normalized.shape == (1, 11, 51)
    assert clips.titles == [f'{path.name}[0]'] and abs(clips.poses[0, :, (3, 6), 2].min()) < 1e-5
  big = poses[:, :1] + 1.3 * (poses - poses[:, :1])
  np.save(tmp_path / 'big.npy', big[::2].astype(np.float32))
  with caplog.at_level(logging.INFO, logger='bds_jax'):
    clips = inputs.select(str(tmp_path / 'big.npy'), 1, None, norm, 11, '--source',
                          motion=motion)
  assert 'big.npy: bones rescaled to the reference skeleton' in caplog.text
  np.testing.assert_allclose(retarget.mean_bone_lengths(clips.poses),
                             retarget.REFERENCE_BONE_LENGTHS, atol=1e-4)
  with pytest.raises(errors.InputError, match=r'retarget=\'sometimes\': expected one of auto'):
    inputs.select(str(bvh), 1, None, norm, 11, '--source', motion={**motion,
                                                                    'retarget': 'sometimes'})
