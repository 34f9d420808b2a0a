"""Training evaluator: the re-enactment figure (`bds_jax.viz.reenactment`) of the current model.

  config.evals.reenactment = dict(type='reenactment_figure', examples=2, every_steps=..., final=...)

Uses the first `examples` windows of the fixed set `data` (with their paired windows of another
behavior) and writes <workdir>/<folder>/step_<step>.<video_format>, on process 0. Yields nothing.
"""

import os

import jax

from bds_jax import run_layout
from bds_jax.viz import reenactment


def run(ctx, *, examples: int = 2, data: str = 'eval', folder: str = run_layout.REENACTMENT_DIR,
        video_format: str = 'gif'):
  if jax.process_index() == 0:
    windows = ctx.data[data]
    n = min(examples, len(windows['poses']))
    reenactment.write(os.path.join(ctx.workdir, folder, f'step_{ctx.step:07d}.{video_format}'),
                      ctx.sampler, windows['poses'][:n], windows['paired_poses'][:n])
  yield from ()
