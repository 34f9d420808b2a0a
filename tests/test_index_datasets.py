"""DeepFashion and Market-1501 builders on tiny archives written in upstream's index.p format,
their 18-joint stickmen and crops, bad inputs, and a short training run on the 18-joint path."""

import io
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from bds_jax import imaging
from bds_jax import safe_pickle
from bds_jax.data import images
from bds_jax.data import sources
from bds_jax.imaging import index_images
from configs import appearance as appearance_config

# A frontal person in normalised COCO-18 coordinates (DeepFashion's order).
COCO = np.array([
    (0.50, 0.15), (0.50, 0.25), (0.40, 0.25), (0.37, 0.40), (0.35, 0.52), (0.60, 0.25),
    (0.63, 0.40), (0.65, 0.52), (0.44, 0.55), (0.44, 0.72), (0.44, 0.90), (0.56, 0.55),
    (0.56, 0.72), (0.56, 0.90), (0.48, 0.13), (0.52, 0.13), (0.46, 0.14), (0.54, 0.14)])
COCO_NAMES = imaging.DEEPFASHION.joint_names
# The same person in Market's order, by joint name.
MARKET_JOINTS = COCO[[COCO_NAMES.index(n) for n in imaging.MARKET.joint_names]]
# VUnet-style spellings of DeepFashion's joint order (index.p's optional joint_order).
VUNET_ORDER = ['cnose', 'cneck', 'rshoulder', 'relbow', 'rwrist', 'lshoulder', 'lelbow',
               'lwrist', 'rhip', 'rknee', 'rankle', 'lhip', 'lknee', 'lankle', 'reye', 'leye',
               'rear', 'lear']


def _image(path, size, fmt, seed):
  """Noise image of size (height, width) written as fmt; returns the path."""
  rng = np.random.default_rng(seed)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  Image.fromarray(rng.integers(0, 256, size + (3,), dtype=np.uint8)).save(path, format=fmt)
  return path


def _index(d, imgs, joints, train, **extra):
  with open(os.path.join(d, 'index.p'), 'wb') as f:
    pickle.dump({'imgs': imgs, 'joints': joints, 'train': np.asarray(train), **extra}, f)


def write_deepfashion(d):
  """5 JPEGs at 256 px: train = 2 of person 80 (one without its right ear) + 1 without a right
  hip (dropped by the filter), test = 1 of person 81 + 1 whose path names no person."""
  imgs = ['img/MEN/Denim/id_00000080/01_1_front.jpg', 'img/MEN/Denim/id_00000080/01_2_side.jpg',
          'img/MEN/Denim/id_00000080/02_1_front.jpg', 'img/WOMEN/Dress/id_00000081/01_1_front.jpg',
          'img/extra/unnamed.jpg']
  joints = [COCO.copy() for _ in imgs]
  joints[1][16] = -1.0                  # right ear missing: kept
  joints[2][8] = (-1.0, -1.0)           # right hip missing: filtered out
  for i, rel in enumerate(imgs):
    _image(os.path.join(d, rel), (256, 256), 'JPEG', i)
  _index(d, imgs, np.stack(joints), [True, True, True, False, False], joint_order=VUNET_ORDER)
  return imgs, joints


def write_market(d):
  """4 PNGs at 128×64 (h × w): train = 2 of person 0002 + 1 junk (-1), test = 1 of 0007."""
  imgs = ['train/0002_c1s1_000451_03.png', 'train/0002_c3s1_000551_01.png',
          'train/-1_c1s1_000001_00.png', 'test/0007_c2s3_070952_01.png']
  for i, rel in enumerate(imgs):
    _image(os.path.join(d, rel), (128, 64), 'PNG', 10 + i)
  _index(d, imgs, np.stack([MARKET_JOINTS] * 4), [True, True, True, False])
  return imgs


def build(name, manual, data_dir, config=None):
  builder = sources.get_builder(name, str(data_dir), config)
  sources.prepare(builder, name, 'auto', str(manual))
  return builder


@pytest.fixture(scope='module')
def deepfashion(tmp_path_factory):
  manual, data = tmp_path_factory.mktemp('df_raw'), tmp_path_factory.mktemp('df_tfds')
  imgs, joints = write_deepfashion(str(manual))
  return build('deepfashion', manual, data), manual, data, imgs, joints


