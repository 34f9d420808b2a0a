"""A user's folder of motion files: its options (mocap.json), files, classes, subjects, splits.

Everything here works on file names only (nothing is read but mocap.json), so the split of a
file never depends on whether other files turn out to be readable, and a bad layout fails
before minutes of reading. The reading itself is bds_jax.motion.read_motion's.
"""

import dataclasses
import hashlib
import json
import os
import re

from bds_jax import errors
from bds_jax.motion import bvh as bvh_lib
from bds_jax.motion import files as motion_files
from bds_jax.motion import retarget

OPTIONS_FILE = 'mocap.json'
UNLABELLED = 'unlabelled'  # the one class of a folder whose files sit in no class folder
UNKNOWN_SUBJECT = 'unknown'
SPLITS = ('file', 'subject')
ON_BAD_FILE = ('skip', 'fail')


@dataclasses.dataclass
class Options:
  """What mocap.json in the folder may set (docs/own_mocap.md); every field has a default.

  Reading (bds_jax.motion.read_motion's arguments): format, source_fps, units, up, joint_map
  (a JSON object, or a JSON file's path relative to the folder), retarget, place.
  min_seconds: clips shorter than this (after reading) are refused as bad files.
  labels: 'folder' (the first folder level under the folder names the class), 'none' (one
    class, 'unlabelled') or a regular expression searched in each file's relative path whose
    first group (or whole match) names the class.
  subject_pattern: a regular expression searched in the relative path whose first group (or
    whole match) names the subject; '' (or no match): subject 'unknown'.
  split: 'file' (each class's files by a hash of their relative path, `test_fraction` of them
    to test) or 'subject' (the files of `test_subjects` to test).
  on_bad_file: 'skip' (log one line per bad file, count them, and go on) or 'fail'.
  extensions: the files read; others are ignored.
  """
  format: str = 'auto'
  source_fps: float | None = None
  units: str | float = 'auto'
  up: str = 'auto'
  joint_map: dict | str | None = None
  retarget: str = 'auto'
  place: bool = True
  min_seconds: float = 1.0
  labels: str = 'folder'
  subject_pattern: str = ''
  split: str = 'file'
  test_fraction: float = 0.1
  test_subjects: tuple[str, ...] = ()
  on_bad_file: str = 'skip'
  extensions: tuple[str, ...] = motion_files.EXTENSIONS


def _check(ok: bool, path: str, what: str):
  if not ok:
    raise errors.InputError(f'{path}: {what}')


def _regex(path: str, key: str, pattern: str) -> re.Pattern:
  try:
    compiled = re.compile(pattern)
  except re.error as e:
    raise errors.InputError(f'{path}: {key} {pattern!r} is not a regular expression ({e}).'
                            ) from None
  _check(compiled.groups <= 1, path, f'{key} {pattern!r} has {compiled.groups} groups; use at '
         'most one (it names the class or subject), e.g. (?:...) for the others.')
  return compiled


def read_options(root: str) -> Options:
  """The folder's mocap.json (defaults where absent), checked: a bad value is one line."""
  path = os.path.join(root, OPTIONS_FILE)
  if not os.path.exists(path):
    return Options()
  try:
    with open(path) as f:
      raw = json.load(f)
  except (ValueError, UnicodeDecodeError) as e:
    raise errors.InputError(f'{path}: not valid JSON ({e}).') from None
  _check(isinstance(raw, dict), path, 'expected a JSON object of options.')
  known = [f.name for f in dataclasses.fields(Options)]
  unknown = sorted(set(raw) - set(known))
  _check(not unknown, path, f'unknown option(s) {", ".join(unknown)}; the options are '
         f'{", ".join(known)} (docs/own_mocap.md).')
  for key in ('test_subjects', 'extensions'):
    if key in raw:
      _check(isinstance(raw[key], list) and all(isinstance(s, str) for s in raw[key]), path,
             f'{key} must be a list of strings.')
      raw[key] = tuple(raw[key])
  o = Options(**raw)
  _check(o.format in motion_files.FORMATS, path, f'format {o.format!r}: expected one of '
         f'{", ".join(motion_files.FORMATS)}.')
  _check(o.source_fps is None or (isinstance(o.source_fps, (int, float))
                                  and 0 < o.source_fps <= 10000), path,
         f'source_fps {o.source_fps!r}: expected null or frames per second in (0, 10000].')
  _check((isinstance(o.units, str) and (o.units in motion_files.UNITS or o.units == 'auto'))
         or (isinstance(o.units, (int, float)) and o.units > 0), path,
         f'units {o.units!r}: expected auto, {", ".join(motion_files.UNITS)} or metres per unit.')
  _check(o.up in motion_files.UP_AXES, path,
         f'up {o.up!r}: expected one of {", ".join(motion_files.UP_AXES)}.')
  _check(o.retarget in retarget.MODES, path,
         f'retarget {o.retarget!r}: expected one of {", ".join(retarget.MODES)}.')
  _check(isinstance(o.place, bool), path, f'place {o.place!r}: expected true or false.')
  _check(isinstance(o.min_seconds, (int, float)) and o.min_seconds >= 0, path,
         f'min_seconds {o.min_seconds!r}: expected a number >= 0.')
  _check(isinstance(o.labels, str) and o.labels, path, 'labels: expected "folder", "none" or a '
         'regular expression.')
  if o.labels not in ('folder', 'none'):
    _regex(path, 'labels', o.labels)
  _check(isinstance(o.subject_pattern, str), path, 'subject_pattern: expected a regular '
         'expression (a string).')
  if o.subject_pattern:
    _regex(path, 'subject_pattern', o.subject_pattern)
  _check(o.split in SPLITS, path, f'split {o.split!r}: expected one of {", ".join(SPLITS)}.')
  _check(isinstance(o.test_fraction, (int, float)) and 0 < o.test_fraction < 1, path,
         f'test_fraction {o.test_fraction!r}: expected a number between 0 and 1.')
  if o.split == 'subject':
    _check(bool(o.subject_pattern and o.test_subjects), path, 'split "subject" needs '
           'subject_pattern (which part of a file\'s path names its subject) and test_subjects.')
  _check(o.on_bad_file in ON_BAD_FILE, path,
         f'on_bad_file {o.on_bad_file!r}: expected one of {", ".join(ON_BAD_FILE)}.')
  if isinstance(o.joint_map, str):  # relative to the folder, so the folder can move
    o.joint_map = os.path.join(root, o.joint_map)
  if o.joint_map is not None:
    try:
      bvh_lib.load_joint_map(o.joint_map)  # a bad map fails here, not once per file
    except errors.InputError as e:
      raise errors.InputError(f'{path}: {e}') from None
  return o


