"""The appearance suite of evaluate.py (Table 5, posture probe, transfer against the truth)
on an untrained smoke model saved as a run; the scores' definitions on known inputs."""

import json
import os
import subprocess
import sys
import types

import jax
import numpy as np
import pytest
from flax import nnx

from bds_jax import runs
from bds_jax.evaluation import appearance as suite
from bds_jax.evaluation import context
from bds_jax.evaluation import appearance_truth as truth
from bds_jax.evaluation import runner
from bds_jax.metrics import image_scores
from bds_jax.models import build
from bds_jax.models import inception
from bds_jax.models import lpips
from bds_jax.procedural import truth as synthetic_truth
from configs import appearance as appearance_config
from configs import evaluate as eval_configs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
  """An untrained smoke model on the `small` synthetic_people dataset (64 px), saved as a run
  at step 7, and random Inception-v3 and LPIPS weights in their npz formats."""
  from bds_jax.data import sources  # pylint: disable=g-import-not-at-top
  d = str(tmp_path_factory.mktemp('tfds_people'))
  sources.get_builder('synthetic_people', d, 'small').download_and_prepare()
  c = appearance_config.get_config('smoke')
  c.data.data_dir, c.data.prepare = d, 'never'
  model, reg = build.create_appearance(c, jax.random.key(0, impl='rbg'))
  params = nnx.to_pure_dict(nnx.split(model)[1])
  reg_params = nnx.to_pure_dict(nnx.split(reg)[1])
  run = runs.Run(str(tmp_path_factory.mktemp('appearance_run')))
  run.write_config(c)
  ckpt = run.checkpointer()
  ckpt.save(7, {'params': params, 'reg': reg_params})
  ckpt.close()
  weights = str(tmp_path_factory.mktemp('inception') / 'inception_v3.npz')
  np.savez(weights, **inception.random_arrays(0))
  lpips_weights = str(tmp_path_factory.mktemp('lpips') / 'lpips_vgg.npz')
  np.savez(lpips_weights, **lpips.random_arrays(0))
  return types.SimpleNamespace(config=c, run=run.path, weights=weights,
                               lpips_weights=lpips_weights)


@pytest.fixture(scope='module')
def ctx(setup):
  ctx = context.load_appearance(setup.run, eval_configs.get_config('smoke'))
  ctx.supersample = truth.dataset_supersample(ctx.config.data)  # the truth's, for these tests
  return ctx


