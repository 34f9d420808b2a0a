"""What every synthesize.py subcommand shares: its common options and the loaded run.

A subcommand's options are a dataclass that extends `Common` (and `MotionFiles` where its
--source/--target may be motion files); each field is one synthesize.py flag, its help text
in the field's metadata (`option`). synthesize.py defines the flags of the subcommand it runs,
so `synthesize.py transfer --help` lists transfer's flags only.
"""

import dataclasses
import functools
import os

from bds_jax import errors
from bds_jax import runs
from bds_jax.data import assembly
from bds_jax.synthesis import inputs
from bds_jax.synthesis import outputs


def option(default, help_text: str, choices: tuple = ()):
  """A subcommand option: its default, its flag's help and, for an enum, its choices."""
  return dataclasses.field(default=default, metadata={'help': help_text, 'choices': choices})


@dataclasses.dataclass
class Common:
  """Options of every subcommand."""
  workdir: str = option('', 'Behavior run (its flow/ and diffusion/ priors are used when '
                        'present).')
  out_dir: str = option('', 'Where results go (default: <workdir>/synthesis).')
  data_dir: str = option('', 'TFDS data dir (default: the one the run recorded).')
  seed: int = option(0, 'Seed of auto selections and samples.')
  format: str = option('mp4', 'Animation format.', ('mp4', 'gif'))
  name: str = option('', 'Output file name (default: the subcommand).')


@dataclasses.dataclass
class MotionFiles:
  """How --source/--target motion files are read (bds_jax.motion.read_motion's options)."""
  motion_format: str = option('auto', 'Format of --source/--target files (auto: by extension '
                              'and shape).', ('auto', 'npy', 'bvh', 'smpl', 'videopose3d'))
  source_fps: float = option(0.0, 'Frame rate of --source/--target files (0: the file\'s own; '
                             'needed for .npy SMPL joints and VideoPose3D output).')
  units: str = option('auto', 'Units of motion files: auto, m, cm, mm, in, cmu or metres per '
                      'unit.')
  up: str = option('auto', 'Up axis of motion files (auto: detected from the body).',
                   ('auto', 'x', 'y', 'z', '-x', '-y', '-z'))
  joint_map: str = option('', 'BVH: a JSON file mapping our joint names to the file\'s '
                          '(docs/synthesis.md, "Bring your own motion").')
  retarget: str = option('auto', 'Rescale a file\'s bones to the training skeleton (auto: when '
                         'they differ by more than 15%).', ('auto', 'always', 'never'))

  def motion(self) -> dict:
    return dict(format=self.motion_format, source_fps=self.source_fps or None, units=self.units,
                up=self.up, joint_map=self.joint_map or None, retarget=self.retarget)


def check(options) -> None:
  """Checks the common constraints of any subcommand's options (one clear line each)."""
  if not options.workdir:
    raise errors.InputError('--workdir is required: the behavior run to synthesise from.')
  for f in dataclasses.fields(options):
    value = getattr(options, f.name)
    if f.metadata.get('choices') and value not in f.metadata['choices']:
      raise errors.InputError(f'--{f.name}={value!r} must be one of '
                              f'{", ".join(f.metadata["choices"])}.')
    if f.type in (int, 'int') and f.name != 'seed' and value < 1:
      raise errors.InputError(f'--{f.name}={value} must be at least 1.')


class Session:
  """A behavior run loaded for synthesis: its sampler (with its priors when it has them) and
  its windows per split, loaded on first use."""

  def __init__(self, options: Common):
    self.options = options
    self.run = runs.Run(options.workdir, options.data_dir or None)
    self.sampler = self.run.sampler()  # a prior's run: with that prior
    if self.run.kind.trained_over:  # ... and the data of the run it was trained over
      self.run = self.run.behavior_run()
    self.config = self.run.config
    self.out_dir = options.out_dir or os.path.join(self.run.path, outputs.DIR)

  @functools.cache  # pylint: disable=method-cache-max-size-none
  def windows(self, split: str):
    return assembly.load_windows(self.config.data, split, self.sampler.normalizer)

  def clips(self, spec: str, n: int, what: str, seed_offset: int = 0, exclude=()):
    o = self.options
    motion = {'fps': self.sampler.fps,
              **(o.motion() if isinstance(o, MotionFiles) else {})}
    return inputs.select(spec, n, self.windows, self.sampler.normalizer, self.sampler.steps + 1,
                         what, o.seed + seed_offset, exclude, motion)


def save(s: Session, o: Common, command: str, figure, **extra) -> dict:
  """Renders and writes a Figure (bds_jax.synthesis.behavior) as <name>.<format> and a still,
  and adds its manifest entry."""
  return outputs.save_figure(s.out_dir, o.name or command, command, figure, s.sampler.fps,
                             o.format, **{'workdir': s.run.path, **extra})
