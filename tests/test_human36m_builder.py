"""Tests of the Human3.6M readers (bds_jax/h36m) and the `human36m` TFDS builder.

One synthetic motion is written in all three real on-disk formats: smooth random exp-map
rotations go through our forward kinematics; the resulting root-centred poses, moved by a known
per-sequence rigid transform (a heading about z and a translation), are written to the CDF files
and to the npz, and the exp-map channels, with that transform encoded in the root channels, to
the text files. The readers must then agree: (a) and (b) exactly, (c) up to that transform.
"""

import io
import logging
import os
import pickle
import sys
import zipfile

import numpy as np
import pytest
import tensorflow_datasets as tfds
from cdflib.cdfwrite import CDF as CDFWriter

from bds_jax import skeleton
from bds_jax.h36m import actions
from bds_jax.h36m import formats
from bds_jax.h36m import kinematics
from tfds_builders.human36m import human36m_dataset_builder as h36m_builder

# (canonical action, trial, CDF file stem, npz key, exp-map file stem) per subject; the spellings
# vary across subjects as they do in the official release.
_COMMON = [
    ('Walking', 1, 'Walking', 'Walking', 'walking_1'),
    ('Walking', 2, 'Walking 1', 'Walking 1', 'walking_2'),
    ('Sitting', 1, 'Sitting 1', 'Sitting 1', 'sitting_1'),
    ('Directions', 1, 'Directions 1', 'Directions 1', 'directions_1'),
]
_NAMES = {
    'S1': _COMMON + [('WalkingDog', 1, 'WalkDog', 'WalkDog', 'walkingdog_1'),
                     ('TakingPhoto', 1, 'Photo 1', 'Photo 1', 'takingphoto_1')],
    'S5': _COMMON + [('WalkingDog', 2, 'WalkingDog 1', 'WalkDog 1', 'walkingdog_2'),
                     ('TakingPhoto', 1, 'TakingPhoto', 'Photo', 'takingphoto_1')],
    'S9': _COMMON + [('SittingDown', 1, 'SittingDown 2', 'SittingDown 2', 'sittingdown_1')],
}
_TO_Z_UP = kinematics.Y_UP_TO_Z_UP


def _smooth_expmap(rng, n, scale=1.0):
  """[n, 99] exp-map channels: per-joint sinusoids around a random pose, root channels zero."""
  t = np.arange(n)[:, None] / 50.0
  base = rng.normal(0.0, 0.3 * scale, (1, 96))
  amp = rng.uniform(0.05, 0.4, (1, 96)) * scale
  freq = rng.uniform(0.3, 1.5, (1, 96))
  phase = rng.uniform(0, 2 * np.pi, (1, 96))
  return np.concatenate([np.zeros((n, 3)), base + amp * np.sin(2 * np.pi * freq * t + phase)], 1)


def _make_motion(seed=0, scale=1.0):
  """{(subject, action, trial): dict(channels, world_m, rotation, translation)}.

  `scale` shrinks the joint rotations (not the root's heading), e.g. for near-rest poses.
  """
  rng = np.random.default_rng(seed)
  motion = {}
  for subject, names in _NAMES.items():
    for action, trial, *_ in names:
      channels = _smooth_expmap(rng, int(rng.integers(100, 300)), scale)
      heading = rng.uniform(-np.pi, np.pi)
      root_mm = rng.uniform(-2000, 2000, 3)  # Release frame: y up.
      channels[:, 3:6] = [0.0, heading, 0.0]  # Root rotation about the release's vertical axis.
      channels[:, 0:3] = root_mm
      # In z-up row vectors the stored root turns into p -> p @ m + t (m a rotation about z).
      m = _TO_Z_UP.T @ kinematics.rodrigues(np.array([0.0, heading, 0.0])) @ _TO_Z_UP
      t = root_mm @ _TO_Z_UP / 1000.0
      canonical = kinematics.expmap_to_positions(channels)  # Root zeroed.
      motion[(subject, action, trial)] = dict(
          channels=channels, world_m=canonical @ m + t, rotation=m, translation=t)
  return motion


