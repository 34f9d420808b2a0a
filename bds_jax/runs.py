"""A training run's directory as one object: its layout, its config and its trained models.

  run = runs.Run('runs/demo')          # what train.py wrote into --workdir
  behavior = run.load_behavior()       # the cVAE: graph, trained parameters, normalizer
  flow = run.load_flow()               # the flow prior in runs/demo/flow, over that cVAE
  diffusion = run.load_diffusion()     # the diffusion prior in runs/demo/diffusion
  labelled = run.load_diffusion(labelled=True)  # the class-conditioned one, diffusion_labels/
  sampler = run.sampler()              # all of them as a bds_jax.sampling.Sampler
  model = run.load()                   # whatever a run holds, by its kind (bds_jax.kinds)

The directory's layout (its file and folder names, and what each holds) is
`bds_jax.run_layout`; `Run` turns those names into paths.

Reading a run needs no `configs/` module: config.json is read as stored, and fields added to
the configs after a run was written get the value such runs used (their kind's
`added_fields`, `bds_jax.kinds`). Loading a model builds its graph from the config
(`bds_jax.models.build`) and restores only the parameters from the checkpoint; no optimizer
is built.

Paths recorded in config.json are absolute paths of the machine that trained the run. To use a
run elsewhere, `Run(path, data_dir=...)` reads the dataset from another TFDS data dir (the flow
run and its behavior run alike), and a flow run's relative `behavior_workdir` is resolved
against the flow run's own folder.
"""

import functools
import json
import logging
import os

import jax
import ml_collections

from bds_jax import checkpointing
from bds_jax import errors
from bds_jax import kinds
from bds_jax import run_layout
from bds_jax import run_lock
from bds_jax import sharding
from bds_jax.data.normalization import Normalizer
from bds_jax.models import appearance_losses
from bds_jax.models import build
from bds_jax.sampling import Sampler
from bds_jax.trained import Appearance  # re-exported: runs.Appearance, ...
from bds_jax.trained import Behavior
from bds_jax.trained import Diffusion
from bds_jax.trained import Flow

log = logging.getLogger(__name__)


def _tuples(value):
  """JSON lists back to the tuples the configs use."""
  if isinstance(value, dict):
    return {k: _tuples(v) for k, v in value.items()}
  if isinstance(value, list):
    return tuple(_tuples(v) for v in value)
  return value


def read_config(path: str, expect_trainer: str | None = None) -> ml_collections.ConfigDict:
  """The config stored in a run directory's config.json, with the fields its kind added
  since older runs (`kinds.Kind.added_fields`) filled in."""
  file = os.path.join(path, run_layout.CONFIG_FILE)
  if not os.path.exists(file):
    raise FileNotFoundError(f'{file} does not exist: {path} is not a bds_jax training run '
                            '(train.py writes config.json into its --workdir).')
  with open(file) as f:
    try:
      stored = json.load(f)
    except json.JSONDecodeError as e:
      raise errors.InputError(f'{file} is not valid JSON ({e}): the run directory is damaged; '
                              'restore config.json from a backup or train again.') from None
  if not isinstance(stored, dict):
    raise errors.InputError(f'{file} does not hold a config (a JSON object).')
  trainer = stored.get('trainer')
  if expect_trainer and trainer != expect_trainer:
    raise errors.InputError(f'{path} holds a {trainer!r} run, not a {expect_trainer!r} run.')
  if not isinstance(trainer, str) or trainer not in kinds.KINDS:
    raise errors.InputError(f'{file}: unknown trainer {trainer!r}; expected one of '
                            f'{kinds.names()}.')
  config = ml_collections.ConfigDict(_tuples(stored))
  for dotted, value in kinds.get(trainer).added_fields.items():
    *parents, leaf = dotted.split('.')
    node = config
    for p in parents:
      if p not in node:
        node[p] = ml_collections.ConfigDict()
      node = node[p]
    if leaf not in node:
      node[leaf] = value
  return config


