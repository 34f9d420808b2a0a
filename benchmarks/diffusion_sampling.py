"""Sampling speed of the diffusion prior beside the flow prior: K futures for B observations.

  python benchmarks/diffusion_sampling.py [--batch=64 --k=50 --code=256 --repeats=3]

Models are built from the :demo presets (behavior width = --code, flow :demo, diffusion :demo)
with random weights: the time does not depend on the weights. Per prior it prints the median
seconds to draw B·K codes (the diffusion prior: encode the B observations, then 10 DDIM steps
for each of the B·K chains, every step one denoiser call; with a label, two calls for
classifier-free guidance) and to draw and decode them into B·K futures of seq_len frames from
the last observed poses, the HMP suite's work per batch of windows.
"""

import os
import sys

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
import jax.numpy as jnp  # pylint: disable=g-import-not-at-top,wrong-import-position

from benchmarks import common  # pylint: disable=g-import-not-at-top,wrong-import-position
from bds_jax import sampling  # pylint: disable=g-import-not-at-top,wrong-import-position
from bds_jax import skeleton  # pylint: disable=g-import-not-at-top,wrong-import-position
from configs import behavior  # pylint: disable=g-import-not-at-top,wrong-import-position
from configs import diffusion  # pylint: disable=g-import-not-at-top,wrong-import-position
from configs import flow  # pylint: disable=g-import-not-at-top,wrong-import-position

flags.DEFINE_integer('batch', 64, 'Observations.')
flags.DEFINE_integer('k', 50, 'Futures per observation.')
flags.DEFINE_integer('code', 256, 'Behavior code size (= behavior LSTM width; :demo is 256).')
flags.DEFINE_integer('num_labels', 10, 'Classes of the diffusion prior (synthetic data: 10).')
flags.DEFINE_integer('repeats', 3, 'Timed calls per measurement (median).')
FLAGS = flags.FLAGS


def main(argv):
  del argv
  b, k = FLAGS.batch, FLAGS.k
  bcfg = behavior.get_config('demo')
  dcfg = diffusion.get_config('demo')
  dcfg.model.use_labels = True  # the guided row needs the action-conditioned model
  dcfg.model.num_labels = FLAGS.num_labels
  m = common.sampling_models(bcfg, flow.get_config('demo'), dcfg, FLAGS.code)
  model_def, vae_params = m.model_def, m.vae_params
  flow_def, flow_params, flow_buffers = m.flow_def, m.flow_params, m.flow_buffers
  prior_def, prior_params, prior_stats = m.prior_def, m.prior_params, m.prior_stats
  steps = bcfg.data.seq_len
  obs = jax.random.normal(jax.random.key(1), (b, dcfg.data.observed, skeleton.POSE_DIM))
  start = jnp.repeat(obs[:, -1], k, axis=0)
  label = jnp.arange(b, dtype=jnp.int32) % FLAGS.num_labels
  key = jax.random.key(2)

  def flow_codes():
    return sampling.flow_codes(flow_def, flow_params, flow_buffers, key, b * k)

  def diffusion_codes(lab=None):
    return sampling.diffusion_codes(prior_def, prior_params, prior_stats, key, obs, k, lab,
                                    jnp.float32(2.0)).reshape(b * k, -1)

  def futures(codes_fn):
    return lambda: sampling.decode(model_def, vae_params, codes_fn(), start, steps)

  print(common.machine())
  print(f'{b} observations x K = {k} futures of {steps} frames; code size {FLAGS.code}')
  print('| prior | codes (s) | codes + decoded futures (s) |')
  print('|---|---|---|')
  rows = (('flow (:demo, 6 blocks)', flow_codes),
          ('diffusion (:demo, 10 DDIM steps)', diffusion_codes),
          ('diffusion, guided (2 denoiser calls per step)', lambda: diffusion_codes(label)))
  for name, fn in rows:
    codes_s = common.median_seconds(fn, repeats=FLAGS.repeats)
    full_s = common.median_seconds(futures(fn), repeats=FLAGS.repeats)
    print(f'| {name} | {codes_s:.3f} | {full_s:.3f} |')



if __name__ == '__main__':
  app.run(main)