@dataclasses.dataclass
class Entry:
  """One motion file: its path relative to the folder (with / separators), class, subject."""
  path: str
  label: str
  subject: str
  test: bool = False


def list_files(root: str, extensions) -> tuple[list[str], int]:
  """Relative paths (sorted, / separated) of the motion files below root, hidden files and
  folders left out, and the number of other files ignored."""
  found, ignored = [], 0
  extensions = tuple(e.lower() for e in extensions)
  for d, dirs, names in os.walk(root, followlinks=True):
    dirs[:] = sorted(x for x in dirs if not x.startswith('.'))
    for name in names:
      if name.startswith('.') or (d == root and name == OPTIONS_FILE):
        continue
      if name.lower().endswith(extensions):
        found.append(os.path.relpath(os.path.join(d, name), root).replace(os.sep, '/'))
      else:
        ignored += 1
  return sorted(found), ignored


def _named(pattern: re.Pattern, path: str) -> str | None:
  m = pattern.search(path)
  if m is None:
    return None
  return m.group(1) if pattern.groups else m.group(0)


def entries(root: str, options: Options) -> tuple[list[Entry], int]:
  """Every motion file with its class, subject and split; the number of files ignored."""
  paths, ignored = list_files(root, options.extensions)
  if not paths:
    raise errors.InputError(f'{root}: no motion files ({", ".join(options.extensions)}) in it '
                            'or its subfolders (docs/own_mocap.md).')
  if options.labels == 'none' or (options.labels == 'folder'
                                  and all('/' not in p for p in paths)):
    labels = [UNLABELLED] * len(paths)
  elif options.labels == 'folder':
    loose = [p for p in paths if '/' not in p]
    if loose:
      raise errors.InputError(
          f'{root}: {len(loose)} file(s) (e.g. {loose[0]}) sit directly in the folder while '
          f'others sit in class folders; move them into a class folder, or set "labels": '
          f'"none" in {OPTIONS_FILE} if the folders are not classes.')
    labels = [p.split('/', 1)[0] for p in paths]
  else:
    pattern = re.compile(options.labels)
    labels = [_named(pattern, p) for p in paths]
    missing = [p for p, c in zip(paths, labels) if not c]
    if missing:
      raise errors.InputError(f'{root}: the labels pattern {options.labels!r} names no class '
                              f'in {len(missing)} file path(s), e.g. {missing[0]}.')
  subject = re.compile(options.subject_pattern) if options.subject_pattern else None
  out = [Entry(p, c, (_named(subject, p) if subject else None) or UNKNOWN_SUBJECT)
         for p, c in zip(paths, labels)]
  split(out, options, root)
  return out, ignored


def _hash(path: str) -> float:
  """A number in [0, 1) fixed by the relative path alone: a file's split does not change
  when files are added, removed or the folder moves."""
  return int(hashlib.sha1(path.encode()).hexdigest()[:12], 16) / 16 ** 12


def split(out: list[Entry], options: Options, root: str):
  """Marks the test files (see Options.split); every class of two or more files gets at least
  one test file under 'file', so a small folder still tests every class."""
  if options.split == 'subject':
    found = sorted({e.subject for e in out})
    missing = sorted(set(options.test_subjects) - set(found))
    if missing:
      raise errors.InputError(f'{root}: test_subjects {", ".join(missing)} match no file; the '
                              f'subject_pattern finds {", ".join(found)}.')
    for e in out:
      e.test = e.subject in options.test_subjects
  else:
    for label in sorted({e.label for e in out}):
      group = sorted((e for e in out if e.label == label), key=lambda e: _hash(e.path))
      for e in group:
        e.test = _hash(e.path) < options.test_fraction
      if len(group) >= 2 and not any(e.test for e in group):
        group[0].test = True
      if all(e.test for e in group):
        group[-1].test = False
  train = sum(not e.test for e in out)
  if not train or train == len(out):
    raise errors.InputError(
        f'{root}: the {options.split} split puts {len(out) - train} of {len(out)} files in '
        f'test; both splits need files (add files, or change split, test_fraction or '
        f'test_subjects in {OPTIONS_FILE}).')


def fingerprint(root: str, options: Options) -> str:
  """A hash of the motion files' names, sizes and times and of mocap.json: whether the folder
  changed since a dataset was built from it."""
  h = hashlib.sha1()
  paths, _ = list_files(root, options.extensions)
  for p in paths + [OPTIONS_FILE]:
    full = os.path.join(root, p)
    if os.path.exists(full):
      st = os.stat(full)
      h.update(f'{p}\0{st.st_size}\0{st.st_mtime_ns}\n'.encode())
  return h.hexdigest()