def _write_cdf(path, pose, n_channels=96, checksum=False):
  path.parent.mkdir(parents=True, exist_ok=True)
  writer = CDFWriter(str(path), cdf_spec={'Majority': 'row_major', 'Checksum': checksum},
                     delete=True)
  writer.write_var({'Variable': 'Pose', 'Data_Type': CDFWriter.CDF_DOUBLE, 'Num_Elements': 1,
                    'Rec_Vary': True, 'Dim_Sizes': [pose.shape[1], n_channels], 'Compress': 0},
                   var_data=pose)
  writer.close()


def _write_expmap(path, channels):
  path.parent.mkdir(parents=True, exist_ok=True)
  np.savetxt(path, channels, delimiter=',', fmt='%.17g')


def _write_layouts(root, motion):
  """Writes the three layouts under root/{cdf,npz,expmap}; returns {layout: {source: key}}."""
  sources = {'cdf': {}, 'npz': {}, 'expmap': {}}
  npz = {}
  for subject, names in _NAMES.items():
    for action, trial, cdf_stem, npz_key, expmap_stem in names:
      key = (subject, action, trial)
      world_m = motion[key]['world_m']
      rel = f'{subject}/MyPoseFeatures/D3_Positions/{cdf_stem}.cdf'
      _write_cdf(root / 'cdf' / rel, (world_m * 1000.0).reshape(1, -1, 96))
      sources['cdf'][rel] = key
      npz.setdefault(subject, {})[npz_key] = world_m.astype(np.float32)
      sources['npz'][f'data_3d_h36m.npz::{subject}/{npz_key}'] = key
      rel = f'{subject}/{expmap_stem}.txt'
      _write_expmap(root / 'expmap' / rel, motion[key]['channels'])
      sources['expmap'][rel] = key
  (root / 'npz').mkdir()
  np.savez_compressed(root / 'npz' / 'data_3d_h36m.npz', positions_3d=npz)
  return sources


@pytest.fixture(scope='module')
def data(tmp_path_factory):
  root = tmp_path_factory.mktemp('h36m')
  motion = _make_motion()
  sources = _write_layouts(root, motion)
  return root, motion, sources


def _read(manual_dir, **kwargs):
  reader = formats.H36MReader(manual_dir, **kwargs)
  return reader, {s.source_file: s for s in reader.sequences()}


# ---------------------------------------------------------------------------------------------
# Actions and kinematics.


@pytest.mark.parametrize('stem, expected', [
    ('Photo 1', ('TakingPhoto', '1')), ('TakingPhoto', ('TakingPhoto', '')),
    ('WalkDog', ('WalkingDog', '')), ('WalkingDog 1', ('WalkingDog', '1')),
    ('walkingdog_2', ('WalkingDog', '2')), ('Walking', ('Walking', '')),
    ('Walking 1', ('Walking', '1')), ('walkingtogether_1', ('WalkTogether', '1')),
    ('SittingDown 2', ('SittingDown', '2')), ('sittingdown_1', ('SittingDown', '1')),
])
def test_parse_action_name(stem, expected):
  assert actions.parse_action_name(stem, 'f') == expected


def test_action_ids_and_unknown_name():
  assert len(actions.ACTIONS) == 15
  # Class id = upstream ID - 2 (reference spec §1.1): Directions 2 -> 0, WalkTogether 16 -> 14.
  assert actions.action_id('Directions') == 0
  assert actions.action_id('TakingPhoto') == 12 - 2
  assert actions.action_id('WalkTogether') == 14
  with pytest.raises(ValueError, match=r'S1/Dancing 1\.cdf.*Dancing 1'):
    actions.parse_action_name('Dancing 1', 'S1/Dancing 1.cdf')


