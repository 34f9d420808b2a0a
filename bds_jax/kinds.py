"""The kinds of trained model (config.trainer): one descriptor each, in one registry.

  kind = kinds.get(run.config.trainer)   # unknown names: an error naming the known kinds
  kind.trainer            # 'bds_jax.train.flow': the module train.py imports by name
  kind.safe_to_change     # fields a resumed run may change (bds_jax.run_config)
  kind.added_fields       # fields older runs' config.json lacks -> the value they used
  kind.checked_fields     # fields evaluate.py's --config must share with the run

Every decision that depends on a run's kind is a lookup here: train.py's dispatch, reading a
stored config (`runs.read_config`), what may change on resume (`run_config`), loading the
trained model (`runs.Run.load`), and what evaluate.py does with it (`evaluation.runner`).
A new kind is its model, step, trainer and config files plus one `Kind` row in `KINDS`
(docs/architecture.md, "A new model kind"); `register` adds one from outside the package.

This module imports nothing heavy (no JAX), so that the entry points can read a kind before
JAX starts a backend, and nothing of `bds_jax.train`: trainers are named, not imported.
"""

import dataclasses
import types
from typing import Mapping

from bds_jax import errors

# Fields every kind may change on resume: how long training goes and how often it logs,
# evaluates and checkpoints. None changes the model, the data or the optimisation, as no
# schedule runs over num_steps: the behavior LR steps at epoch milestones, the flow's is
# constant, the diffusion phases and LR decays come at fixed steps, and the appearance LR
# decays over the steps the run was created with (its config.json; train/appearance.py).
LOOP = ('num_steps', 'num_epochs', 'log_every_steps', 'eval_every_steps', 'eval_batches',
        'checkpoint_every_steps', 'keep_checkpoints', 'progress_bar', 'evals',
        'gif_every_steps', 'final_gif')


@dataclasses.dataclass(frozen=True)
class Kind:
  """What the code needs to know about one kind of trained model.

  Attributes:
    name: its config.trainer, also the name of its config file (configs/<name>.py).
    trainer: the dotted module with `train_and_evaluate(config, workdir)`; train.py imports
      it by name (the package never imports trainers).
    loader: the name of the `runs.Run` method that loads its trained model (graph from
      `models/build.py`, parameters from the checkpoint); `Run.load` calls it. None: nothing
      reads its runs but its own trainer.
    safe_to_change: config fields (dotted; a prefix covers the fields below it) a resumed run
      may change; every other field must equal the run's config.json.
    added_fields: fields added to its config after runs were written -> the value those runs
      used, filled in when an older config.json is read. A changed default needs no entry:
      config.json stores every field.
    checked_fields: fields that must agree between the config given to evaluate.py and the
      run's (besides the trainer).
    trained_over: the kind of the run its config.behavior_workdir names (a prior over that
      model's codes), or None for a kind trained on its own.
    eval_context: which evaluate.py context loads it (`evaluation.runner.CONTEXTS`); None: not
      evaluated alone (a prior is evaluated with the run it was trained over).
    eval_suites: the evaluate.py suites of its runs (`suites='all'` runs those the eval
      config has a section for).
    eigen_convolutions: convolution-heavy: the entry points ask for XLA:CPU's own convolution
      kernels (`bds_jax.xla_cpu`) before JAX starts.
  """
  name: str
  trainer: str
  loader: str | None = None
  safe_to_change: tuple[str, ...] = LOOP
  added_fields: Mapping[str, object] = dataclasses.field(default_factory=dict)
  checked_fields: tuple[str, ...] = ()
  trained_over: str | None = None
  eval_context: str | None = None
  eval_suites: tuple[str, ...] = ()
  eigen_convolutions: bool = False

  def __post_init__(self):  # read-only, so that a row cannot be changed by whoever reads it
    object.__setattr__(self, 'added_fields', types.MappingProxyType(dict(self.added_fields)))

  def is_safe_to_change(self, field: str) -> bool:
    return any(field == p or field.startswith(p + '.') for p in self.safe_to_change)


KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind('behavior', trainer='bds_jax.train.behavior', loader='load_behavior',
         safe_to_change=LOOP + ('gif_examples', 'data.data_dir', 'data.manual_dir',
                                'data.prepare', 'data.num_threads', 'data.prefetch'),
         added_fields={'model.compute_dtype': 'float32', 'model.frame': 'world',
                       'model.body_xy_scale': 0.3, 'loss.recon_space': 'world',
                       'loss.adversary_space': 'world', 'model.encoder_input': 'poses'},
         checked_fields=('model.variant', 'model.width', 'model.frame', 'model.encoder_input',
                         'model.regressor_widths',
                         'model.regressor_time_width', 'data.name', 'data.builder_config',
                         'data.seq_len', 'data.frame_lag'),
         eval_context='behavior',
         eval_suites=('transfer', 'realism', 'diversity', 'hmp', 'gt_transfer', 'guidance')),
    Kind('flow', trainer='bds_jax.train.flow', loader='load_flow',
         safe_to_change=LOOP + ('ks_alpha', 'sample_loop_behaviors', 'video_format',
                                'data.data_dir', 'data.num_threads', 'data.prefetch'),
         added_fields={'flow.compute_dtype': 'float32'},
         trained_over='behavior'),
    Kind('diffusion', trainer='bds_jax.train.diffusion', loader='load_diffusion',
         safe_to_change=LOOP + ('eval_samples', 'data.data_dir', 'data.num_threads',
                                'data.prefetch'),
         trained_over='behavior'),
    Kind('appearance', trainer='bds_jax.train.appearance', loader='load_appearance',
         safe_to_change=LOOP + ('figure_every_steps', 'figure_examples', 'data.data_dir',
                                'data.manual_dir', 'data.prepare', 'data.num_threads',
                                'data.prefetch'),
         added_fields={'data.manual_dir': '', 'model.sigmoid_logstd': True,
                       'model.logstd_range': (0.0, 1.0), 'loss.person_weight': 1.0,
                       'loss.gan_weight': 0.0, 'loss.feature_matching_weight': 0.0,
                       'model.disc_channels': 32, 'model.disc_layers': 3,
                       'optim.disc_lr': 2e-4, 'optim.disc_b1': 0.5, 'optim.disc_b2': 0.999,
                       'data.crop_geometry': 'ours', 'model.part_warp': False,
                       'model.part_blend': False, 'data.mask_room': False,
                       'model.room_branch': False, 'model.room_scene': False},
         checked_fields=('model.image_size', 'model.bottleneck_factor', 'model.nf_start',
                         'model.nf_max', 'model.n_latent_scales', 'model.num_keypoints',
                         'data.name', 'data.builder_config', 'data.inplane_normalize',
                         'data.box_factor', 'model.part_warp', 'model.part_blend',
                         'data.mask_room', 'model.room_branch', 'model.room_scene'),
         eval_context='appearance', eval_suites=('appearance',), eigen_convolutions=True),
)}


def register(kind: Kind) -> Kind:
  """Adds a kind defined outside the package (a kind of the package is a row of KINDS)."""
  if kind.name in KINDS:
    raise ValueError(f'A kind of model named {kind.name!r} is registered already.')
  KINDS[kind.name] = kind
  return kind


def names() -> list[str]:
  return sorted(KINDS)


def get(name, where: str = 'config.trainer') -> Kind:
  """The kind named `name`; a ConfigError naming the known kinds if there is none (`where`
  says where the name came from)."""
  kind = KINDS.get(name) if isinstance(name, str) else None
  if kind is None:
    raise errors.ConfigError(f'{where}: unknown kind of model {name!r}; the known kinds are '
                             f'{names()}.')
  return kind


def eigen_convolutions(name) -> bool:
  """Whether the entry points should set up XLA:CPU for a run of `name` (False for a name
  that is no kind: the entry point reports that itself)."""
  kind = KINDS.get(name) if isinstance(name, str) else None
  return bool(kind and kind.eigen_convolutions)


def _get_field(config, dotted: str):
  for part in dotted.split('.'):
    config = config[part]
  return tuple(config) if isinstance(config, (list, tuple)) else config


def check_given_config(given, run_config, workdir: str):
  """Raises ConfigError unless `given` (evaluate.py's --config) is a config of the run's kind
  that agrees with the run's config on every checked field (all differences listed)."""
  kind = get(run_config.get('trainer'), f'{workdir} (its config.json)')
  if given.get('trainer') != kind.name:
    raise errors.ConfigError(
        f'The --config is a {given.get("trainer")!r} config but {workdir} holds a '
        f'{kind.name!r} run (see its config.json): pass --config=configs/{kind.name}.py'
        '[:preset] as the run was trained.')
  diffs = [f'{f}: given {_get_field(given, f)!r}, the run has {_get_field(run_config, f)!r}'
           for f in kind.checked_fields if _get_field(given, f) != _get_field(run_config, f)]
  if diffs:
    raise errors.ConfigError(
        f'The --config does not match the run in {workdir} (see its config.json):\n  '
        + '\n  '.join(diffs) + '\nPass the config (and preset/overrides) the run was trained '
        'with.')