def test_deepfashion_builds_filtered_splits_with_pixel_keypoints(deepfashion):
  builder, manual, _, imgs, joints = deepfashion
  assert {k: v.num_examples for k, v in builder.info.splits.items()} == {'train': 2, 'test': 2}
  train = builder.as_data_source('train')
  got = {train[i]['sequence'].decode(): train[i] for i in range(len(train))}
  assert set(got) == set(imgs[:2])  # imgs[2] has no right hip: upstream's torso filter
  for i in (0, 1):
    ex = got[imgs[i]]
    np.testing.assert_allclose(ex['keypoints_2d'], joints[i] * 256, rtol=0, atol=256 * 1e-6)
    # 256 px JPEGs are stored as they are: the decoded pixels are the file's.
    np.testing.assert_array_equal(ex['image'], np.asarray(Image.open(manual / imgs[i])))
    assert ex['person'].decode() == 'deepfashion:00000080' and ex['frame'] == 0
  assert got[imgs[1]]['keypoints_2d'][16].tolist() == [-256.0, -256.0]  # missing: negative
  test = builder.as_data_source('test')
  persons = sorted(test[i]['person'].decode() for i in range(len(test)))
  assert persons == ['deepfashion:00000081', f'image:{imgs[4]}']  # a dummy id per image


def test_deepfashion_pairs_feed_the_18_joint_model_inputs(deepfashion):
  _, _, data, _, _ = deepfashion
  c = appearance_config.get_config('deepfashion')
  c.data.data_dir, c.data.prepare = str(data), 'never'
  train = images.load_split(c.data, 'train')
  assert train.layout is imaging.DEEPFASHION and train.image_size == 256
  assert len(train.people) == 1  # both kept train images show person 80
  test = images.load_split(c.data, 'test')
  pairs = images.fixed_pairs(test, 2, seed=0)
  # Each test image is its person's only one: it is its own partner.
  np.testing.assert_array_equal(pairs['index'], pairs['paired_index'])
  assert pairs['keypoints'].shape == (2, 18, 2)
  assert pairs['appearance'].shape == (2, 64, 64, 30)  # 10 crops at 256 / 2^2
  item = train.item(0, 1)
  expected = imaging.draw_stickman(train.keypoints[0], 256, layout=imaging.DEEPFASHION)
  np.testing.assert_array_equal(item['stickman'], images.to_unit_range(expected))


def test_market_stretches_images_and_reads_person_ids(tmp_path):
  imgs = write_market(str(tmp_path / 'raw'))
  builder = build('market1501', tmp_path / 'raw', tmp_path / 'tfds')
  train = builder.as_data_source('train')
  got = {train[i]['sequence'].decode(): train[i] for i in range(len(train))}
  assert set(got) == set(imgs[:3])
  for rel, ex in got.items():
    original = Image.open(tmp_path / 'raw' / rel).convert('RGB')
    want = np.asarray(original.resize((128, 128), Image.Resampling.BICUBIC))
    np.testing.assert_array_equal(ex['image'], want)  # stretched to 128 × 128, as upstream
    np.testing.assert_allclose(ex['keypoints_2d'], MARKET_JOINTS * 128, atol=128 * 1e-6)
  assert got[imgs[0]]['person'] == got[imgs[1]]['person'] == b'market1501:0002'
  assert got[imgs[2]]['person'].decode() == f'image:{imgs[2]}'  # junk: no person


