"""Appearance-model training: image pairs, a smoke run, exact resume, the regressor's isolation.

XLA:CPU compiling the VUnet train step dominates (~30 s); the smoke run, the interrupted run
and its resume share one compiled program through the session's persistent cache.
"""

import dataclasses
import functools
import json
import os

import imageio.v3 as iio
import jax
import numpy as np
import optax
import pytest

from bds_jax import imaging
from bds_jax import run_layout
from bds_jax import runs
from bds_jax.data import images
from bds_jax.evaluation import appearance_truth
from bds_jax.models import appearance_losses as al
from bds_jax.procedural import truth as synthetic_truth
from bds_jax.train import appearance as trainer
from bds_jax.train import appearance_step
from configs import appearance as appearance_config
import training_hooks  # pylint: disable=g-bad-import-order


@pytest.fixture(scope='module')
def people_dir(tmp_path_factory):
  """TFDS data dir holding the `small` synthetic_people dataset (64 px; ~1 s to build)."""
  from bds_jax.data import sources  # pylint: disable=g-import-not-at-top
  d = str(tmp_path_factory.mktemp('tfds_people'))
  sources.get_builder('synthetic_people', d, 'small').download_and_prepare()
  return d


@pytest.fixture
def smoke(people_dir):
  c = appearance_config.get_config('smoke')
  c.data.data_dir = people_dir
  c.data.prepare = 'never'
  return c


def test_pairs_are_one_person_two_frames(smoke):
  train = images.load_split(smoke.data, 'train')
  # A person is a subject in one outfit: each of the 20 sequences (2 frames each) is one.
  assert train.image_size == 64 and len(train) == 40 and len(train.people) == 20
  assert len(np.unique(train.subjects)) == 5
  batch = next(iter(images.train_dataset(train, 8, seed=0, num_threads=0)))
  again = next(iter(images.train_dataset(train, 8, seed=0, num_threads=0)))
  for k in batch:  # seeded: the same batches every time
    np.testing.assert_array_equal(batch[k], again[k], err_msg=k)
  test = images.load_split(smoke.data, 'test')
  fixed = images.fixed_pairs(test, 6, seed=1)
  for pairs, split in ((batch, train), (fixed, test)):
    np.testing.assert_array_equal(pairs['subject'], pairs['paired_subject'])
    np.testing.assert_array_equal(split.persons[pairs['index']],
                                  split.persons[pairs['paired_index']])
    assert np.all(pairs['index'] != pairs['paired_index'])
    assert pairs['image'].shape[1:] == pairs['stickman'].shape[1:] == (64, 64, 3)
    assert pairs['appearance'].shape[1:] == (32, 32, 30)  # in-plane crops, box factor 1
    for k in ('image', 'stickman', 'appearance', 'paired_image', 'paired_appearance'):
      assert pairs[k].dtype == np.float32 and -1 <= pairs[k].min() and pairs[k].max() <= 1, k
    assert 0 <= pairs['keypoints'].min() and pairs['keypoints'].max() <= 1
    # The adversary's targets are the keypoints of the frame the code sees: the target's own
    # with appearance_source='self', the partner's with 'other' (never the target's then).
    i, j = int(pairs['index'][0]), int(pairs['paired_index'][0])
    for source, frame in (('self', i), ('other', j)):
      item = dataclasses.replace(split, appearance_source=source).item(i, j)
      np.testing.assert_array_equal(item['appearance_keypoints'], split.keypoints[frame] / 64)
    assert pairs['stickman'].max() > 0 > pairs['stickman'].min()  # lines on a -1 background
  # The target is the indexed frame itself; the pair is another frame of that person.
  np.testing.assert_array_equal(
      batch['image'][0], images.to_unit_range(train.image(batch['index'][0])))
  np.testing.assert_array_equal(
      batch['paired_image'][0], images.to_unit_range(train.image(batch['paired_index'][0])))
  # data.mask_room (the smoke preset's): the appearance input shows the person only.
  assert smoke.data.mask_room
  whole = dataclasses.replace(train, inplane=False).item(0, 1)['paired_appearance']
  body = imaging.body_mask(train.keypoints[1], 64, layout=train.layout) > 0
  assert np.all(whole[~body] == -1) and np.any(whole[body] > -1)
  # model.part_warp: the stickman input also carries the crops' coordinates in its pose.
  warped = images.load_split(smoke.data, 'train', part_warp=True).item(0, 1)['stickman']
  np.testing.assert_array_equal(warped[..., :3], train.item(0, 1)['stickman'])
  np.testing.assert_array_equal(warped[..., 3:], imaging.part_coordinates(
      train.keypoints[0], 64, 32, layout=train.layout))
  # Figures transfer to another person.
  assert test.persons[fixed['index'][0]] != test.persons[fixed['index'][1]]
  # The person mask, drawn from the keypoints alone, covers the rendered person (the truth
  # renderer's own mask) with a margin, not the whole frame.
  supersample = appearance_truth.dataset_supersample(smoke.data)
  for i in range(0, len(train), 7):
    mask = train.item(i, i)['person_mask'][..., 0]
    person = synthetic_truth.true_rendering(train, i, i, supersample, True)[1] > 0.5
    assert mask.shape == (64, 64) and set(np.unique(mask)) <= {0.0, 1.0}
    assert mask[person].mean() > 0.95 and mask.sum() < 2.5 * person.sum(), i


