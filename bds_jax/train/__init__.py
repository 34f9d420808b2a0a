"""The trainers, one module per kind of model (bds_jax/kinds.py names them)."""

import importlib

from bds_jax import kinds


def trainer_module(name: str):
  """The trainer of the kind of model `name` (config.trainer), imported by the module name its
  descriptor gives (bds_jax/kinds.py): nothing below this package imports trainers."""
  return importlib.import_module(kinds.get(name).trainer)
