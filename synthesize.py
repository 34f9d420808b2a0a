"""Synthesises from trained runs: behavior transfer, samples, interpolations, predictions, RGB
video. One subcommand per run; `python synthesize.py <subcommand> --help` lists its flags.

  python synthesize.py transfer --workdir=runs/demo [--source=test:auto] [--target=test:auto]
  python synthesize.py sample --workdir=runs/demo [--target=test:12] [--num=4]
  python synthesize.py loop --workdir=runs/demo [--num_behaviors=6] [--prior=auto|flow|gaussian]
  python synthesize.py interpolate --workdir=runs/demo --source=test:10,800 [--steps=5]
  python synthesize.py neighbours --workdir=runs/demo [--source=test:10] [--k=5]
  python synthesize.py umap --workdir=runs/demo [--points=2000]
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

import dataclasses
import logging as std_logging
import os
import sys

from absl import app
from absl import flags
from absl import logging

from bds_jax import errors
from bds_jax import run_layout
from bds_jax import run_lock
from bds_jax import xla_cpu

FLAGS = flags.FLAGS
flags.DEFINE_bool('report', True, 'Rewrite <workdir>/index.html afterwards.')
_DEFINE = {int: flags.DEFINE_integer, float: flags.DEFINE_float, str: flags.DEFINE_string,
           bool: flags.DEFINE_bool}


def _subcommand(argv: list[str]) -> str | None:
  """The first argument that is not a flag (absl flags take their values with '=')."""
  return next((a for a in argv[1:] if not a.startswith('-')), None)


def define_flags(options_cls) -> None:
  """One absl flag per field of a subcommand's Options (bds_jax.synthesis.session)."""
  for f in dataclasses.fields(options_cls):
    if f.name in FLAGS:
      continue
    choices = f.metadata.get('choices')
    default = None if f.name == 'workdir' else f.default  # None: required
    if choices:
      flags.DEFINE_enum(f.name, default, list(choices), f.metadata['help'])
    else:
      _DEFINE[f.type](f.name, default, f.metadata['help'])
  flags.mark_flag_as_required('workdir')


def main(argv):
  # pylint: disable=g-import-not-at-top
  from bds_jax.synthesis import commands
  from bds_jax.viz import report_page
  if len(argv) != 2 or argv[1] not in commands.SUBCOMMANDS:
    raise errors.InputError('Give one subcommand: ' + ', '.join(commands.SUBCOMMANDS) +
                            ' (e.g. python synthesize.py transfer --workdir=runs/demo; '
                            'python synthesize.py transfer --help for its flags).')
  logging.set_verbosity(logging.WARNING)
  std_logging.getLogger('bds_jax').setLevel(std_logging.INFO)
  fields = dataclasses.fields(commands.get(argv[1]).Options)
  values = {f.name: FLAGS[f.name].value for f in fields}
  with run_lock.reading():  # a trainer cannot start on the runs read until this ends
    entry = commands.run(argv[1], **values)
  out_dir = values['out_dir'] or os.path.join(entry['workdir'], run_layout.SYNTHESIS_DIR)
  print(commands.summary(entry, out_dir))
  if FLAGS.report and not values['out_dir']:
    print(f'Report: {report_page.write(entry["workdir"])}')


def _run():
  from bds_jax.synthesis import commands  # pylint: disable=g-import-not-at-top
  name = _subcommand(sys.argv)
  if name in commands.EIGEN_CONVOLUTIONS:
    xla_cpu.prefer_eigen_convolutions()  # before the backend starts
  if name is None:  # so that `--workdir=...` alone says a subcommand is missing
    from bds_jax.synthesis import session  # pylint: disable=g-import-not-at-top
    define_flags(session.Common)
  else:
    define_flags(commands.get(name).Options)  # an unknown name: one line naming the known ones
  app.run(main, flags_parser=errors.parse_flags)


if __name__ == '__main__':
  errors.main_with_clear_errors(_run)
