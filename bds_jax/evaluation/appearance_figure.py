"""Training evaluator: the appearance model's image grid, as a PNG.

  config.evals.figure = dict(type='appearance_figure', data='figure', examples=6, every_steps=N)

One row per example of the fixed set `data` (a `bds_jax.data.images.fixed_pairs` set, whose
consecutive items show different people): the appearance image | its stickman | the
reconstruction | the next row's stickman (another person's pose) | the transfer of this
appearance into that pose. Runs the trainer's `figure_step` (one batch) and writes
<workdir>/<folder>/step_<step>.png on process 0, and yields the grid as ('figure', uint8
(H, W, 3) image) there, which the training loop logs to TensorBoard as an image.
"""

import os

import jax

from bds_jax import run_layout
from bds_jax.viz import image_grid
from bds_jax.viz import video_io


def run(ctx, *, examples: int = 6, data: str = 'figure', fn: str = 'figure_step',
        folder: str = run_layout.FIGURES_DIR):
  arrays = ctx.data[data]
  outs = ctx.outputs(fn, data, ('appearance', 'stickman'))  # every process takes part
  if jax.process_index() == 0 and outs:
    rec, transfer = outs[0]['reconstruction'], outs[0]['transfer']
    n = min(examples, len(rec))
    source = 'image' if ctx.config.data.appearance_source == 'self' else 'paired_image'
    drawn = arrays['stickman'][..., :3]  # model.part_warp: crop coordinates follow the drawing
    rows = [[arrays[source][i], drawn[i], rec[i], drawn[(i + 1) % len(rec)], transfer[i]]
            for i in range(n)]
    figure = image_grid.grid(rows)
    video_io.write_still(os.path.join(ctx.workdir, folder, f'step_{ctx.step:07d}.png'),
                         image_grid.to_uint8(figure))
    yield 'figure', figure
