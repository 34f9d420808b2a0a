"""Training evaluator: flow and Gaussian-prior sample figures (`bds_jax.viz.samples`).

  config.evals.samples = dict(type='sample_figures', seed=..., loop_behaviors=4, ...)

Decodes from the start posture of the first window of the fixed set `data`, with keys from
`seed`, and writes <workdir>/<folder>/samples_step_<step>.<video_format> and
sample_loop_step_<step>.<video_format>, on process 0. Yields nothing.
"""

import os

import jax

from bds_jax import run_layout
from bds_jax.viz import samples


def run(ctx, *, seed: int, loop_behaviors: int = 4, video_format: str = 'gif',
        data: str = 'eval', folder: str = run_layout.SAMPLES_DIR):
  if jax.process_index() == 0:
    start = ctx.normalizer.denormalize(ctx.data[data]['poses'][0, 0])
    samples.write(os.path.join(ctx.workdir, folder), ctx.step, ctx.sampler, start,
                  jax.random.key(seed), loop_behaviors, video_format)
  yield from ()
