"""The appearance suite: transfer against the true rendering, on an untrained smoke model."""

import os
import types

import jax
import numpy as np
import pytest
from flax import nnx

from bds_jax import runs
from bds_jax.evaluation import appearance as suite
from bds_jax.evaluation import common
from bds_jax.models import build
from configs import appearance as appearance_config


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
  """An untrained smoke model on the `small` synthetic_people test split (64 px)."""
  from bds_jax.data import sources  # pylint: disable=g-import-not-at-top
  d = str(tmp_path_factory.mktemp('tfds_people'))
  sources.get_builder('synthetic_people', d, 'small').download_and_prepare()
  c = appearance_config.get_config('smoke')
  c.data.data_dir, c.data.prepare = d, 'never'
  model, reg = build.create_appearance(c, jax.random.key(0, impl='rbg'))
  model_def, params = nnx.split(model)
  ctx = suite.make_context(model_def, nnx.to_pure_dict(params), c.data, batch_size=4)
  # The config and regressor too, to save the model as a run.
  return types.SimpleNamespace(ctx=ctx, config=c, reg_params=nnx.to_pure_dict(nnx.split(reg)[1]))


@pytest.fixture
def ctx(setup):
  return setup.ctx


def test_truth_reproduces_the_stored_image(ctx):
  images = ctx.images
  for b in (0, len(images) // 2, len(images) - 1):  # A = B's own subject: the dataset image
    truth = suite.true_rendering(images, int(images.subjects[b]), b, ctx.supersample)
    np.testing.assert_array_equal(truth, images.image(b))
  a, b = suite.transfer_pairs(images, 20, seed=3)
  assert np.all(images.subjects[a] != images.subjects[b])
  other = suite.true_rendering(images, int(images.subjects[a[0]]), int(b[0]), ctx.supersample)
  assert not np.array_equal(other, images.image(b[0]))  # another person in the same pose


def test_suite_runs_deterministic_and_references_are_ordered(ctx):
  out = common.collect(suite, ctx, seed=0, num_pairs=6)
  again = common.collect(suite, ctx, seed=0, num_pairs=6)
  assert out == again
  assert out['num_pairs'] == 6 and set(out) == {'num_pairs', *suite.ROWS}
  for name in suite.ROWS:
    ssim, l1 = out[name]['ssim'], out[name]['l1']
    assert np.isfinite(ssim) and -1 <= ssim <= 1, (name, ssim)
    assert np.isfinite(l1) and 0 <= l1 <= 2, (name, l1)
  # The right pose and camera with the wrong person beats the wrong pose or a stickman.
  assert out['target_frame']['ssim'] > out['appearance_image']['ssim']
  assert out['target_frame']['ssim'] > out['stickman']['ssim']
  assert out['target_frame']['l1'] < out['stickman']['l1']
  # And the truth against itself is perfect.
  truth = np.stack([suite.images_lib.to_unit_range(suite.true_rendering(
      ctx.images, int(ctx.images.subjects[0]), 1, ctx.supersample))] * 2)
  s = suite.scores(truth, truth)
  np.testing.assert_allclose(s['ssim'], 1.0, atol=1e-5)
  np.testing.assert_array_equal(s['l1'], 0.0)
  table = suite.markdown_table(out)
  assert '| model: transfer A → B |' in table and '6 test pairs' in table


def test_evaluate_appearance_loads_a_run(setup, tmp_path):
  ctx = setup.ctx
  run = runs.Run(str(tmp_path / 'run'))
  os.makedirs(run.path)
  run.write_config(setup.config)
  ckpt = run.checkpointer()
  ckpt.save(7, {'params': ctx.params, 'reg': setup.reg_params})
  ckpt.close()
  out = suite.evaluate_appearance(run.path, num_pairs=4, seed=1, batch_size=4)
  assert out['step'] == 7 and out['seed'] == 1 and out['workdir'] == run.path
  expected = common.collect(suite, ctx, seed=1, num_pairs=4)
  assert {k: out[k] for k in expected} == expected  # the restored model is the same model
  assert 'step 7' in suite.markdown_table(out)


def test_needs_synthetic_people(ctx):
  c = appearance_config.get_config('smoke')
  c.data.name = 'market1501'
  with pytest.raises(ValueError, match='synthetic_people'):
    suite.make_context(ctx.model_def, ctx.params, c.data)