def test_smoke_run_learns_writes_outputs_and_resumes_exactly(smoke, tmp_path):
  c = smoke
  c.num_steps, c.log_every_steps, c.figure_every_steps = 20, 5, 20  # 30 in the preset
  # evaluate.py's appearance suite, tiny, as a training evaluator on the trainer's Context.
  c.evals.table5 = dict(type='appearance', every_steps=0, final=True, prefix='final/',
                        num_images=6, probe_images=6, probe_steps=2, num_pairs=2, batch_size=6)
  full = trainer.train_and_evaluate(c, str(tmp_path / 'full'))
  assert full.step == 20 and not full.interrupted
  m = full.eval_metrics
  assert 0 < m['final/transfer/ssim'] <= 1 and m['final/num_images'] == 6
  assert m['final/posture_probe/train_images'] == 6 and 'final/truth/transfer/l1' in m
  assert not any(k.startswith('final/inception') for k in m)  # words are not logged
  ll = [v for _, v in training_hooks.logged(tmp_path / 'full', 'train/likelihood')]
  assert np.mean(ll[-2:]) < 0.85 * ll[0], ll
  assert {'eval/recon_ssim', 'eval/transfer_ssim', 'eval/kl'} <= set(full.eval_metrics)
  assert '20' in os.listdir(tmp_path / 'full' / 'checkpoints')
  figure = iio.imread(tmp_path / 'full' / 'figures' / 'step_0000020.png')
  assert figure.shape[1] > 4 * 64 and figure.shape[0] > c.figure_examples * 64
  tb = training_hooks.tensorboard_images(tmp_path / 'full')  # the same grid, in TensorBoard
  assert list(tb) == [('figure', 20)]
  np.testing.assert_array_equal(tb[('figure', 20)][..., :3], figure[..., :3])
  stored = runs.read_config(str(tmp_path / 'full'), 'appearance')
  assert stored.loss.likelihood == 'l1_ssim'  # no VGG weights: recorded
  # The adversary's clamp (loss.adversary_clamp=0): the chance level of the training
  # keypoints, computed before training and stored in the run.
  train = images.load_split(c.data, 'train')
  chance = json.loads((tmp_path / 'full' / run_layout.ADVERSARY_CHANCE_FILE).read_text())['chance']
  np.testing.assert_allclose(chance, al.chance_keypoint_l2(train.keypoints / 64), rtol=1e-5)
  loaded = runs.Run(str(tmp_path / 'full')).load_appearance()
  assert loaded.step == 20
  for x, y in zip(jax.tree.leaves(loaded.params), jax.tree.leaves(full.state['params'])):
    np.testing.assert_array_equal(x, y)

  # num_steps is safe to change: the LR keeps decaying over the 20 steps the run was created
  # with (it reached 0 there), not over the new 26 (issue 21: it jumped back to ~5e-4).
  c.num_steps, c.figure_every_steps = 26, 0
  del c.evals['table5']
  longer = trainer.train_and_evaluate(c, str(tmp_path / 'full'))
  assert longer.step == 26
  lrs = dict(training_hooks.logged(tmp_path / 'full', 'train/lr'))
  assert lrs[15] > 0 and lrs[25] == 0.0, lrs
  c.num_steps = 20

  part = trainer.train_and_evaluate(c, str(tmp_path / 'split'),
                                    hooks=[training_hooks.signal_at(7)])
  assert part.interrupted and part.step == 7
  resumed = trainer.train_and_evaluate(c, str(tmp_path / 'split'))
  assert resumed.step == 20 and not resumed.interrupted
  a, b = jax.device_get(full.state), jax.device_get(resumed.state)
  for (path, x), y in zip(jax.tree_util.tree_leaves_with_path(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(x, y, err_msg=jax.tree_util.keystr(path))  # incl. gamma
  assert float(a['gamma']) > 0


def _tiny_step_inputs(c, seed: int):
  """(setup, state, batch) of a 16 px appearance model and a random 2-image batch: a train
  step that compiles fast."""
  c.model.image_size, c.model.bottleneck_factor = 16, 3
  c.data.inplane_normalize = False
  c.model.part_warp = c.model.part_blend = c.model.room_branch = c.model.room_scene = False
  c.loss.n_init_batches = 0
  setup, state = appearance_step.build(c, 40, chance=0.5)
  rng = np.random.default_rng(seed)
  image = np.tanh(rng.standard_normal((2, 16, 16, 3))).astype(np.float32)
  batch = {'image': image, 'appearance': image,
           'stickman': np.where(rng.uniform(size=(2, 16, 16, 3)) > 0.8, 1.0, -1.0).astype(
               np.float32),
           'keypoints': rng.uniform(size=(2, 17, 2)).astype(np.float32),
           'appearance_keypoints': rng.uniform(size=(2, 17, 2)).astype(np.float32),
           'person_mask': (rng.uniform(size=(2, 16, 16, 1)) > 0.7).astype(np.float32)}
  return setup, state, batch


def test_adversary_regresses_the_keypoints_of_the_frame_it_encodes(smoke):
  """The regressor and the adversarial term see the encoded frame's keypoints: the target's
  keypoints (another frame with appearance_source='other') change nothing in a step."""
  setup, state, batch = _tiny_step_inputs(smoke, 1)
  step = jax.jit(functools.partial(appearance_step.train_step, setup))
  base = jax.device_get(step(state, batch))
  moved_target = jax.device_get(step(state, dict(batch, keypoints=batch['keypoints'] + 0.3)))
  moved_code = jax.device_get(step(state, dict(
      batch, appearance_keypoints=batch['appearance_keypoints'] + 0.3)))
  for x, y in zip(jax.tree.leaves(base), jax.tree.leaves(moved_target)):
    np.testing.assert_array_equal(x, y)
  assert any(np.any(x != y) for x, y in zip(jax.tree.leaves(base[0]['reg']),
                                            jax.tree.leaves(moved_code[0]['reg'])))
  assert base[1]['regressor_loss'] != moved_code[1]['regressor_loss']


def test_main_update_leaves_the_regressor_alone(smoke):
  """With no regressor steps, one train step changes the model and nothing of the regressor,
  and its update is Adam's on the gradient of main_loss (the step shares one encoder pass
  between the regressor and the model through jax.vjp)."""
  setup, state, batch = _tiny_step_inputs(smoke, 0)
  setup = dataclasses.replace(setup, regressor_steps=0)
  before = jax.device_get(state)
  after, metrics = jax.jit(functools.partial(appearance_step.train_step, setup))(state, batch)
  after = jax.device_get(after)
  for part in ('reg', 'reg_opt'):
    for x, y in zip(jax.tree.leaves(before[part]), jax.tree.leaves(after[part])):
      np.testing.assert_array_equal(x, y)
  changed = [np.any(x != y) for x, y in zip(jax.tree.leaves(before['params']),
                                            jax.tree.leaves(after['params']))]
  assert all(changed)

  key = jax.random.fold_in(jax.random.wrap_key_data(before['rng']), before['step'])
  loss_fn = functools.partial(al.main_loss, model_def=setup.model_def, reg_def=setup.reg_def,
                              cfg=setup.loss)
  loss, grads = jax.jit(jax.value_and_grad(lambda p: loss_fn(
      p, before['reg'], None, before['gamma'], before['step'], batch, key)[0]))(
          before['params'])
  np.testing.assert_allclose(metrics['loss'], loss, rtol=1e-5)
  np.testing.assert_allclose(metrics['grad_norm'], optax.global_norm(grads), rtol=1e-4)
  updates, _ = setup.tx.update(grads, before['opt'], before['params'])
  expected = optax.apply_updates(before['params'], updates)
  lr = float(setup.lr_schedule(0))  # Adam's first step moves each weight by about lr
  for x, y in zip(jax.tree.leaves(after['params']), jax.tree.leaves(expected)):
    np.testing.assert_allclose(x, y, rtol=0, atol=0.01 * lr)


def test_the_adversarial_term_is_flat_beyond_chance(smoke):
  """By default the clamp is the chance level (the mean-pose error), so the encoder gains
  nothing from making the regressor worse than chance; an explicit clamp still overrides."""
  rng = np.random.default_rng(0)
  kp = rng.uniform(size=(500, 17, 2))
  mean_pose_error = np.mean(np.linalg.norm((kp - kp.mean(0)).reshape(500, -1), axis=-1))
  chance = al.chance_keypoint_l2(kp)
  np.testing.assert_allclose(chance, mean_pose_error, rtol=1e-12)
  assert smoke.loss.adversary_clamp == 0
  assert appearance_step.loss_config(smoke, chance).adversary_clamp == chance
  smoke.loss.adversary_clamp = 0.9
  assert appearance_step.loss_config(smoke, chance).adversary_clamp == 0.9
  smoke.loss.adversary_clamp = 0.0
  with pytest.raises(ValueError, match='chance level'):
    appearance_step.loss_config(smoke)
  grad = jax.grad(al.adversarial_term)
  for reg_loss in (chance + 1e-3, chance + 0.5, 5.0):  # beyond chance: no gradient at all
    assert float(grad(reg_loss, chance)) == 0.0
  assert float(grad(chance - 1e-3, chance)) == 1.0
