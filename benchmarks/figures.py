"""Rendering speed of the animated figures: blitting (ours) beside a full redraw per frame.

  python benchmarks/figures.py [--panels=4] [--frames=51] [--repeats=3]

Renders a row of `panels` 3D panels of a `frames`-frame synthetic clip with
`bds_jax.viz.animation.render` (the figure is drawn once, then only the moving artists are
redrawn per frame), and the same figure redrawn whole by `fig.canvas.draw()` for every frame
(as the project's first figure code did; the same pixels), plus writing the MP4.
Prints median seconds and frames per second side by side. Target (issue 12): a 4-panel
51-frame clip in under 5 s on 2 CPU cores.
"""

import os
import sys
import tempfile
import time

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import matplotlib  # pylint: disable=g-import-not-at-top,wrong-import-position

matplotlib.use('Agg')
import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position

from bds_jax import procedural  # pylint: disable=g-import-not-at-top,wrong-import-position
from bds_jax.viz import animation  # pylint: disable=g-import-not-at-top,wrong-import-position
from bds_jax.viz import video_io  # pylint: disable=g-import-not-at-top,wrong-import-position

flags.DEFINE_integer('panels', 4, 'Panels in the row.')
flags.DEFINE_integer('frames', 51, 'Frames per clip (51 = one window at 25 fps).')
flags.DEFINE_integer('repeats', 3, 'Timed repetitions (median reported).')
FLAGS = flags.FLAGS


def median(fn, repeats):
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    out = fn()
    times.append(time.perf_counter() - t)
  return float(np.median(times)), out


def main(argv):
  del argv
  behaviors = procedural.BEHAVIORS
  clips = [procedural.render('S9', 'standing', behaviors[i % len(behaviors)], i, i,
                            2 * FLAGS.frames + 100)[100::2][:FLAGS.frames]
           for i in range(FLAGS.panels)]
  panels = [[animation.Panel(f'clip {i}', c) for i, c in enumerate(clips)]]
  ours, frames = median(lambda: animation.render(panels, fps=25.0), FLAGS.repeats)
  naive, slow = median(lambda: animation.render(panels, fps=25.0, blit=False), FLAGS.repeats)
  assert np.array_equal(frames, slow), 'blitting changed the pixels'
  with tempfile.TemporaryDirectory() as d:
    mp4, _ = median(lambda: video_io.write(os.path.join(d, 'x.mp4'), frames, 25.0),
                    FLAGS.repeats)
  n = len(frames)
  print(f'{FLAGS.panels} panels x {n} frames, {frames.shape[2]}x{frames.shape[1]} px, '
        f'{os.cpu_count()} CPUs, matplotlib {matplotlib.__version__}')
  print('| | seconds | frames/s | vs full redraw |')
  print('|---|---|---|---|')
  print(f'| animation.render (draw once, blit) | {ours:.2f} | {n / ours:.0f} | '
        f'{naive / ours:.1f}x |')
  print(f'| full redraw per frame | {naive:.2f} | {n / naive:.0f} | 1.0x |')
  print(f'| MP4 encode (imageio-ffmpeg) | {mp4:.2f} | {n / mp4:.0f} | |')
  print(f'Target: under 5 s for 4 panels x 51 frames: {"met" if ours < 5 else "NOT met"}.')


if __name__ == '__main__':
  app.run(main)
