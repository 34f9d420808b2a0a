"""What an evaluator sees: the model under evaluation, its data, batched model calls.

One Context for every kind of run. evaluate.py builds one from a trained run: `load` for a
behavior run (its config, normalization and checkpoint, its dataset splits, and its priors),
`load_appearance` for an appearance run (its model and adversary, and its image splits). A
trainer builds one
from its current state and adds what only training has: named step functions (`fns`), fixed
evaluation sets (`data`) and the run directory for figures (`workdir`); `at(state, step)` gives
the Context of one evaluation. Model calls are jitted and batched at a fixed batch size (the
last batch padded) and sharded over the mesh's data axis, so each function compiles once.
"""

import copy
import logging
from typing import Any, Callable

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from bds_jax import runs
from bds_jax import sampling
from bds_jax import sharding
from bds_jax.data import assembly
from bds_jax.data import images
from bds_jax.data.normalization import Normalizer
from bds_jax.data.windows import Windows

log = logging.getLogger(__name__)


class Context:
  """The `ctx` of every evaluator's `run(ctx, **kwargs)`.

  Attributes:
    name: the run's name in reports.
    config: the behavior run's config (dataset, window length, model variant).
    normalizer: the behavior run's normalization.
    train, test: the train and evaluation splits (None where not needed): windows for a
      behavior run, `bds_jax.data.images.ImageSet`s for an appearance run.
    batch_size: the global batch of batched model calls (divisible by the device count).
    data_sharding: batches are sharded with it (None: the default device).
    workdir: the run directory (figures go below it).
    step, state: the train step and state being evaluated (training only).
    fns: named functions fn(state, batch, index) of the trainer (training only); `outputs`
      runs them over a named fixed set in `data`.
    behavior, flow, diffusion: the loaded runs.Behavior, runs.Flow and runs.Diffusion
      (evaluate.py only), for reports.
    appearance: the appearance model and adversary (a runs.Appearance): evaluate.py's loaded
      one, or, while training, the one of the state being evaluated.
  """

  def __init__(self, name: str, config, normalizer: Normalizer, train: Windows | None,
               test: Windows | None, batch_size: int, data_sharding: NamedSharding | None = None,
               *, sampler: sampling.Sampler | None = None,
               make_sampler: Callable[[Any], sampling.Sampler] | None = None, workdir: str = '',
               fns: dict | None = None, data: dict | None = None,
               appearance: runs.Appearance | None = None,
               make_appearance: Callable[[Any], runs.Appearance] | None = None):
    if data_sharding is not None:
      sharding.per_process_batch_size(batch_size, 'batch_size')
    self.name = name
    self.config = config
    self.normalizer = normalizer
    self.train = train
    self.test = test
    self.batch_size = int(batch_size)
    self.data_sharding = data_sharding
    self.workdir = workdir
    self.fns = dict(fns or {})
    self.data = dict(data or {})
    self.step = 0
    self.state = None
    self.behavior = self.flow = self.diffusion = None
    self._sampler = sampler
    self._make_sampler = make_sampler
    self._appearance = appearance
    self._make_appearance = make_appearance
    self._outputs = {}

  def at(self, state, step: int) -> 'Context':
    """This Context evaluating `state` after `step` updates (fresh caches)."""
    ctx = copy.copy(self)
    ctx.state, ctx.step, ctx._outputs = state, int(step), {}
    if self._make_sampler is not None:
      ctx._sampler = None
    if self._make_appearance is not None:
      ctx._appearance = None
    return ctx

  # ------------------------------------------------------------------------------ the run
  @property
  def sampler(self) -> sampling.Sampler:
    """The behavior model (and flow): while training, a host-local copy of the state's."""
    if self._sampler is None:
      if self._make_sampler is None:
        raise ValueError('This evaluation context has no model to sample from.')
      self._sampler = self._make_sampler(self.state)
    return self._sampler

  @property
  def appearance(self) -> runs.Appearance:
    """The appearance model and adversary: while training, those of the state's parameters."""
    if self._appearance is None:
      if self._make_appearance is None:
        raise ValueError('This evaluation context has no appearance model.')
      self._appearance = self._make_appearance(self.state)
    return self._appearance

  @property
  def seq_len(self) -> int:
    return self.config.data.seq_len

  @property
  def frame_lag(self) -> int:
    return self.config.data.frame_lag

  @property
  def train_seqs(self):
    return self.train.seqs

  @property
  def test_seqs(self):
    return self.test.seqs

  @property
  def priors(self) -> tuple[str, ...]:
    return ('gaussian', 'flow') if self.sampler.has_flow else ('gaussian',)

  # ------------------------------------------------------------------------------ model calls
  @property
  def _call_sharding(self):
    # While training, the sampler is a host-local copy on this process's default device, so
    # its calls take unsharded batches there; evaluate.py's sampler lives on the mesh.
    return None if self._make_sampler is not None else self.data_sharding

  def posterior(self, x):
    """x (N, seq_len, D) normalised -> (mu, logstd), each (N, Z)."""
    s = self.sampler
    return sharding.batched(lambda x: sampling.posterior(s.model_def, s.params, x), (x,),
                            self.batch_size, self._call_sharding)

  def decode(self, z, start, steps: int | None = None):
    """Codes (N, Z) from normalised start postures (N, D) -> (N, steps, D) normalised."""
    s, steps = self.sampler, steps or self.seq_len
    return sharding.batched(lambda z, st: sampling.decode(s.model_def, s.params, z, st, steps),
                            (z, start), self.batch_size, self._call_sharding)

  def prior_codes(self, n: int, key, prior: str):
    """n codes from N(0, I) ('gaussian') or the flow ('flow'), drawn in batches."""
    keys = jax.random.split(key, -(-n // self.batch_size))
    codes = [jax.device_get(self.sampler.sample_codes(self.batch_size, k, prior)) for k in keys]
    return np.concatenate(codes)[:n]

  def outputs(self, fn: str, data: str, inputs=('poses',)) -> list:
    """Host outputs of the trainer's fns[fn](state, batch, index) on each batch of data[data].

    Cached per evaluation, so evaluators sharing a function run it once.
    """
    cache_key = (fn, data, tuple(inputs))
    if cache_key not in self._outputs:
      if fn not in self.fns or data not in self.data:
        raise ValueError(f'No step function {fn!r} (have {sorted(self.fns)}) or evaluation set '
                         f'{data!r} (have {sorted(self.data)}) in this training run.')
      arrays = {k: self.data[data][k] for k in inputs}
      index_sharding = (NamedSharding(self.data_sharding.mesh, P())
                        if self.data_sharding is not None else None)
      outs = []
      with jax.transfer_guard('disallow'):
        for i, (batch, _) in enumerate(sharding.device_batches(arrays, self.batch_size,
                                                               self.data_sharding)):
          index = jax.device_put(np.int32(i), index_sharding)
          outs.append(sharding.to_host(self.fns[fn](self.state, batch, index)))
      self._outputs[cache_key] = outs
    return self._outputs[cache_key]


def default_flow_dir(workdir: str, flow_workdir: str = '') -> str | None:
  if flow_workdir:
    return flow_workdir
  flow = runs.Run(workdir).flow_run()
  return flow.path if flow else None


def load(workdir: str, eval_config, flow_workdir: str = '', name: str = '') -> Context:
  """The Context of a trained behavior run (and its flow), on the run's own data.

  `eval_config.data_dir`, when set, is where the run's dataset is read from instead of the
  data dir recorded in its config.json.
  """
  data_dir = eval_config.get('data_dir') or None
  run = runs.Run(workdir, data_dir)
  behavior = run.load_behavior()
  flow = None
  flow_dir = default_flow_dir(workdir, flow_workdir)
  if flow_dir:
    flow = runs.Run(flow_dir, data_dir).load_flow(behavior=behavior)
    log.info('Flow prior from %s (step %d).', flow_dir, flow.step)
  diffusion = None
  if run.diffusion_run() is not None:  # <workdir>/diffusion: the hmp suite adds its row
    diffusion = run.load_diffusion(behavior=behavior)
    log.info('Diffusion prior from %s (step %d).', diffusion.run.path, diffusion.step)
  cfg = behavior.config
  train = assembly.load_windows(cfg.data, cfg.data.train_split, behavior.normalizer)
  test = assembly.load_windows(cfg.data, cfg.data.eval_split, behavior.normalizer)
  ctx = Context(name or cfg.model.variant, cfg, behavior.normalizer, train, test,
                eval_config.batch_size, sharding.batch_sharding(sharding.make_mesh()),
                sampler=behavior.sampler(flow, diffusion), workdir=run.path)
  ctx.behavior, ctx.flow, ctx.diffusion = behavior, flow, diffusion
  return ctx


def load_appearance(workdir: str, eval_config, name: str = '') -> Context:
  """The Context of a trained appearance run on its own image data (`eval_config.data_dir`,
  when set, is where the dataset is read from instead of its config.json's data dir)."""
  run = runs.Run(workdir, eval_config.get('data_dir') or None)
  loaded = run.load_appearance()
  d = run.config.data
  ctx = Context(name or run.config.preset or 'appearance', run.config, None,
                images.load_split(d, d.train_split, **images.model_inputs(run.config.model)),
                images.load_split(d, d.eval_split, **images.model_inputs(run.config.model)),
                eval_config.appearance.batch_size, sharding.batch_sharding(sharding.make_mesh()),
                workdir=run.path, appearance=loaded)
  ctx.step = int(loaded.step)
  return ctx
