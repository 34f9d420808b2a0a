"""Opening a run directory for training: config checks, the lock, and what may change on resume.

  run = run_config.open_for_training(config, workdir)   # before any data is loaded

1. `validate` checks widths, batch sizes, step counts and rates, so that a bad value is one
   line now rather than a traceback from inside XLA later.
2. The run directory is locked (`bds_jax.run_lock`; process 0 only).
3. A new run writes config.json, once. A resumed run's config is compared with it (and with the
   changes recorded since): fields that would change the model, the data or the normalisation
   refuse to resume, each listed with the --config flag that restores it; the fields its kind
   lists as safe (`Kind.safe_to_change`, bds_jax/kinds.py) are accepted and appended to
   config_history.jsonl with the step they take effect at. config.json itself is never
   rewritten once a checkpoint exists, so it always describes the checkpoints.
"""

import json
import logging
import os
import shutil
import time

import jax

from bds_jax import checkpointing
from bds_jax import errors
from bds_jax import kinds
from bds_jax import run_layout
from bds_jax import run_lock
from bds_jax import runs

log = logging.getLogger(__name__)

_created: set[str] = set()  # runs this process created (or restarted afresh): see discard_untrained

# Validation by field name (the last part of its dotted path), for every trainer.
_POSITIVE_INTS = ('width', 'hidden_width', 'batch_size', 'seq_len', 'frame_lag', 'num_blocks',
                  'num_layers', 'log_every_steps', 'checkpoint_every_steps', 'keep_checkpoints',
                  'eval_batches', 'regressor_time_width', 'regressor_steps',
                  'actnorm_init_samples', 'gif_examples')
_NON_NEGATIVE_INTS = ('num_steps', 'eval_every_steps', 'gif_every_steps', 'every_steps')
_POSITIVE_INT_TUPLES = ('regressor_widths',)


def _flat(tree: dict, prefix: str = '') -> dict:
  out = {}
  for k, v in tree.items():
    if isinstance(v, dict):
      out.update(_flat(v, f'{prefix}{k}.'))
    else:
      out[f'{prefix}{k}'] = v
  return out


def _as_json(config) -> dict:
  """The config's fields as config.json holds them (lists, not tuples), flattened."""
  if not isinstance(config, dict):
    config = json.loads(config.to_json_best_effort())
  return _flat(json.loads(json.dumps(config)))


def validate(config):
  """Raises ConfigError (one line) for a value that cannot work."""
  for field, v in _flat(config.to_dict()).items():
    leaf = field.rpartition('.')[2]
    bad = None
    if isinstance(v, bool):
      continue
    if leaf in _POSITIVE_INTS and not (isinstance(v, int) and v > 0):
      bad = 'must be a positive integer'
    elif leaf in _NON_NEGATIVE_INTS and not (isinstance(v, int) and v >= 0):
      bad = 'must be an integer >= 0'
    elif leaf in _POSITIVE_INT_TUPLES and not all(isinstance(w, int) and w > 0 for w in v):
      bad = 'must be positive integers'
    elif (leaf == 'lr' or leaf.endswith('_lr')) and not (isinstance(v, (int, float)) and v > 0):
      bad = 'must be a positive number'
    elif leaf == 'adversary_clamp' and not (isinstance(v, (int, float)) and v >= 0):
      bad = 'must be >= 0 (0: the chance level of the training keypoints)'
    if bad:
      raise errors.ConfigError(f'--config.{field}={v!r}: {bad}.')
  if config.get('num_steps', 1) == 0 and not config.get('num_epochs', 1) > 0:
    raise errors.ConfigError(f'--config.num_epochs={config.num_epochs!r}: must be > 0 when '
                             'num_steps is 0.')
  batch = config.get('data', {}).get('batch_size')
  if batch and batch % jax.device_count():
    raise errors.ConfigError(f'--config.data.batch_size={batch}: must be divisible by the '
                             f'{jax.device_count()} devices (it is the global batch).')


def differences(stored: dict, config, trainer: str) -> tuple[dict, dict]:
  """(unsafe, safe) differences {field: (stored value, new value)} between two configs."""
  a, b = _as_json(stored), _as_json(config)
  diff = {f: (a.get(f, '(absent)'), b.get(f, '(absent)')) for f in sorted(set(a) | set(b))
          if a.get(f, '(absent)') != b.get(f, '(absent)')}
  kind = kinds.get(trainer)
  unsafe = {f: d for f, d in diff.items() if not kind.is_safe_to_change(f)}
  return unsafe, {f: d for f, d in diff.items() if f not in unsafe}


