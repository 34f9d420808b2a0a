"""Loading trained runs (config, normalization, parameters) for sampling, evaluation and figures."""

import dataclasses
import functools
import importlib
import json
import os
from typing import Any

import jax
import ml_collections
from flax import nnx

from bds_jax import checkpointing
from bds_jax.data.normalization import Normalizer

CONFIG_FILE = 'config.json'
# Config module of each trainer: its defaults fill fields a run's config.json predates.
CONFIG_MODULES = {'behavior': 'configs.behavior', 'flow': 'configs.flow'}


def _merge(defaults: ml_collections.ConfigDict, stored: dict):
  """Overwrites defaults with a run's stored values (recursively, keeping tuples tuples)."""
  with defaults.unlocked(), defaults.ignore_type():
    for key, value in stored.items():
      current = defaults.get(key)
      if isinstance(current, ml_collections.ConfigDict) and isinstance(value, dict):
        _merge(current, value)
      else:
        defaults[key] = tuple(value) if isinstance(current, tuple) else value


def read_config(workdir: str, expect_trainer: str | None = None) -> ml_collections.ConfigDict:
  """The config a run was trained with (its workdir/config.json).

  Stored values are laid over the current defaults of the run's trainer, so a run written
  before a config field existed reads that field's default.
  """
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.exists(path):
    raise FileNotFoundError(f'{path} does not exist: {workdir} is not a bds_jax training run '
                            '(train.py writes config.json into its --workdir).')
  with open(path) as f:
    stored = json.load(f)
  trainer = stored.get('trainer')
  if expect_trainer and trainer != expect_trainer:
    raise ValueError(f'{workdir} holds a {trainer!r} run, not a {expect_trainer!r} run.')
  if trainer not in CONFIG_MODULES:
    raise ValueError(f'{path}: unknown trainer {trainer!r}.')
  config = importlib.import_module(CONFIG_MODULES[trainer]).get_config()
  _merge(config, stored)
  return config


def restore_state(workdir: str, abstract_state, step: int | None = None):
  """Restores the train state saved in workdir/checkpoints (latest step by default)."""
  ckpt = checkpointing.Checkpointer(os.path.join(workdir, 'checkpoints'), create=False)
  try:
    step = ckpt.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f'{workdir}/checkpoints holds no checkpoint yet.')
    if step not in ckpt.all_steps():
      raise FileNotFoundError(f'{workdir}/checkpoints has no step {step}; it has '
                              f'{ckpt.all_steps()}.')
    state, _ = ckpt.restore(step, checkpointing.abstract_like(abstract_state))
    return state, step
  finally:
    ckpt.close()


@functools.partial(jax.jit, static_argnums=(0,))
def posterior(model_def, params, x):
  """(mu, logstd) of normalised sequences x (B, T, D) under a behavior model's parameters."""
  return nnx.merge(model_def, params).posterior(x)


@functools.partial(jax.jit, static_argnums=(0, 4))
def decode(model_def, params, z, start, steps: int):
  """Normalised re-enactment (B, steps, D) of codes z (B, Z) from start postures (B, D)."""
  return nnx.merge(model_def, params).decode(z, start, steps)


@dataclasses.dataclass
class BehaviorRun:
  """A trained behavior model: `model()` gives the nnx module with the trained parameters."""
  workdir: str
  step: int
  config: ml_collections.ConfigDict
  normalizer: Normalizer
  model_def: Any
  params: dict
  state: dict

  def model(self):
    return nnx.merge(self.model_def, self.params)


def load_behavior(workdir: str, step: int | None = None) -> BehaviorRun:
  from bds_jax.train import behavior_step  # pylint: disable=g-import-not-at-top
  workdir = os.path.abspath(workdir)
  config = read_config(workdir, 'behavior')
  normalizer = Normalizer.load(os.path.join(workdir, 'normalization.json'))
  setup, template = behavior_step.build(config, steps_per_epoch=1)
  state, step = restore_state(workdir, jax.device_put(template), step)
  return BehaviorRun(workdir, step, config, normalizer, setup.model_def, state['vae'], state)


@dataclasses.dataclass
class FlowRun:
  """A trained flow prior over a behavior run's codes."""
  workdir: str
  step: int
  config: ml_collections.ConfigDict
  flow_def: Any
  params: dict
  buffers: dict

  def flow(self):
    return nnx.merge(self.flow_def, self.params, self.buffers)


def load_flow(workdir: str, behavior: BehaviorRun | None = None,
              step: int | None = None) -> tuple[FlowRun, BehaviorRun]:
  """Loads a flow run and (unless given) the behavior run it was trained on."""
  from bds_jax.train import flow_step  # pylint: disable=g-import-not-at-top
  workdir = os.path.abspath(workdir)
  config = read_config(workdir, 'flow')
  if behavior is None:
    behavior = load_behavior(config.behavior_workdir,
                             None if config.behavior_step < 0 else config.behavior_step)
  setup, template = flow_step.build(config, behavior.config.model.width, behavior.model_def)
  state, step = restore_state(workdir, jax.device_put(template), step)
  return FlowRun(workdir, step, config, setup.flow_def, state['params'],
                 state['buffers']), behavior