def absolute_paths(config, fields):
  """A copy of config whose (dotted) path fields are absolute.

  Runs record their config in config.json and later stages (the flow, evaluation) read it from
  wherever they run; a relative data_dir would then point somewhere else.
  """
  config = config.copy_and_resolve_references()
  for field in fields:
    *parents, leaf = field.split('.')
    node = config
    for p in parents:
      node = node[p]
    if node[leaf]:
      node[leaf] = os.path.abspath(os.path.expanduser(node[leaf]))
  return config


def _replicated(abstract):
  """Abstract arrays placed replicated on a mesh of every device (what the steps expect)."""
  repl = sharding.replicated(sharding.make_mesh())
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=repl), abstract)


class Run:
  """A run directory (train.py's --workdir); see the module docstring for its layout.

  Args:
    path: the directory.
    data_dir: if given, the TFDS data dir to read the run's dataset from, instead of the one
      recorded in its config.json.
  """

  def __init__(self, path: str, data_dir: str | None = None):
    self.path = os.path.abspath(path)
    self.data_dir = os.path.abspath(data_dir) if data_dir else None

  def __repr__(self):
    return f'Run({self.path!r})'

  # ------------------------------------------------------------------------------ layout
  @property
  def config_path(self) -> str:
    return os.path.join(self.path, run_layout.CONFIG_FILE)

  @property
  def normalization_path(self) -> str:
    return os.path.join(self.path, run_layout.NORMALIZATION_FILE)

  @property
  def checkpoint_dir(self) -> str:
    return os.path.join(self.path, run_layout.CHECKPOINT_DIR)

  @property
  def flow_dir(self) -> str:
    return os.path.join(self.path, run_layout.FLOW_DIR)

  @property
  def diffusion_dir(self) -> str:
    return os.path.join(self.path, run_layout.DIFFUSION_DIR)

  @property
  def diffusion_labels_dir(self) -> str:
    return os.path.join(self.path, run_layout.DIFFUSION_LABELS_DIR)

  @property
  def eval_dir(self) -> str:
    return os.path.join(self.path, run_layout.EVAL_DIR)

  @property
  def final_metrics_path(self) -> str:
    return os.path.join(self.path, run_layout.FINAL_METRICS_FILE)

  def exists(self) -> bool:
    return os.path.exists(self.config_path)

  def create(self) -> 'Run':
    """Makes the directory (for training into it); returns self."""
    os.makedirs(self.path, exist_ok=True)
    return self

  # ------------------------------------------------------------------------------ config
  @functools.cached_property
  def config(self) -> ml_collections.ConfigDict:
    config = read_config(self.path)
    if self.data_dir:
      config.data.data_dir = self.data_dir
    return config

  @property
  def trainer(self) -> str:
    return self.config.trainer

  @property
  def kind(self) -> kinds.Kind:
    """The descriptor of this run's kind of model (`bds_jax.kinds`)."""
    return kinds.get(self.trainer, self.config_path)

  def write_config(self, config):
    """Writes config.json atomically (process 0 only)."""
    if jax.process_index() == 0:
      with open(self.config_path + '.tmp', 'w') as f:
        f.write(config.to_json_best_effort(indent=2))
      os.replace(self.config_path + '.tmp', self.config_path)
    self.__dict__.pop('config', None)

  # ------------------------------------------------------------------------------ data
  def normalizer(self) -> Normalizer:
    return Normalizer.load(self.normalization_path)

  def load_or_fit_normalizer(self, poses) -> Normalizer:
    """The run's normalization; fitted on `poses` and saved (process 0) if not written yet."""
    if os.path.exists(self.normalization_path):
      return self.normalizer()
    normalizer = Normalizer.fit(poses)
    if jax.process_index() == 0:
      normalizer.save(self.normalization_path)
    return normalizer

  def load_or_compute_adversary_chance(self, keypoints) -> float:
    """The appearance adversary's chance level on the training `keypoints` (N, J, 2) in
    [0, 1]: read from the run, or computed and stored (process 0) on its first start, so a
    resumed run keeps the clamp it was trained with."""
    path = os.path.join(self.path, run_layout.ADVERSARY_CHANCE_FILE)
    if os.path.exists(path):
      try:
        with open(path) as f:
          return float(json.load(f)['chance'])
      except (ValueError, KeyError, TypeError) as e:
        raise errors.InputError(f'{path} is damaged ({e}); delete it to recompute it from the '
                              'training keypoints.') from None
    chance = round(appearance_losses.chance_keypoint_l2(keypoints), 6)
    if jax.process_index() == 0:
      with open(path + '.tmp', 'w') as f:
        json.dump({'chance': chance, 'frames': int(len(keypoints)),
                   'what': 'keypoint_l2 of predicting the mean training pose for every frame'},
                  f, indent=2)
      os.replace(path + '.tmp', path)
    return chance

  # ------------------------------------------------------------------------------ checkpoints
  def checkpointer(self, keep: int = 3, create: bool = True) -> checkpointing.Checkpointer:
    return checkpointing.Checkpointer(self.checkpoint_dir, keep, create=create)

  def _restore(self, step: int | None, abstract: dict) -> tuple[dict, int]:
    """`abstract`'s entries at `step`; at step None, from the newest checkpoint that restores
    (a damaged newer one is reported, and left where it is: readers move nothing)."""
    run_lock.check_no_writer(self.path)
    ckpt = self.checkpointer(create=False)
    try:
      if step is None:
        restored = ckpt.restore_latest(lambda s: ckpt.restore_subtrees(s, _replicated(abstract)))
        if restored is None:
          raise FileNotFoundError(f'{self.checkpoint_dir} holds no checkpoint yet.')
        log.info('Loaded step %d of %s.', restored[1], self.path)
        return restored
      if step not in ckpt.all_steps():
        raise FileNotFoundError(f'{self.checkpoint_dir} has no step {step}; it has '
                                f'{ckpt.all_steps()}.')
      return ckpt.restore_subtrees(step, _replicated(abstract)), step
    finally:
      ckpt.close()

  # ------------------------------------------------------------------------------ models
  def load(self, step: int | None = None):
    """The trained model this run holds at `step` (default: the latest), loaded by its kind's
    loader (`kinds.Kind.loader`): a Behavior, Flow, Diffusion or Appearance."""
    kind = self.kind
    if kind.loader is None:
      raise ValueError(f'{self.path} holds a {kind.name!r} run, which has no loader (its '
                       'Kind names none).')
    return getattr(self, kind.loader)(step)

  def _require(self, name: str):
    # A loader is its kind's own: it names that kind (the one name test each loader makes).
    if self.trainer != name:
      article = 'an' if name[:1] in 'aeiou' else 'a'
      raise ValueError(f'{self.path} holds a {self.trainer!r} run, not {article} {name!r} run.')

  def _stores_priors(self, name: str) -> bool:
    """Whether priors of kind `name` are trained over runs of this one's kind (and so live
    in its folder: flow/, diffusion/)."""
    return self.trainer == kinds.get(name).trained_over

  def load_behavior(self, step: int | None = None) -> Behavior:
    """The behavior model of this (behavior) run at `step` (default: the latest)."""
    self._require('behavior')
    normalizer = self.normalizer()
    model_def, abstract = build.abstract_behavior(self.config, normalizer)
    restored, step = self._restore(step, {'vae': abstract})
    return Behavior(self, step, model_def, restored['vae'], normalizer)

  def load_appearance(self, step: int | None = None) -> Appearance:
    """The appearance model of this (appearance) run at `step` (default: the latest)."""
    self._require('appearance')
    model_def, params, reg_def, reg_params = build.abstract_appearance(self.config)
    restored, step = self._restore(step, {'params': params, 'reg': reg_params})
    return Appearance(self, step, model_def, restored['params'], reg_def, restored['reg'])

  def flow_run(self) -> 'Run | None':
    """The flow run in this behavior run's flow/ folder, or None."""
    run = Run(self.flow_dir, self.data_dir)
    return run if run.exists() else None

  def diffusion_run(self, labelled: bool = False) -> 'Run | None':
    """The diffusion run in this behavior run's diffusion/ folder (labelled:
    diffusion_labels/), or None."""
    run = Run(self.diffusion_labels_dir if labelled else self.diffusion_dir, self.data_dir)
    return run if run.exists() else None

  def behavior_run(self) -> 'Run':
    """The behavior run a prior (flow, diffusion) was trained over (its behavior_workdir)."""
    config = self.config
    if self.kind.trained_over is None:
      over = sorted(k.name for k in kinds.KINDS.values() if k.trained_over)
      raise ValueError(f'{self.path} holds a {config.trainer!r} run, not a run trained over '
                       f'another ({" or ".join(over)}).')
    if not config.behavior_workdir:
      raise ValueError(f'{self.config_path} names no behavior_workdir.')
    run = Run(os.path.join(self.path, config.behavior_workdir),
              self.data_dir or config.data.data_dir or None)
    if not run.exists():
      raise FileNotFoundError(
          f'{self.path} is a {config.trainer} run over the behavior run {run.path}, which holds '
          f'no run ({run.config_path} is missing); restore that run or retrain this one.')
    return run

  def _behavior_of_prior(self) -> Behavior:
    """The behavior model a prior run was trained over, at its recorded behavior_step."""
    behavior_step = None if self.config.behavior_step < 0 else self.config.behavior_step
    return self.behavior_run().load_behavior(behavior_step)

  def load_flow(self, step: int | None = None, behavior: Behavior | None = None) -> Flow:
    """The flow prior of this run at `step` (default: the latest).

    On a flow run, its behavior model is loaded from behavior_workdir (at the recorded
    behavior_step) unless `behavior` is given. On a behavior run, the flow in its flow/ folder
    is loaded over this run's behavior model.
    """
    if self._stores_priors('flow'):
      flow_run = self.flow_run()
      if flow_run is None:
        raise FileNotFoundError(f'{self.flow_dir} holds no flow run (train one with '
                                'configs/flow.py).')
      return flow_run.load_flow(step, behavior or self.load_behavior())
    self._require('flow')
    config = self.config
    behavior = behavior or self._behavior_of_prior()
    flow_def, params, buffers = build.abstract_flow(config, behavior.config.model.width)
    restored, step = self._restore(step, {'params': params, 'buffers': buffers})
    return Flow(self, step, flow_def, restored['params'], restored['buffers'], behavior)

  def load_diffusion(self, step: int | None = None, behavior: Behavior | None = None,
                     labelled: bool = False) -> Diffusion:
    """The diffusion prior of this run at `step` (default: the latest), as `load_flow`: on a
    diffusion run over its behavior_workdir's model, on a behavior run from its diffusion/
    (labelled: diffusion_labels/)."""
    if self._stores_priors('diffusion'):
      run = self.diffusion_run(labelled)
      if run is None:
        where = self.diffusion_labels_dir if labelled else self.diffusion_dir
        flags = ' --config.model.use_labels=True' if labelled else ''
        raise FileNotFoundError(f'{where} holds no diffusion run (train one with '
                                f'configs/diffusion.py{flags}).')
      return run.load_diffusion(step, behavior or self.load_behavior())
    self._require('diffusion')
    config = self.config
    behavior = behavior or self._behavior_of_prior()
    frame = build.behavior_frame(behavior.config, behavior.normalizer)
    prior_def, params, stats = build.abstract_diffusion(config, behavior.config.model.width,
                                                        frame)
    restored, step = self._restore(step, {'params': {'observation': params['observation']},
                                          'ema': params['denoiser'], 'stats': stats})
    return Diffusion(self, step, prior_def,
                     {'observation': restored['params']['observation'],
                      'denoiser': restored['ema']}, restored['stats'], behavior)

  def sampler(self, step: int | None = None) -> Sampler:
    """A Sampler of this run's behavior model, with its flow and diffusion priors when there
    are (a flow or diffusion run: with that prior)."""
    if self.kind.trained_over:  # a prior: its own sampler, over its behavior model
      return self.load(step).sampler()
    behavior = self.load_behavior(step)
    flow = self.load_flow(behavior=behavior) if self.flow_run() else None
    diffusion = self.load_diffusion(behavior=behavior) if self.diffusion_run() else None
    return behavior.sampler(flow, diffusion)
