"""What every evaluation suite needs: the trained run(s), their data, batched model calls.

The run's own config, normalization and checkpoint are used (read from its workdir); data are
the run's dataset splits. Model calls are jitted and batched at a fixed batch size (the last
batch is padded), so evaluation compiles each function once.
"""

import dataclasses
import functools
import logging
import os

import jax
import numpy as np

from bds_jax import inference
from bds_jax.data.sources import SequenceSet
from bds_jax.data.windows import Windows
from bds_jax.train import behavior as behavior_trainer

log = logging.getLogger(__name__)

# Fields that must agree between the config given to evaluate.py and the run's config.
CHECKED_FIELDS = ('model.variant', 'model.width', 'model.regressor_widths',
                  'model.regressor_time_width', 'data.name', 'data.builder_config',
                  'data.seq_len', 'data.frame_lag')


def _get(config, dotted: str):
  for part in dotted.split('.'):
    config = config[part]
  return tuple(config) if isinstance(config, (list, tuple)) else config


def check_config(given, run_config, workdir: str):
  """Raises a ValueError listing every checked field where `given` differs from the run."""
  diffs = [f'{f}: given {_get(given, f)!r}, the run has {_get(run_config, f)!r}'
           for f in CHECKED_FIELDS if _get(given, f) != _get(run_config, f)]
  if diffs:
    raise ValueError(f'The --config does not match the run in {workdir} (see its config.json):\n  '
                     + '\n  '.join(diffs) +
                     '\nPass the config (and preset/overrides) the run was trained with.')


def batched(fn, arrays: tuple, batch_size: int):
  """Applies fn(*chunk) over the leading axis in fixed-size (padded) chunks; concatenates."""
  n = len(arrays[0])
  outs = []
  for i in range(0, n, batch_size):
    chunk = [a[i:i + batch_size] for a in arrays]
    m = len(chunk[0])
    if m < batch_size:  # pad so every call has the same shape (no recompiles)
      chunk = [np.concatenate([c, np.repeat(c[-1:], batch_size - m, axis=0)]) for c in chunk]
    out = jax.device_get(fn(*chunk))
    outs.append(jax.tree.map(lambda x, m=m: np.asarray(x)[:m], out))
  return jax.tree.map(lambda *xs: np.concatenate(xs), *outs)


@dataclasses.dataclass
class EvalContext:
  """A trained behavior run (and optional flow) with its test and train data."""
  name: str
  behavior: inference.BehaviorRun
  flow: inference.FlowRun | None
  train_seqs: SequenceSet
  test_seqs: SequenceSet
  train: Windows
  test: Windows
  batch_size: int

  @property
  def config(self):
    return self.behavior.config

  @property
  def normalizer(self):
    return self.behavior.normalizer

  @property
  def seq_len(self) -> int:
    return self.config.data.seq_len

  @property
  def frame_lag(self) -> int:
    return self.config.data.frame_lag

  def posterior(self, x):
    """x (N, seq_len, D) normalised -> (mu, logstd), each (N, Z)."""
    return batched(functools.partial(inference.posterior, self.behavior.model_def,
                                     self.behavior.params), (x,), self.batch_size)

  def decode(self, z, start, steps: int | None = None):
    """Codes (N, Z) from normalised start postures (N, D) -> (N, steps, D) normalised."""
    steps = steps or self.seq_len
    return batched(lambda z, s: inference.decode(self.behavior.model_def, self.behavior.params,
                                                 z, s, steps), (z, start), self.batch_size)

  def prior_codes(self, n: int, key, prior: str):
    """n codes from N(0, I) ('gaussian') or the flow ('flow'), drawn in batches."""
    from bds_jax.sampling import Sampler  # pylint: disable=g-import-not-at-top
    sampler = Sampler(self.behavior, self.flow)
    keys = jax.random.split(key, -(-n // self.batch_size))
    codes = [np.asarray(sampler.sample_codes(self.batch_size, k, prior)) for k in keys]
    return np.concatenate(codes)[:n]

  @property
  def priors(self) -> tuple[str, ...]:
    return ('gaussian', 'flow') if self.flow is not None else ('gaussian',)


def default_flow_dir(workdir: str, flow_workdir: str = '') -> str | None:
  if flow_workdir:
    return flow_workdir
  candidate = os.path.join(workdir, 'flow')
  return candidate if os.path.exists(os.path.join(candidate, 'config.json')) else None


def load(workdir: str, eval_config, flow_workdir: str = '', name: str = '') -> EvalContext:
  behavior = inference.load_behavior(workdir)
  flow = None
  flow_dir = default_flow_dir(workdir, flow_workdir)
  if flow_dir:
    flow, _ = inference.load_flow(flow_dir, behavior=behavior)
    log.info('Flow prior from %s (step %d).', flow_dir, flow.step)
  cfg = behavior.config
  train_seqs = behavior_trainer.load_split(cfg, cfg.data.train_split)
  test_seqs = behavior_trainer.load_split(cfg, cfg.data.eval_split)
  train = behavior_trainer.make_windows(cfg, train_seqs, behavior.normalizer)
  test = behavior_trainer.make_windows(cfg, test_seqs, behavior.normalizer)
  return EvalContext(name or cfg.model.variant, behavior, flow, train_seqs, test_seqs, train,
                     test, eval_config.batch_size)