def test_truth_reproduces_the_stored_image(ctx):
  images = ctx.test
  for b in (0, len(images) // 2, len(images) - 1):  # A = B itself: the dataset image
    t = synthetic_truth.true_rendering(images, b, b, ctx.supersample)
    np.testing.assert_array_equal(t, images.image(b))
  # Another frame of B's person (same subject and outfit) in B's pose is B's image too.
  partner = images.random_partner(0, np.random.default_rng(0))
  assert partner != 0 and images.persons[partner] == images.persons[0]
  np.testing.assert_array_equal(
      synthetic_truth.true_rendering(images, partner, 0, ctx.supersample), images.image(0))
  # People are (subject, outfit): every sequence of the small build wears its own outfit.
  assert len(images.people) == len(set(images.sequences)) == 8
  a, b = truth.transfer_pairs(images, 20, seed=3)
  assert np.all(images.persons[a] != images.persons[b])
  other = synthetic_truth.true_rendering(images, int(a[0]), int(b[0]), ctx.supersample)
  assert not np.array_equal(other, images.image(b[0]))  # another person in the same pose


def test_truth_rows_are_ordered(ctx):
  out = truth.evaluate(ctx.appearance.model_def, ctx.appearance.params, ctx.test, ctx.supersample, num_pairs=6,
                       seed=0, batch_size=4)
  assert out['num_pairs'] == 6 and set(out) == {'num_pairs', 'code_effect', *truth.ROWS}
  for name in truth.ROWS:
    assert -1 <= out[name]['ssim'] <= 1 and 0 <= out[name]['l1'] <= 2, (name, out[name])
  # The right pose and camera with the wrong person beats the wrong pose or a stickman.
  assert out['target_frame']['ssim'] > out['appearance_image']['ssim']
  assert out['target_frame']['ssim'] > out['stickman']['ssim']
  assert out['target_frame']['l1'] < out['stickman']['l1']
  # The code effect: the model's output moved by swapping the appearance input, against the
  # truths' own difference (which is the target_frame row's L1).
  effect = out['code_effect']
  assert effect['truth'] == pytest.approx(out['target_frame']['l1_person'], rel=1e-5)
  a, b = truth.transfer_pairs(ctx.test, 6, 0 + 11)
  x = truth._inputs(ctx.test, a, b, ctx.supersample)  # pylint: disable=protected-access
  # On the person: an image scored against itself has SSIM 1 and sharpness 1; a blurred
  # copy keeps much of its L1 but loses sharpness (a mean colour cannot pass for detail).
  same = truth.scores(x['truth'], x['truth'], x['person'])
  np.testing.assert_allclose(same['ssim_person'], 1.0, atol=1e-5)
  np.testing.assert_allclose(same['sharpness'], 1.0, rtol=1e-6)
  blurred = (x['truth'] + np.roll(x['truth'], 1, 1) + np.roll(x['truth'], 1, 2)
             + np.roll(x['truth'], -1, 1) + np.roll(x['truth'], -1, 2)) / 5
  soft = truth.scores(blurred, x['truth'], x['person'])
  assert np.all(np.asarray(soft['sharpness']) < 0.8)
  assert np.all(np.asarray(soft['ssim_person']) < 1)
  w = x['person']
  assert w.shape == (6, 64, 64, 1) and 0 < w.mean() < 0.5 and w.max() == 1.0
  # The truths differ only where a person is: the weights cover every changed pixel.
  changed = np.abs(x['truth'] - x['image_b']).max(-1, keepdims=True) > 0
  assert np.all(w[changed] > 0)
  model = nnx.merge(ctx.appearance.model_def, ctx.appearance.params)
  moved = np.abs(np.asarray(model(x['appearance_a'], x['stickman_b'])[0])
                 - np.asarray(model(x['appearance_b'], x['stickman_b'])[0]))
  assert moved.mean() > 0
  on = lambda d, m: float(np.mean((d * m).sum((1, 2, 3)) / (3 * m.sum((1, 2, 3)))))
  assert effect['model'] == pytest.approx(on(moved, w), rel=1e-3)
  assert effect['model_background'] == pytest.approx(on(moved, 1.0 - w), rel=1e-3)
  for name in truth.ROWS:  # the person's pixels are where the room does not help
    assert out[name]['l1_person'] >= 0
  assert out['target_frame']['l1_person'] > 2 * out['target_frame']['l1']
  # The calibration row: the truth itself, softened, beats every other reference.
  assert out['truth_blurred']['l1'] < min(out[r]['l1'] for r in truth.ROWS[2:6])
  assert 0 < out['truth_blurred']['l1_person'] and out['truth_blurred']['sharpness'] < 1


def test_reference_rows_blur_and_paste():
  from scipy import ndimage  # pylint: disable=g-import-not-at-top
  x = np.random.default_rng(0).uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32)
  np.testing.assert_allclose(truth.gaussian_blur(x, 1.0),
                             ndimage.gaussian_filter(x, (0, 1, 1, 0), mode='nearest', truncate=3.0),
                             atol=1e-6)
  # Pasted parts: a part crop of one colour lands where the coordinates say it is inside,
  # the mean where two parts overlap, black (room) crop pixels count as uncovered.
  crops = -np.ones((1, 4, 4, 6), np.float32)
  crops[..., 0:3], crops[..., 3:6] = 0.5, -0.5
  crops[0, 0, 0, 3:6] = -1.0  # part 1's corner is room
  coords = np.zeros((1, 2, 2, 6), np.float32)
  coords[0, 0, :, 2] = 1  # part 0 inside on the top row
  coords[0, :, 0, 5] = 1  # part 1 inside on the left column, sampling its (0, 0) corner...
  coords[0, 1, 0, 3:5] = 0.7  # ...except at the bottom-left pixel
  coords[0, 0, 1, 3:6] = 0.7, 0.7, 1  # both parts inside at the top-right pixel
  background = np.full((1, 2, 2, 3), 0.9, np.float32)
  out = np.asarray(truth.pasted_parts(crops, coords, background))[0, ..., 0]
  np.testing.assert_allclose(out, [[0.5, 0.0], [-0.5, 0.9]], atol=1e-6)


