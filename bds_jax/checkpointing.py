"""orbax checkpoints of the whole training state plus the grain iterator position.

One place for checkpoint I/O, so moving to orbax's v1 API later is a one-file change. Saves are
atomic (orbax writes to a temporary directory and renames on commit) and asynchronous; restores
go against an abstract tree, so shapes and dtypes are checked and arrays land with the wanted
sharding.

A checkpoint that cannot be restored (truncated files after a crash or a full disk, say) is not
fatal: `restore_latest` falls back to the newest one that restores and, for the run's writer,
moves the bad ones aside into `checkpoints_quarantined/` (never deleting them).
"""

import logging
import os
from typing import Callable

import grain
import jax
import orbax.checkpoint as ocp

from bds_jax import errors

log = logging.getLogger(__name__)

QUARANTINE_SUFFIX = '_quarantined'


class CheckpointError(errors.UserError):
  """No checkpoint of a run could be restored, or one was trained with another config."""


def _reason(e: BaseException) -> str:
  """The first line of an error, without TensorStore's page of context."""
  text = str(e).strip().splitlines()
  return f'{type(e).__name__}: {text[0][:300] if text else ""}'


def saved_steps(directory: str) -> list[int]:
  """The steps with a finished checkpoint folder in `directory`, without opening orbax."""
  if not os.path.isdir(directory):
    return []
  return sorted(int(n) for n in os.listdir(directory)
                if n.isdigit() and os.path.isdir(os.path.join(directory, n)))


def abstract_like(tree):
  """ShapeDtypeStructs (with shardings) describing `tree`, for restoring into its layout."""
  return jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=getattr(x, 'sharding', None)),
      tree)


class Checkpointer:
  """CheckpointManager wrapper: items 'state', 'data_iter' (optional) and 'meta' (JSON)."""

  def __init__(self, directory: str, keep: int = 3, create: bool = True):
    self.directory = os.path.abspath(directory)
    if not create and not os.path.isdir(self.directory):
      raise FileNotFoundError(f'No checkpoints directory {self.directory}: is this a training '
                              'run directory (--workdir of train.py)?')
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=create)
    self._mngr = ocp.CheckpointManager(self.directory, options=options)

  def latest_step(self) -> int | None:
    return self._mngr.latest_step()

  def all_steps(self) -> list[int]:
    return list(self._mngr.all_steps())

  def save(self, step: int, state, data_iter=None, meta: dict | None = None):
    items = {'state': ocp.args.StandardSave(state),
             'meta': ocp.args.JsonSave(dict(meta or {}, step=int(step)))}
    if data_iter is not None:
      items['data_iter'] = grain.checkpoint.CheckpointSave(data_iter)
    self._mngr.save(step, args=ocp.args.Composite(**items), force=True)

  def restore(self, step: int, abstract_state, data_iter=None):
    """Restores 'state' (and the iterator in place); returns (state, meta)."""
    items = {'state': ocp.args.StandardRestore(abstract_state), 'meta': ocp.args.JsonRestore()}
    if data_iter is not None:
      items['data_iter'] = grain.checkpoint.CheckpointRestore(data_iter)
    try:
      restored = self._mngr.restore(step, args=ocp.args.Composite(**items))
    except Exception as e:  # pylint: disable=broad-except
      raise CheckpointError(f'Checkpoint {self.directory}/{step} cannot be restored '
                            f'({_reason(e)}).') from e
    return restored['state'], dict(restored['meta'])

  def read_meta(self, step: int) -> dict | None:
    """The checkpoint's 'meta' item (config and kind), or None if it cannot be read."""
    try:
      return dict(self._mngr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
                  ['meta'])
    except Exception:  # pylint: disable=broad-except
      return None

  def restore_latest(self, restore_step: Callable[[int], object],
                     differences: Callable[[dict], list[str]] | None = None,
                     quarantine: bool = False):
    """`restore_step(step)` for the newest step where it succeeds; (result, step) or None.

    A step that fails is reported with its reason, and the previous one is tried. If its
    stored config (meta) differs from the current one (`differences(meta)` lists how), that is
    not corruption but another config: CheckpointError, and nothing is moved. With `quarantine`,
    the failed steps newer than the one restored are moved into checkpoints_quarantined/ (only
    once one restores: if none does, nothing is moved, since that is more likely a mismatch
    than every checkpoint being damaged).
    """
    steps = sorted(self.all_steps(), reverse=True)
    failed = []
    for step in steps:
      try:
        result = restore_step(step)
      except Exception as e:  # pylint: disable=broad-except
        meta = self.read_meta(step)
        diff = differences(meta.get('config') or {}) if (meta and differences) else []
        if diff:
          raise CheckpointError(
              f'Checkpoint {self.directory}/{step} was trained with another config, not '
              'corrupt:\n  ' + '\n  '.join(diff)) from e
        why = 'unreadable metadata' if meta is None else 'damaged or incomplete arrays'
        log.warning('Checkpoint %s/%d cannot be restored (%s; %s); trying the previous one.',
                    self.directory, step, why, _reason(e))
        failed.append((step, e))
        continue
      if failed:
        log.warning('Using checkpoint step %d of %s instead of step %d.', step,
                    self.directory, failed[0][0])
        if quarantine:
          for bad, _ in failed:
            self.quarantine(bad)
      return result, step
    if failed:
      raise CheckpointError(
          f'None of the checkpoints {[s for s, _ in failed]} in {self.directory} can be '
          f'restored; the latest fails with {_reason(failed[0][1])}. Nothing was moved. Train '
          'into a new --workdir, or move the broken step folders out of the way.'
      ) from failed[0][1]
    return None

  def quarantine(self, step: int) -> str:
    """Moves step's folder into <checkpoints>_quarantined/ (renamed, never deleted)."""
    dest_dir = self.directory + QUARANTINE_SUFFIX
    os.makedirs(dest_dir, exist_ok=True)
    dest, n = os.path.join(dest_dir, str(step)), 1
    while os.path.exists(dest):
      n += 1
      dest = os.path.join(dest_dir, f'{step}-{n}')
    os.rename(os.path.join(self.directory, str(step)), dest)
    self._mngr.reload()
    log.warning('Moved the unrestorable checkpoint %s/%d to %s.', self.directory, step, dest)
    return dest

  def restore_subtrees(self, step: int, abstract_subtrees: dict) -> dict:
    """Restores only the named top-level entries of 'state' (e.g. the parameters).

    Nothing else is read: no optimizer state is needed to load a trained model, so a loader
    builds no optimizer. `abstract_subtrees` maps entry names to abstract trees (with the
    shardings to restore onto).
    """
    args = ocp.args.PyTreeRestore(
        item=abstract_subtrees, partial_restore=True,
        restore_args=ocp.checkpoint_utils.construct_restore_args(abstract_subtrees))
    try:
      restored = self._mngr.restore(step, args=ocp.args.Composite(state=args))
    except Exception as e:  # pylint: disable=broad-except
      raise CheckpointError(
          f'Checkpoint {self.directory}/{step} cannot be restored into '
          f'{sorted(abstract_subtrees)} as its config.json describes them ({_reason(e)}).'
      ) from e
    return dict(restored['state'])

  def wait(self):
    self._mngr.wait_until_finished()

  def close(self):
    self._mngr.close()