def describe(unsafe: dict) -> list[str]:
  """One line per difference, with the flag that gives the run's value back."""
  def flag(v):
    return ','.join(map(str, v)) if isinstance(v, list) else v
  return [f'{f}: the run has {old!r}, this config {new!r} (use --config.{f}={flag(old)})'
          for f, (old, new) in unsafe.items()]


def _history(run: runs.Run) -> list[dict]:
  path = os.path.join(run.path, run_layout.CONFIG_HISTORY_FILE)
  if not os.path.exists(path):
    return []
  rows = []
  with open(path) as f:
    for line in f:
      try:
        rows.append(json.loads(line))
      except ValueError:
        log.warning('Ignoring a cut-off line in %s.', path)
  return rows


def effective_stored_config(run: runs.Run) -> dict:
  """config.json with the changes recorded in config_history.jsonl applied (JSON, nested)."""
  stored = json.loads(run.config.to_json_best_effort())
  for row in _history(run):
    for field, (_, new) in row.get('changes', {}).items():
      *parents, leaf = field.split('.')
      node = stored
      for p in parents:
        node = node.setdefault(p, {})
      node[leaf] = new
  return stored


def open_for_training(config, workdir: str) -> runs.Run:
  """Validates config, locks workdir and creates or checks the run in it; returns the Run."""
  validate(config)
  run = runs.Run(workdir).create()
  if jax.process_index() == 0:
    run_lock.acquire(run.path)
  if not run.exists():
    run.write_config(config)
    _created.add(run.path)
    return run
  steps = checkpointing.saved_steps(run.checkpoint_dir)
  unsafe, safe = differences(effective_stored_config(run), config, config.trainer)
  if unsafe and not steps:
    # Nothing trained yet (a first attempt failed early): start afresh with this config.
    log.warning('%s holds no checkpoint yet; starting it again with the new config (%s).',
                run.path, ', '.join(unsafe))
    for name in run_layout.DERIVED_FILES if jax.process_index() == 0 else ():
      if os.path.exists(os.path.join(run.path, name)):
        os.remove(os.path.join(run.path, name))  # derived from the old data settings; refitted
    run.write_config(config)
    _created.add(run.path)
    return run
  if unsafe:
    raise errors.ConfigError(
        f'Cannot resume {run.path} with this config: these fields change the model, the data '
        'or the normalisation its checkpoints were trained with:\n  '
        + '\n  '.join(describe(unsafe))
        + '\nResume with the run\'s values, or train into a new --workdir. Fields that may '
        f'change on resume: {", ".join(kinds.get(config.trainer).safe_to_change)}.')
  run.safe_changes = safe  # recorded by record_safe_changes at the step the run resumes from
  return run


def discard_untrained(workdir: str):
  """After a failed start: removes what this process wrote into a run it created, when no
  checkpoint was saved (config.json, derived files, logs), so nothing half-made is left."""
  path = os.path.abspath(workdir)
  if path not in _created or jax.process_index() != 0:
    return
  run = runs.Run(path)
  if checkpointing.saved_steps(run.checkpoint_dir):
    return
  for name in (run_layout.CONFIG_FILE, run_layout.CONFIG_HISTORY_FILE,
               run_layout.METRICS_FILE) + run_layout.DERIVED_FILES:
    if os.path.exists(os.path.join(path, name)):
      os.remove(os.path.join(path, name))
  for name in (run_layout.TENSORBOARD_DIR, run_layout.CHECKPOINT_DIR):
    shutil.rmtree(os.path.join(path, name), ignore_errors=True)
  _created.discard(path)


def record_safe_changes(run: runs.Run, step: int):
  """Appends the safe changes open_for_training accepted to config_history.jsonl, at `step`:
  the checkpoint the run resumed from (after a fallback, not the newest saved one)."""
  safe = getattr(run, 'safe_changes', None)
  if not safe or jax.process_index() != 0:
    return
  log.info('Resuming %s at step %d with changed %s (recorded in %s).', run.path, step,
           ', '.join(f'{f}={new!r}' for f, (_, new) in safe.items()),
           run_layout.CONFIG_HISTORY_FILE)
  with open(os.path.join(run.path, run_layout.CONFIG_HISTORY_FILE), 'a') as f:
    f.write(json.dumps({'step': int(step), 'time': time.time(),
                        'changes': {k: list(v) for k, v in safe.items()}}) + '\n')
  run.safe_changes = {}