def test_evaluate_writes_table5_with_inception(setup, tmp_path):
  cfg = appearance_config.get_config('smoke')
  ec = eval_configs.get_config('smoke')
  ec.appearance.inception_weights = setup.weights
  ec.appearance.lpips_weights = setup.lpips_weights
  ec.appearance.num_images = 4  # 12 Inception passes at 299 px on a CPU
  results = runner.evaluate(cfg, ec, setup.run, out_dir=str(tmp_path))
  with open(tmp_path / 'results.json') as f:
    on_disk = json.load(f)
  assert on_disk['trainer'] == 'appearance' and on_disk['dataset'] == 'synthetic_people'
  (name, run), = on_disk['runs'].items()
  assert run['step'] == 7 and list(run['suites']) == ['appearance']
  s = run['suites']['appearance']
  assert s == json.loads(json.dumps(results['runs'][name]['suites']['appearance']))
  assert s['num_images'] == 4 and s['inception'] == setup.weights
  for setting in ('reconstruction', 'transfer'):
    m = s[setting]
    assert -1 <= m['ssim'] <= 1 and 0 <= m['l1'] <= 2, m
    assert 1.0 <= m['is'] <= 4 and m['fid'] >= 0, m  # IS lies in [1, number of images]
  assert 1.0 <= s['real']['is'] <= 4
  p = s['posture_probe']
  assert p['train_images'] == 24 and p['test_images'] == 4 and p['steps'] == 20
  assert 0 <= p['probe_steps_kept'] <= 20 and 0 <= p['identity_steps_kept'] <= 20
  assert all(np.isfinite(p[k]) and p[k] > 0 for k in ('probe_error', 'identity_error',
                                                       'adversary_error',
                                                       'mean_pose_error'))
  assert s['truth']['num_pairs'] == 6
  for row in truth.ROWS:  # LPIPS beside SSIM and L1 (random weights: only finite, positive)
    assert np.isfinite(s['truth'][row]['lpips']) and s['truth'][row]['lpips'] > 0, row
  table = (tmp_path / 'appearance.md').read_text()
  assert 'paper Table 5' in table and '| paper: ours (DeepFashion) | reconstruction | 0.80 | 3.08' in table
  assert 'no Human3.6M numbers' in table and 'transfer against the true rendering' in table
  assert 'no Inception weights given' not in table
  assert ('| row | SSIM | L1 | L1, person | SSIM, person | sharpness, person | LPIPS |' in table
          and 'LPIPS: VGG16' in table)
  assert 'Code effect: swapping' in table


def test_cli_without_inception_weights_and_config_checks(setup, tmp_path):
  out = subprocess.run(
      [sys.executable, 'evaluate.py', '--config=configs/appearance.py:smoke',
       f'--workdir={setup.run}', '--eval_config=configs/evaluate.py:smoke',
       '--eval_config.appearance.num_images=4', '--eval_config.appearance.num_pairs=2',
       f'--out_dir={tmp_path}'],
      cwd=ROOT, capture_output=True, text=True, timeout=300,
      env=dict(os.environ, JAX_PLATFORMS='cpu'))
  assert out.returncode == 0, out.stderr[-3000:]
  s = json.loads((tmp_path / 'results.json').read_text())['runs']
  (r,) = s.values()
  a = r['suites']['appearance']
  assert a['inception'] == 'no Inception weights given'
  assert a['reconstruction']['is'] is None and a['transfer']['fid'] is None  # not zeros
  assert a['real']['is'] is None
  assert 'no Inception weights given' in (tmp_path / 'appearance.md').read_text()
  assert 'lpips' not in a['truth']['transfer']
  assert ('| row | SSIM | L1 | L1, person | SSIM, person | sharpness, person |\n'
          in (tmp_path / 'appearance.md').read_text())

  from configs import behavior  # pylint: disable=g-import-not-at-top
  with pytest.raises(ValueError, match="'behavior' config but .* holds a 'appearance' run"):
    runner.evaluate(behavior.get_config('smoke'), eval_configs.get_config('smoke'), setup.run)
  big = appearance_config.get_config('smoke')
  big.model.image_size = 128
  with pytest.raises(ValueError, match='model.image_size: given 128, the run has 64'):
    runner.evaluate(big, eval_configs.get_config('smoke'), setup.run)
  ec = eval_configs.get_config('smoke')
  ec.appearance.lpips_weights = str(tmp_path / 'nothere.npz')  # fails before any loading
  with pytest.raises(FileNotFoundError, match=r'LPIPS weights file .*nothere\.npz'):
    runner.evaluate(appearance_config.get_config('smoke'), ec, setup.run)
  ec = eval_configs.get_config('smoke')
  ec.suites = 'transfer'
  with pytest.raises(ValueError, match=r"unknown suite\(s\) \['transfer'\] for this "
                     r"appearance run \(--workdir\)"):
    runner.evaluate(appearance_config.get_config('smoke'), ec, setup.run)


