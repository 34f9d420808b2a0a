"""synthesize.py's subcommands: a registry of modules, found by name as evaluators are.

A subcommand is a module with

    HELP = 'one line: what it makes'
    @dataclasses.dataclass
    class Options(session.Common[, session.MotionFiles]):   # its flags, one field each
      ...
    def run(s: session.Session, o: Options) -> dict          # writes its files, returns its
                                                             # manifest entry

`register(name, module)` adds one (the built-in ones are listed in SUBCOMMANDS); `run(name,
**options)` loads the run once, makes the figure and writes it and its manifest entry into
<run>/synthesis/ (or --out_dir), which the HTML report reads.
"""

import dataclasses
import importlib
import json
import logging
import os
from types import ModuleType

from bds_jax import errors

log = logging.getLogger(__name__)

# name -> module; imported on first use (this package imports nothing heavy, so synthesize.py
# can read the registry before the XLA backend is configured).
SUBCOMMANDS = {name: f'bds_jax.synthesis.commands.{name}' for name in (
    'transfer', 'sample', 'loop', 'interpolate', 'neighbours', 'umap', 'video', 'predict')}
# Subcommands that run convolutions on the CPU and want XLA's Eigen kernels
# (bds_jax.xla_cpu.prefer_eigen_convolutions, set before the backend starts).
EIGEN_CONVOLUTIONS = {'video'}


def register(name: str, module: str) -> None:
  """Adds a subcommand: `module` (a dotted path) has HELP, Options and run (module doc)."""
  if not name.isidentifier():
    raise ValueError(f'Subcommand name {name!r} must be an identifier.')
  SUBCOMMANDS[name] = module


def get(name: str) -> ModuleType:
  """The module of subcommand `name` (a clear error naming the subcommands otherwise)."""
  if name not in SUBCOMMANDS:
    raise errors.InputError(f'Unknown subcommand {name!r}; choose one of '
                            f'{", ".join(SUBCOMMANDS)}.')
  module = importlib.import_module(SUBCOMMANDS[name])
  for attr in ('HELP', 'Options', 'run'):
    if not hasattr(module, attr):
      raise ValueError(f'{SUBCOMMANDS[name]} is not a subcommand: it has no {attr}.')
  return module


def options(subcommand: str, /, **values):
  """A subcommand's Options from keyword values (unknown ones are a clear error)."""
  cls = get(subcommand).Options
  known = {f.name for f in dataclasses.fields(cls)}
  unknown = sorted(set(values) - known)
  if unknown:
    raise errors.InputError(f'{subcommand} takes no option {", ".join("--" + u for u in unknown)}; '
                            f'its options: {", ".join("--" + k for k in sorted(known))}.')
  return cls(**values)


def run(subcommand: str, /, **values) -> dict:
  """Runs a subcommand with these options (its Options' fields); returns its manifest entry
  (files relative to its out_dir)."""
  from bds_jax.synthesis import session as session_lib  # pylint: disable=g-import-not-at-top
  module = get(subcommand)
  o = options(subcommand, **values)
  session_lib.check(o)
  if hasattr(module, 'check'):
    module.check(o)
  s = session_lib.Session(o)
  entry = module.run(s, o)
  log.info('%s: %s', subcommand, os.path.join(s.out_dir, entry.get('video') or entry.get('still')))
  return entry


def summary(entry: dict, out_dir: str) -> str:
  files = [entry[k] for k in ('video', 'still', 'html') if k in entry]
  stats = (f' {json.dumps(entry["stats"], ensure_ascii=False)}' if entry.get('stats')
           else '')
  return f'{entry["title"]}: ' + ', '.join(os.path.join(out_dir, f) for f in files) + stats