def test_forward_kinematics_geometry():
  channels = _smooth_expmap(np.random.default_rng(1), 20)
  channels[:, :6] = np.random.default_rng(2).normal(size=(20, 6))  # Ignored by root='zero'.
  xyz = kinematics.expmap_to_positions(channels)
  parents = list(skeleton.PARENTS_32[1:])
  bones = np.linalg.norm(xyz[:, 1:] - xyz[:, parents], axis=-1)
  np.testing.assert_allclose(bones, np.broadcast_to(
      np.linalg.norm(kinematics.OFFSETS_32_MM[1:], axis=-1) / 1000, bones.shape), atol=1e-9)
  np.testing.assert_allclose(xyz[:, 0], 0.0)
  # With all rotations zero the legs hang straight down: z is up after the y-up -> z-up turn.
  rest = kinematics.expmap_to_positions(np.zeros((1, 99)))[0]
  np.testing.assert_allclose(rest[3], [-0.132948591, 0.0, -(442.894612 + 454.206447) / 1000])
  r = kinematics.rodrigues(np.array([[0.0, 0.0, np.pi / 2], [1e-9, 0.0, 0.0]]))
  np.testing.assert_allclose(r[0], [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-12)
  np.testing.assert_allclose(r[1], np.eye(3), atol=1e-8)


def test_forward_kinematics_convention():
  """Row vectors, R_j = R(e_j) @ R_p: worked by hand for the right leg (joints 1, 2, 3)."""
  channels = np.zeros((1, 99))
  channels[0, 6:9] = [0.0, 0.0, np.pi / 2]  # Joint 1 (r_hip): 90 degrees about z.
  channels[0, 9:12] = [np.pi / 2, 0.0, 0.0]  # Joint 2 (r_knee): 90 degrees about x.
  xyz = kinematics.expmap_to_positions(channels)[0] * 1000
  # Release frame (y up): knee = hip + (0, -442.89, 0) @ Rz(90) = hip + (-442.89, 0, 0); foot =
  # knee + (0, -454.21, 0) @ Rx(90) @ Rz(90) = knee + (0, 0, 454.21). Then (x, y, z) -> (x, -z, y).
  np.testing.assert_allclose(xyz[1], [-132.948591, 0, 0], atol=1e-9)
  np.testing.assert_allclose(xyz[2], [-132.948591 - 442.894612, 0, 0], atol=1e-9)
  np.testing.assert_allclose(xyz[3], [-132.948591 - 442.894612, -454.206447, 0], atol=1e-9)


# ---------------------------------------------------------------------------------------------
# The three layouts agree.


def test_layouts_agree(data):
  root, motion, sources = data
  read = {layout: _read(root / layout)[1] for layout in formats.LAYOUTS}
  for layout in formats.LAYOUTS:
    assert set(read[layout]) == set(sources[layout])
    for source, seq in read[layout].items():
      subject, action, _ = sources[layout][source]
      assert (seq.subject, seq.action, seq.layout) == (subject, action, layout)
      assert seq.poses_32.dtype == np.float32 and seq.poses_32.shape[1:] == (32, 3)

  by_key = {layout: {sources[layout][s]: q for s, q in read[layout].items()}
            for layout in formats.LAYOUTS}
  idx = list(skeleton.H36M_32_TO_17)
  for key, m in motion.items():
    a, b, c = (by_key[layout][key].poses_32[:, idx] for layout in formats.LAYOUTS)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a, m['world_m'][:, idx], atol=1e-6)
    # (c) is root-centred with a canonical heading: (a) = (c) @ rotation + translation.
    np.testing.assert_allclose(c[:, 0], 0.0, atol=1e-7)
    np.testing.assert_allclose(c @ m['rotation'] + m['translation'], a, atol=1e-5)
    assert not np.allclose(c, a, atol=1e-2)


def test_expmap_keep_root_reproduces_world(data):
  root, motion, sources = data
  _, seqs = _read(root / 'expmap', expmap_root='keep')
  for source, seq in seqs.items():
    np.testing.assert_allclose(seq.poses_32, motion[sources['expmap'][source]]['world_m'],
                               atol=1e-5)


def test_npz_pickled_by_numpy1(data, tmp_path):
  """VideoPose3D's file was written by NumPy 1.x: protocol 3, numpy.core.multiarray."""
  root, _, _ = data
  positions = formats.load_npz_positions(root / 'npz' / 'data_3d_h36m.npz')
  container = np.empty((), dtype=object)
  container[()] = positions
  raw = pickle.dumps(container, protocol=3)
  assert b'numpy._core.multiarray\n_reconstruct' in raw  # GLOBAL opcode, newline-delimited.
  raw = raw.replace(b'numpy._core.multiarray', b'numpy.core.multiarray')
  header = io.BytesIO()
  np.lib.format.write_array_header_1_0(
      header, {'descr': '|O', 'fortran_order': False, 'shape': ()})
  (tmp_path / 'old').mkdir()
  with zipfile.ZipFile(tmp_path / 'old' / 'data_3d_h36m.npz', 'w') as zf:
    zf.writestr('positions_3d.npy', header.getvalue() + raw)  # Header includes the magic.
  _, old = _read(tmp_path / 'old')
  _, new = _read(root / 'npz')
  assert set(old) == set(new)
  for source, seq in new.items():
    np.testing.assert_array_equal(old[source].poses_32, seq.poses_32)


