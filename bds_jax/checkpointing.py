"""orbax checkpoints of the whole training state plus the grain iterator position.

One place for checkpoint I/O, so moving to orbax's v1 API later is a one-file change. Saves are
atomic (orbax writes to a temporary directory and renames on commit) and asynchronous; restores
go against an abstract tree, so shapes and dtypes are checked and arrays land with the wanted
sharding.
"""

import os

import grain
import jax
import orbax.checkpoint as ocp


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
    except (ValueError, KeyError, TypeError) as e:
      raise ValueError(
          f'Checkpoint {self.directory}/{step} does not match the current configuration '
          f'(different model sizes or variant?). Use the config it was trained with (see '
          f'config.json beside it) or a new --workdir. Details: {e}') from e
    return restored['state'], dict(restored['meta'])

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
    except (ValueError, KeyError, TypeError) as e:
      raise ValueError(
          f'Checkpoint {self.directory}/{step} does not hold {sorted(abstract_subtrees)} in the '
          f'shapes its config.json describes (a different model, or an edited config.json?). '
          f'Details: {e}') from e
    return dict(restored['state'])

  def wait(self):
    self._mngr.wait_until_finished()

  def close(self):
    self._mngr.close()