def test_probe_finds_posture_that_is_in_the_code():
  """Means that encode the keypoints linearly are probed well below the mean-pose error;
  means of pure noise read as the mean-pose error."""
  rng = np.random.default_rng(0)
  shapes = ((2, 2, 4), (4, 4, 4))
  reg_params = {'convs': {0: {'kernel': np.zeros((2, 2, 4, 32))}},
                'head': {'kernel': np.zeros((32, 34))}}
  # Poses on a 3-d manifold, as real postures are far from filling all 34 dimensions.
  factors = rng.uniform(-1, 1, (600, 3))
  kp = (0.5 + 0.1 * factors @ rng.standard_normal((3, 34))).reshape(600, 17, 2).astype(
      np.float32)
  mix = [rng.standard_normal((34, int(np.prod(s)))).astype(np.float32) for s in shapes]
  leaky = [(kp.reshape(600, 34) @ m).reshape(600, *s) for m, s in zip(mix, shapes)]
  noise = [rng.standard_normal((600, *s)).astype(np.float32) for s in shapes]
  mean_err = float(np.mean(np.linalg.norm((kp[400:] - kp[:400].mean(0)).reshape(200, -1),
                                          axis=-1)))
  err = lambda means, groups=None: suite.fit_probe(
      reg_params, [m[:400] for m in means], kp[:400], [m[400:] for m in means], kp[400:],
      steps=300, seed=0, groups=groups)
  leak, kept = err(leaky)
  assert leak < 0.5 * mean_err and kept > 0
  # Noise reads as chance, not above it: the probe starts at the mean pose and keeps only
  # what helps on held-out people (trained to the end it read 0.70 here, 24% above chance).
  for groups in (None, np.arange(400) // 10):
    noise_err, kept = err(noise, groups)
    assert noise_err == pytest.approx(mean_err, rel=0.01) and kept == 0


def test_inception_score_and_keypoint_boxes():
  assert image_scores.inception_score(np.zeros((5, 10))) == pytest.approx(1.0)
  one_hot = np.full((4, 10), -1e4)
  one_hot[np.arange(4), [0, 1, 2, 3]] = 0.0  # confident and all different: IS = #classes
  assert image_scores.inception_score(one_hot) == pytest.approx(4.0, rel=1e-6)
  kp = np.array([[[10, 20], [30, 5], [-1, -1]], [[-1, -1], [-1, -1], [-1, -1]]], np.float32)
  boxes = np.asarray(image_scores.keypoint_boxes(kp, 64))
  np.testing.assert_allclose(boxes, [[10, 5, 30, 20], [0, 0, 63, 63]])
  image = np.zeros((2, 64, 64, 1), np.float32)
  image[:, :, :, 0] = np.arange(64)[None, None, :]  # value = x
  crops = np.asarray(image_scores.keypoint_box_crops(image, kp, 21))
  np.testing.assert_allclose(crops[0, 0, :, 0], np.linspace(10, 30, 21), rtol=1e-5)
  np.testing.assert_allclose(crops[1, 5, :, 0], np.linspace(0, 63, 21), rtol=1e-5)