def test_subaction_labels(data):
  root, _, _ = data
  _, seqs = _read(root / 'cdf')
  got = {(s.subject, s.action, s.subaction) for s in seqs.values()}
  assert {('S1', 'TakingPhoto', '1'), ('S1', 'WalkingDog', ''), ('S5', 'TakingPhoto', ''),
          ('S5', 'WalkingDog', '1'), ('S1', 'Walking', ''), ('S1', 'Walking', '1')} <= got


# ---------------------------------------------------------------------------------------------
# Layout detection.


def test_detect_layout(data, tmp_path):
  root, _, _ = data
  for layout in formats.LAYOUTS:
    assert formats.detect_layout(root / layout) == layout
  # The exp-map zip unpacks to h3.6m/dataset/S<k>/.
  nested = tmp_path / 'zip' / 'h3.6m' / 'dataset' / 'S9'
  nested.mkdir(parents=True)
  (nested / 'walking_1.txt').write_text((root / 'expmap/S9/walking_1.txt').read_text())
  assert formats.detect_layout(tmp_path / 'zip') == 'expmap'


def test_detect_layout_errors(tmp_path):
  empty = tmp_path / 'empty'
  empty.mkdir()
  with pytest.raises(ValueError, match=r'(?s)is empty.*Expected one of.*D3_Positions.*'
                     r'data_3d_h36m\.npz.*<action>_<sub>\.txt'):
    formats.detect_layout(empty)

  wrong = tmp_path / 'wrong'
  (wrong / 'S1' / 'Videos').mkdir(parents=True)
  (wrong / 'S1' / 'Videos' / 'Walking.mp4').write_bytes(b'')
  (wrong / 'h36m.npz').write_bytes(b'')
  with pytest.raises(ValueError, match=r'(?s)No Human3\.6M poses.*S1/.*Videos/.*h36m\.npz.*'
                     r'Expected one of'):
    formats.detect_layout(wrong)
  with pytest.raises(ValueError, match=r"No 'cdf' Human3\.6M layout"):
    formats.H36MReader(wrong, 'cdf')
  with pytest.raises(ValueError, match='does not exist'):
    formats.detect_layout(tmp_path / 'missing')

  both = tmp_path / 'both'
  (both / 'S1').mkdir(parents=True)
  (both / 'S1' / 'walking_1.txt').write_text('0' + ',0' * 98 + '\n')
  (both / 'data_3d_h36m.npz').write_bytes(b'')
  with pytest.raises(ValueError, match=r'several Human3\.6M layouts \(npz, expmap\)'):
    formats.detect_layout(both)


# ---------------------------------------------------------------------------------------------
# Bad inputs: a clear error naming the file, or a counted skip.


class _Evil:
  """Unpickling this runs a shell command."""

  def __init__(self, marker):
    self.marker = marker

  def __reduce__(self):
    return os.system, (f'touch {self.marker}',)


def _truncate(path, keep):
  path.write_bytes(path.read_bytes()[:int(len(path.read_bytes()) * keep)])


def _break_cdf_truncated(d):
  p = d / 'S1/MyPoseFeatures/D3_Positions/Walking 1.cdf'
  _truncate(p, 0.5)
  return p, r'cannot read .*corrupt or truncated'


