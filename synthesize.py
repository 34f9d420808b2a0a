"""Synthesises from trained runs: behavior transfer, samples, interpolations, RGB video.

  python synthesize.py transfer --workdir=runs/demo [--source=test:auto] [--target=test:auto]
  python synthesize.py sample --workdir=runs/demo [--target=test:12] [--num=4]
  python synthesize.py loop --workdir=runs/demo [--num_behaviors=6] [--prior=flow|gaussian]
  python synthesize.py interpolate --workdir=runs/demo --source=test:10,800 [--steps=5]
  python synthesize.py neighbours --workdir=runs/demo [--source=test:10] [--k=5]
  python synthesize.py umap --workdir=runs/demo [--num=300]
  python synthesize.py video --workdir=runs/demo --appearance_workdir=runs/demo/appearance
  python synthesize.py predict --workdir=runs/demo [--source=test:auto|clip.bvh] [--samples=50]
      [--prior=auto|diffusion|flow|gaussian] [--label=squat --guidance=2]

--source/--target: <split>:<i>,<j>,... (window indices of that split, as evaluation counts
them), <split>:auto (seeded, different classes), a .npy file of poses (T, 17, 3) or
(N, T, 17, 3) in metres at the model's frame rate (docs/synthesis.md), or a motion file: a
.bvh, SMPL joints (.npz, or .npy of (T, 22+, 3)) or VideoPose3D output
(--motion_format=videopose3d), converted by bds_jax.motion (docs/synthesis.md, "Bring your own
motion").
For `video`, --target names frames of the appearance run's image dataset. Results go to
<workdir>/synthesis/ (MP4 by default, --format=gif, plus a PNG still each), and the run's
index.html report is rewritten to show them.
"""

import logging as std_logging
import os

from absl import app
from absl import flags
from absl import logging

from bds_jax import errors
from bds_jax import run_layout
from bds_jax import run_lock
from bds_jax import xla_cpu

flags.DEFINE_string('workdir', None, 'Behavior run (its flow/ prior is used when present).')
flags.DEFINE_string('out_dir', '', 'Where results go (default: <workdir>/synthesis).')
flags.DEFINE_string('data_dir', '', 'TFDS data dir (default: the one the run recorded).')
flags.DEFINE_string('source', 'test:auto', 'Source behaviors: <split>:<i>,... | <split>:auto '
                    '| poses.npy | a .bvh or .npz motion file')
flags.DEFINE_string('target', 'test:auto', 'Target start postures (video: image frames).')
flags.DEFINE_integer('num', 3, 'Sources/targets (auto), samples per row.')
flags.DEFINE_integer('points', 2000, 'umap: test windows embedded (and samples per prior); '
                     'neighbours: re-enactments the class share is averaged over.')
flags.DEFINE_integer('steps', 5, 'interpolate: clips from one code to the other.')
flags.DEFINE_integer('k', 5, 'neighbours: how many.')
flags.DEFINE_enum('prior', 'auto', ['auto', 'flow', 'gaussian', 'diffusion'], 'loop and '
                  'predict: the prior sampled (auto: the diffusion prior for predict, then the '
                  'flow, then N(0, I)).')
flags.DEFINE_integer('samples', 50, 'predict: futures drawn (K; the benchmark\'s 50).')
flags.DEFINE_string('label', '', 'predict: a class (name or number) to ask the labelled '
                    'diffusion prior (<workdir>/diffusion_labels) for.')
flags.DEFINE_float('guidance', 2.0, 'predict: classifier-free guidance scale with --label.')
flags.DEFINE_integer('num_behaviors', 4, 'loop: chained behaviors.')
flags.DEFINE_integer('seed', 0, 'Seed of auto selections and samples.')
flags.DEFINE_enum('format', 'mp4', ['mp4', 'gif'], 'Animation format.')
flags.DEFINE_string('name', '', 'Output file name (default: the subcommand).')
flags.DEFINE_string('appearance_workdir', '', 'video: the appearance run.')
flags.DEFINE_enum('camera', 'dataset', ['dataset', 'orbit'], 'video: the target frame\'s '
                  'camera, or a default orbit camera fitted to the whole re-enactment.')
flags.DEFINE_string('image_builder_config', '', 'video: image dataset config (default: the '
                    'appearance run\'s).')
flags.DEFINE_enum('motion_format', 'auto', ['auto', 'npy', 'bvh', 'smpl', 'videopose3d'],
                  'Format of --source/--target files (auto: by extension and shape).')
flags.DEFINE_float('source_fps', 0.0, 'Frame rate of --source/--target files (0: the file\'s '
                   'own; needed for .npy SMPL joints and VideoPose3D output).')
flags.DEFINE_string('units', 'auto', 'Units of motion files: auto, m, cm, mm, in, cmu or metres '
                    'per unit.')
flags.DEFINE_enum('up', 'auto', ['auto', 'x', 'y', 'z', '-x', '-y', '-z'], 'Up axis of motion '
                  'files (auto: detected from the body).')
flags.DEFINE_string('joint_map', '', 'BVH: a JSON file mapping our joint names to the file\'s '
                    '(docs/synthesis.md, "Bring your own motion").')
flags.DEFINE_enum('retarget', 'auto', ['auto', 'always', 'never'], 'Rescale a file\'s bones to '
                  'the training skeleton (auto: when they differ by more than 15%).')
flags.DEFINE_bool('report', True, 'Rewrite <workdir>/index.html afterwards.')
flags.mark_flags_as_required(['workdir'])
FLAGS = flags.FLAGS


def main(argv):
  if len(argv) != 2:
    raise errors.InputError('Give one subcommand: transfer, sample, loop, interpolate, '
                            'neighbours, umap, video or predict (e.g. python synthesize.py '
                            'transfer --workdir=runs/demo).')
  logging.set_verbosity(logging.WARNING)
  std_logging.getLogger('bds_jax').setLevel(std_logging.INFO)
  if argv[1] == 'video':
    xla_cpu.prefer_eigen_convolutions()  # before the backend starts
  # pylint: disable=g-import-not-at-top
  from bds_jax.synthesis import commands
  from bds_jax.viz import report_page
  settings = commands.Settings(**{f: FLAGS[f].value for f in (
      'workdir', 'out_dir', 'data_dir', 'source', 'target', 'num', 'points', 'steps', 'k', 'prior',
      'num_behaviors', 'seed', 'format', 'name', 'appearance_workdir', 'camera',
      'image_builder_config', 'motion_format', 'source_fps', 'units', 'up', 'joint_map',
      'retarget', 'samples', 'label', 'guidance')})
  with run_lock.reading():  # a trainer cannot start on the runs read until this ends
    entry = commands.run(argv[1], settings)
  print(commands.summary(entry, settings.out_dir or os.path.join(entry['workdir'],
                                                                run_layout.SYNTHESIS_DIR)))
  if FLAGS.report and not settings.out_dir:
    print(f'Report: {report_page.write(entry["workdir"])}')


if __name__ == '__main__':
  errors.main_with_clear_errors(lambda: app.run(main, flags_parser=errors.parse_flags))
