"""Sample figures of a behavior model with a flow prior, from one start posture.

`samples_step_<step>.<ext>`: three flow samples above three N(0, I) samples, all decoded from
the same start posture. `sample_loop_step_<step>.<ext>`: one long sequence in which each flow
sample starts from the last pose of the previous one.
"""

import os

import jax
import numpy as np

from bds_jax.viz import animation
from bds_jax.viz import video_io


def write(out_dir: str, step: int, sampler, start, key, loop_behaviors: int,
          video_format: str = 'gif'):
  """Writes both figures for a `bds_jax.sampling.Sampler` with a flow; start (17, 3) metres."""
  chain = sampler.sample_loop(key, start, loop_behaviors, prior='flow')
  video_io.write(
      os.path.join(out_dir, f'sample_loop_step_{step:07d}.{video_format}'),
      animation.render([[animation.Panel('flow sample loop', chain)]], sampler.fps,
                       title=f'step {step}: {loop_behaviors} chained flow samples'),
      sampler.fps)
  starts = np.repeat(start[None], 3, axis=0)
  rows = []
  for prior in ('flow', 'gaussian'):
    seqs = sampler.decode(sampler.sample_codes(3, jax.random.fold_in(key, len(rows)), prior),
                          starts)
    rows.append([animation.Panel(f'{prior} sample {i + 1}', s) for i, s in enumerate(seqs)])
  video_io.write(os.path.join(out_dir, f'samples_step_{step:07d}.{video_format}'),
                 animation.render(rows, sampler.fps, title=f'step {step}: samples from one start '
                                  'posture'), sampler.fps)