def _break_cdf_checksum(d):
  p = d / 'S1/MyPoseFeatures/D3_Positions/Walking 1.cdf'
  _write_cdf(p, np.ones((1, 120, 96)), checksum=True)
  corrupt = bytearray(p.read_bytes())
  corrupt[len(corrupt) // 2] ^= 0xFF  # A flipped bit in the data, same length.
  p.write_bytes(bytes(corrupt))
  return p, r'fails the md5 checksum'


def _break_cdf_nan(d):
  p = d / 'S1/MyPoseFeatures/D3_Positions/Walking 1.cdf'
  pose = np.ones((1, 120, 96))
  pose[0, 17, 5] = np.nan
  _write_cdf(p, pose)
  return p, r'NaN or inf in 1 frame\(s\), first at frame 17'


def _break_cdf_channels(d):
  p = d / 'S1/MyPoseFeatures/D3_Positions/Walking 1.cdf'
  _write_cdf(p, np.ones((1, 120, 93)), n_channels=93)
  return p, r'shape \(1, 120, 93\).*96 channels'


def _break_cdf_action(d):
  p = d / 'S1/MyPoseFeatures/D3_Positions/Dancing 1.cdf'
  _write_cdf(p, np.ones((1, 120, 96)))
  return p, r"unknown Human3\.6M action name 'Dancing 1'"


def _break_text_truncated(d):
  p = d / 'S1/walking_2.txt'
  text = p.read_text()
  p.write_text(text[:len(text) // 2])  # Cuts a line in the middle.
  return p, r'not a valid exp-map text file'


def _break_text_nan(d):
  p = d / 'S1/walking_2.txt'
  lines = p.read_text().splitlines()
  lines[4] = ','.join(['nan'] + lines[4].split(',')[1:])
  p.write_text('\n'.join(lines) + '\n')
  return p, r'NaN or inf on 1 line\(s\), first on line 5'


def _break_text_channels(d):
  p = d / 'S1/walking_2.txt'
  np.savetxt(p, np.zeros((50, 98)), delimiter=',')
  return p, r'98 values per line; expected 99'


def _break_text_action(d):
  p = d / 'S1/juggling_1.txt'
  np.savetxt(p, np.zeros((50, 99)), delimiter=',')
  return p, r"unknown Human3\.6M action name 'juggling_1'"


def _break_npz_nan(d):
  p = d / 'data_3d_h36m.npz'
  positions = formats.load_npz_positions(p)
  positions['S1']['Walking 1'][3, 2, 1] = np.nan
  np.savez_compressed(p, positions_3d=positions)
  return p, r'data_3d_h36m\.npz::S1/Walking 1: NaN or inf in 1 frame\(s\), first at frame 3'


def _break_npz_channels(d):
  p = d / 'data_3d_h36m.npz'
  positions = formats.load_npz_positions(p)
  positions['S1']['Walking 1'] = np.zeros((10, 17, 3), np.float32)
  np.savez_compressed(p, positions_3d=positions)
  return p, r'S1/Walking 1: expected shape \[N, 32, 3\].*got \(10, 17, 3\)'


def _break_npz_action(d):
  p = d / 'data_3d_h36m.npz'
  positions = formats.load_npz_positions(p)
  positions['S1']['Dancing'] = positions['S1']['Walking 1']
  np.savez_compressed(p, positions_3d=positions)
  return p, r"data_3d_h36m\.npz::S1: unknown Human3\.6M action name 'Dancing'"


def _break_npz_millimetres(d):
  p = d / 'data_3d_h36m.npz'
  positions = formats.load_npz_positions(p)
  positions['S1']['Walking 1'] = positions['S1']['Walking 1'] * 1000
  np.savez_compressed(p, positions_3d=positions)
  return p, r'implausible for Human3\.6M; are the units right'


def _break_npz_truncated(d):
  p = d / 'data_3d_h36m.npz'
  _truncate(p, 0.6)
  return p, r"cannot read 'positions_3d' \(corrupt or truncated npz\?\)"


def _break_npz_malicious(d):
  p = d / 'data_3d_h36m.npz'
  marker = d.parent / 'pwned'
  np.savez(p, positions_3d={'S1': {'Walking': _Evil(marker)}})
  return p, r'refusing to unpickle (posix|nt|os)\.system'


_BREAKERS = {
    'cdf': [_break_cdf_truncated, _break_cdf_checksum, _break_cdf_nan, _break_cdf_channels, _break_cdf_action],
    'expmap': [_break_text_truncated, _break_text_nan, _break_text_channels,
               _break_text_action],
    'npz': [_break_npz_nan, _break_npz_channels, _break_npz_action, _break_npz_millimetres,
            _break_npz_truncated, _break_npz_malicious],
}


@pytest.mark.parametrize('layout, breaker', [
    (layout, b) for layout, bs in _BREAKERS.items() for b in bs],
    ids=lambda x: getattr(x, '__name__', x))
def test_bad_input(data, tmp_path, layout, breaker, caplog):
  root, _, sources = data
  d = tmp_path / layout
  d.mkdir()
  # A copy holding S1 only keeps each case small.
  src = root / layout
  for f in src.rglob('*'):
    rel = f.relative_to(src)
    if f.is_file() and (rel.parts[0] == 'S1' or layout == 'npz'):
      (d / rel).parent.mkdir(parents=True, exist_ok=True)
      (d / rel).write_bytes(f.read_bytes())
  if layout == 'npz':
    positions = formats.load_npz_positions(d / 'data_3d_h36m.npz')
    np.savez_compressed(d / 'data_3d_h36m.npz', positions_3d={'S1': positions['S1']})
  path, message = breaker(d)
  n_good = sum(1 for s in sources[layout].values() if s[0] == 'S1')

  with pytest.raises(ValueError, match=message) as err:
    list(formats.H36MReader(d).sequences())
  assert str(path) in str(err.value)
  assert not (tmp_path / 'pwned').exists()

  reader = formats.H36MReader(d, skip_bad_files=True)
  with caplog.at_level(logging.WARNING):
    seqs = list(reader.sequences())
  assert len(reader.skipped) == 1
  assert 'Skipped 1 bad Human3.6M file(s)' in caplog.text
  if breaker is _break_npz_malicious or breaker is _break_npz_truncated:
    assert reader.skipped[0].source_file == 'data_3d_h36m.npz' and not seqs
  elif breaker in (_break_cdf_action, _break_text_action, _break_npz_action):
    assert len(seqs) == n_good  # The extra file is skipped, every good one read.
  else:
    assert len(seqs) == n_good - 1
  assert not (tmp_path / 'pwned').exists()


def test_duplicate_sequence_raises(data, tmp_path):
  root, _, _ = data
  d = tmp_path / 'dup' / 'S1' / 'MyPoseFeatures' / 'D3_Positions'
  d.mkdir(parents=True)
  src = root / 'cdf/S1/MyPoseFeatures/D3_Positions/Photo 1.cdf'
  (d / 'Photo 1.cdf').write_bytes(src.read_bytes())
  (d / 'TakingPhoto 1.cdf').write_bytes(src.read_bytes())
  with pytest.raises(ValueError, match=r"'S1/.*Photo 1\.cdf' and 'S1/.*TakingPhoto 1\.cdf' are "
                     r"both S1 TakingPhoto sub-action '1'"):
    list(formats.H36MReader(tmp_path / 'dup').sequences())


# ---------------------------------------------------------------------------------------------
# The TFDS builder.


def _build(config, data_dir, manual_dir, **kwargs):
  builder = h36m_builder.Builder(config=config, data_dir=data_dir, file_format='array_record',
                                 **kwargs)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=manual_dir, try_download_gcs=False))
  return builder


def _examples(builder, split):
  source = builder.as_data_source(split)
  return [source[i] for i in range(len(source))]


def _labels(builder, examples):
  subjects = builder.info.features['subject'].names
  names = builder.info.features['action'].names
  return {(subjects[e['subject']], names[e['action']]) for e in examples}


def test_builder_subject_split(data, tmp_path):
  root, motion, sources = data
  builder = _build('subjects', tmp_path, root / 'cdf')
  assert builder.info.metadata['layout'] == 'cdf'
  assert builder.info.features['action'].names == list(actions.ACTIONS)
  assert set(builder.info.splits) == {'train', 'test'}
  train, test = _examples(builder, 'train'), _examples(builder, 'test')
  assert {s for s, _ in _labels(builder, train)} == {'S1', 'S5'}
  assert {s for s, _ in _labels(builder, test)} == {'S9'}
  assert len(train) == len(_NAMES['S1']) + len(_NAMES['S5'])
  assert len(test) == len(_NAMES['S9'])
  for e in train + test:
    source = e['source_file'].decode()
    key = sources['cdf'][source]
    assert builder.info.features['action'].names[e['action']] == key[1]
    assert e['layout'].decode() == 'cdf'
    assert e['poses'].dtype == np.float32 and e['poses'].shape[1:] == (17, 3)
    np.testing.assert_array_equal(e['poses'], e['poses_32'][:, list(skeleton.H36M_32_TO_17)])
    np.testing.assert_allclose(e['poses_32'], motion[key]['world_m'], atol=1e-6)
  photo = [e for e in train if e['source_file'].decode().endswith('S1/MyPoseFeatures/'
                                                                   'D3_Positions/Photo 1.cdf')]
  assert len(photo) == 1 and photo[0]['subaction'].decode() == '1'


def test_builder_layouts_agree(data, tmp_path):
  root, motion, sources = data
  npz = _examples(_build('subjects_npz', tmp_path, root / 'npz'), 'test')
  expmap = _examples(_build('subjects', tmp_path / 'x', root / 'expmap'), 'test')
  assert {e['layout'].decode() for e in npz} == {'npz'}
  assert {e['layout'].decode() for e in expmap} == {'expmap'}
  world = {sources['npz'][e['source_file'].decode()]: e['poses'] for e in npz}
  assert len(world) == len(expmap) == len(_NAMES['S9'])
  for e in expmap:
    m = motion[sources['expmap'][e['source_file'].decode()]]
    np.testing.assert_allclose(e['poses'] @ m['rotation'] + m['translation'],
                               world[sources['expmap'][e['source_file'].decode()]], atol=1e-5)


@pytest.mark.parametrize('config, held_out', [
    ('generalize_walking', {'Walking', 'WalkingDog', 'WalkTogether'}),
    ('generalize_sitting', {'Sitting', 'SittingDown', 'Purchases'}),
])
def test_builder_action_held_out(data, tmp_path, config, held_out):
  root, _, _ = data
  builder = _build(config, tmp_path, root / 'npz')
  train = _labels(builder, _examples(builder, 'train'))
  test = _labels(builder, _examples(builder, 'test'))
  every = {(s, a) for s, names in _NAMES.items() for a, *_ in names}
  assert not {a for _, a in train} & held_out  # Upstream's bug: these stayed in train.
  assert {a for _, a in test} <= held_out
  assert train | test == every and not train & test
  assert {s for s, _ in test} == {'S1', 'S5', 'S9'}


def test_builder_validation_and_config_checks(data, tmp_path):
  root, _, _ = data
  config = h36m_builder.Human36mConfig(
      name='val_s5', validation_subjects=('S5',), train_subjects=('S1', 'S5'),
      test_subjects=('S9',))
  builder = _build(config, tmp_path, root / 'cdf')
  assert {s for s, _ in _labels(builder, _examples(builder, 'train'))} == {'S1'}
  assert {s for s, _ in _labels(builder, _examples(builder, 'validation'))} == {'S5'}
  assert {s for s, _ in _labels(builder, _examples(builder, 'test'))} == {'S9'}
  with pytest.raises(ValueError, match='overlap'):
    h36m_builder.Human36mConfig(name='leak', train_subjects=('S1', 'S9'), test_subjects=('S9',))
  names = {c.name for c in h36m_builder.Builder.BUILDER_CONFIGS}
  assert {'subjects', 'subjects_val', 'generalize_walking_cdf', 'generalize_sitting_expmap',
          'subjects_npz'} <= names
  # A config whose split has no data (S8 is not in the synthetic set) fails loudly.
  with pytest.raises(ValueError, match=r"Split 'validation' .* is empty"):
    _build('subjects_val', tmp_path / 'v', root / 'cdf')


def test_builder_skip_bad_files(data, tmp_path):
  root, _, _ = data
  manual = tmp_path / 'manual'
  for f in (root / 'expmap').rglob('*.txt'):
    (manual / f.relative_to(root / 'expmap')).parent.mkdir(parents=True, exist_ok=True)
    (manual / f.relative_to(root / 'expmap')).write_bytes(f.read_bytes())
  (manual / 'S5' / 'sitting_1.txt').write_text('1,2,3\n')
  with pytest.raises(ValueError, match=r'S5/sitting_1\.txt: 3 values per line'):
    _build('subjects', tmp_path / 'a', manual)
  builder = _build('subjects', tmp_path / 'b', manual, skip_bad_files=True)
  assert builder.info.splits['train'].num_examples == len(_NAMES['S1']) + len(_NAMES['S5']) - 1
  skipped = builder.info.metadata['skipped_files']
  assert [s['source_file'] for s in skipped] == ['S5/sitting_1.txt']
  # The metadata survives a reload from disk.
  reloaded = h36m_builder.Builder(config='subjects', data_dir=tmp_path / 'b')
  assert reloaded.info.metadata['skipped_files'] == skipped


def test_no_tensorflow_imported():
  assert not [m for m in sys.modules if m == 'tensorflow' or m.startswith('tensorflow.')]