def test_build_command_writes_what_the_data_readers_load(tmp_path):
  # python -m tfds_builders.index_images uses the builders directly (they never import
  # bds_jax.data); what it writes is the dataset sources.py finds already built.
  imgs = write_market(str(tmp_path / 'raw'))
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  command = [sys.executable, '-m', 'tfds_builders.index_images', '--dataset=market1501',
             f'--data_dir={tmp_path / "tfds"}', '--config=small']
  out = subprocess.run(command + [f'--manual_dir={tmp_path / "raw"}'], cwd=root,
                       capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  assert "{'train': 3, 'test': 1}" in out.stdout, out.stdout
  builder = sources.get_builder('market1501', str(tmp_path / 'tfds'), 'small')
  assert builder.is_prepared()
  train = builder.as_data_source('train')
  assert {train[i]['sequence'].decode() for i in range(len(train))} == set(imgs[:3])
  missing = subprocess.run(command + [f'--manual_dir={tmp_path / "none"}'], cwd=root,
                           capture_output=True, text=True, timeout=300)
  assert missing.returncode != 0 and 'does not exist' in missing.stderr


def test_18_joint_stickmen_and_head_crops():
  k = COCO * 256
  img = imaging.draw_stickman(k, 256, layout=imaging.DEEPFASHION)
  neck = 0.5 * (k[2] + k[5])
  mid = np.round(0.5 * (neck + k[0])).astype(int)
  assert tuple(img[mid[1], mid[0]]) == (127, 127, 0)  # neck -> nose line (no head lines)
  right_shin = np.round(0.5 * (k[9] + k[10])).astype(int)
  assert tuple(img[right_shin[1], right_shin[0]]) == (0, 255, 0)
  eye_ear = np.round(0.5 * (k[14] + k[16])).astype(int)
  assert img[eye_ear[1], eye_ear[0], 0] == 127  # a face line shorter than the throat
  far = k.copy()
  far[16] = (40, 20)  # an ear detected far from the eye: longer than the throat, not drawn
  far_img = imaging.draw_stickman(far, 256, layout=imaging.DEEPFASHION)
  p = np.round(0.5 * (far[14] + far[16])).astype(int)
  assert far_img[p[1], p[0], 0] == 0
  # Market's order draws the same person identically.
  np.testing.assert_array_equal(
      imaging.draw_stickman(MARKET_JOINTS * 256, 256, layout=imaging.MARKET), img)
  # Head crop: upstream's top = neck + 2 (nose - neck), strip half-width |top - neck| / 2.
  head = imaging.part_quads(k, 256, layout=imaging.DEEPFASHION)[1]
  top = neck + 2 * (k[0] - neck)
  np.testing.assert_allclose(0.5 * (head[0] + head[1]), top, atol=1e-9)
  np.testing.assert_allclose(0.5 * (head[2] + head[3]), neck, atol=1e-9)
  crops = imaging.inplane_normalize(np.zeros((256, 256, 3), np.uint8), k, box_factor=2,
                                    layout=imaging.DEEPFASHION)
  assert crops.shape == (64, 64, 30)
  with pytest.raises(ValueError, match=r'\(18, 2\)'):
    imaging.draw_stickman(np.zeros((17, 2)), 64, layout=imaging.MARKET)


def test_joint_order_is_checked_in_any_spelling(tmp_path):
  write_deepfashion(str(tmp_path))
  index = index_images.read_index(tmp_path / 'index.p', index_images.DEEPFASHION)
  assert len(index.imgs) == 5
  for order in (list(COCO_NAMES), [n.upper() for n in VUNET_ORDER]):
    index_images.check_joint_order(order, imaging.DEEPFASHION, 'x')
  swapped = VUNET_ORDER[:]
  swapped[2], swapped[5] = swapped[5], swapped[2]
  with pytest.raises(ValueError, match=r"index\.p: 'joint_order'.*another dataset"):
    index_images.check_joint_order(swapped, imaging.DEEPFASHION, tmp_path / 'index.p')
  # DeepFashion's order is not Market's: an index of one cannot build the other.
  with pytest.raises(ValueError, match='joint_order'):
    index_images.check_joint_order(VUNET_ORDER, imaging.MARKET, 'index.p')


class _Evil:
  """A pickle that would run a shell command when loaded."""

  def __init__(self, marker):
    self.marker = marker

  def __reduce__(self):
    return (os.system, (f'touch {self.marker}',))


def _malicious(d):
  marker = os.path.join(d, 'pwned')
  with open(os.path.join(d, 'index.p'), 'wb') as f:
    pickle.dump({'imgs': [], 'joints': _Evil(marker), 'train': []}, f)
  return r'index\.p: refusing to unpickle (posix|nt|os)\.system.*malicious', marker


def _missing_image(d):
  os.remove(os.path.join(d, 'img/MEN/Denim/id_00000080/01_2_side.jpg'))
  return r'01_2_side\.jpg: image listed in index\.p not found', None


def _truncated_image(d):
  path = os.path.join(d, 'img/MEN/Denim/id_00000080/01_1_front.jpg')
  with open(path, 'rb') as f:
    raw = f.read()
  with open(path, 'wb') as f:
    f.write(raw[:len(raw) // 2])
  return r'01_1_front\.jpg: cannot decode this image \(truncated', None


def _rewrite(d, **changes):
  with open(os.path.join(d, 'index.p'), 'rb') as f:
    index = pickle.load(f)  # our own test file
  index.update(changes)
  with open(os.path.join(d, 'index.p'), 'wb') as f:
    pickle.dump(index, f)


def _wrong_shapes(d):
  _rewrite(d, joints=[COCO] * 3 + [COCO[:17]] + [COCO])
  return r"index\.p: 'joints' entry 3 .*id_00000081.* has shape \(17, 2\); expected \(18, 2\)", None


def _pixel_joints(d):
  _rewrite(d, joints=np.stack([COCO * 256] * 5))
  return r"index\.p: 'joints' go up to 2\d\d.*normalised to \[0, 1\]", None


def _short_train_mask(d):
  _rewrite(d, train=[True, False])
  return r"index\.p: 'train' must be a bool mask of length 5", None


def _not_lists(d):
  _rewrite(d, imgs=5, joints=7)
  return r"index\.p: 'imgs' and 'joints' must be lists", None


def _truncated_index(d):
  path = os.path.join(d, 'index.p')
  with open(path, 'rb') as f:
    raw = f.read()
  with open(path, 'wb') as f:
    f.write(raw[:40])
  return r'index\.p: cannot read deepfashion index file .*truncated', None


@pytest.mark.parametrize('breaker', [_malicious, _missing_image, _truncated_image, _wrong_shapes,
                                     _pixel_joints, _short_train_mask, _not_lists,
                                     _truncated_index])
def test_bad_input_is_a_clear_error_naming_the_file(tmp_path, breaker):
  manual = tmp_path / 'raw'
  write_deepfashion(str(manual))
  match, marker = breaker(str(manual))
  with pytest.raises((ValueError, FileNotFoundError), match=match):
    build('deepfashion', manual, tmp_path / 'tfds')
  if marker:
    assert not os.path.exists(marker)  # refused without running the command


def test_safe_pickle_allows_plain_data_only():
  data = {'a': [1, 2.5, 'x', None, True, (3, b'y')], 'b': np.arange(6.0).reshape(2, 3),
          'c': np.float32(1.5), 'd': np.array(['p', 'q'])}
  loaded = safe_pickle.load(io.BytesIO(pickle.dumps(data, protocol=4)), 'mem')
  assert loaded['a'] == data['a'] and loaded['c'] == np.float32(1.5)
  np.testing.assert_array_equal(loaded['b'], data['b'])
  np.testing.assert_array_equal(loaded['d'], data['d'])
  with pytest.raises(safe_pickle.UnsafePickleError, match=r'mem: refusing.*builtins\.eval'):
    safe_pickle.load(io.BytesIO(pickle.dumps(_Eval())), 'mem')


class _Eval:

  def __reduce__(self):
    return (eval, ('1 + 1',))


def test_smoke_training_on_deepfashion_format_data(tmp_path):
  """The 18-joint path end to end: the small (64 px) config of a DeepFashion-format archive,
  the :smoke model with 18 keypoints, a few steps, evaluation on the test split."""
  from bds_jax.train import appearance as trainer  # pylint: disable=g-import-not-at-top
  write_deepfashion(str(tmp_path / 'raw'))
  c = appearance_config.get_config('smoke')
  c.data.name, c.data.builder_config = 'deepfashion', 'small'
  c.data.data_dir, c.data.manual_dir = str(tmp_path / 'tfds'), str(tmp_path / 'raw')
  c.model.num_keypoints = 18
  c.data.batch_size = 2  # the tiny archive has 2 train images
  # Fewer scales and regressor steps than :smoke: XLA:CPU compile time is most of this test.
  c.model.bottleneck_factor, c.loss.regressor_steps = 4, 1
  c.num_steps, c.log_every_steps, c.eval_every_steps, c.eval_batches = 4, 2, 4, 1
  c.checkpoint_every_steps = 4
  result = trainer.train_and_evaluate(c, str(tmp_path / 'run'))
  assert result.step == 4 and not result.interrupted
  assert np.isfinite(result.eval_metrics['eval/regressor_loss'])
  assert np.isfinite(result.eval_metrics['eval/recon_ssim'])
