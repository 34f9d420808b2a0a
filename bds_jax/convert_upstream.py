"""Converts the authors' PyTorch checkpoints into bds_jax run directories.

  python -m bds_jax.convert_upstream --model=reg_ckpt_model_N.pth [--flow=flow_ckpt_model_M.pth] \
      [--config_yaml=config.yaml] (--normalization=stats.npz | --h36m_data_dir=DIR) --out=OUT
  python -m bds_jax.convert_upstream --vunet=reg_ckpt_model_K.pth \
      [--regressor=regressor_model_K.pth] [--appearance_config=configs/appearance.py:PRESET] \
      --out=OUT

What converts (pytorch-ignite `{'model', 'optimizer'}` files in PyTorch's zip or legacy format,
or plain state dicts; only the model is read):
  --model      the behavior VAE (`ResidualBehaviorNet`, `reg_ckpt_model_N.pth` of a
               behavior_net run) -> a behavior run in OUT (config.json, normalization.json, an
               orbax checkpoint); --config_yaml (that run's config.yaml) is checked against it
               and sets the sequence length and frame lag;
  --flow       its flow (`UnsupervisedTransformer2`, `flow_ckpt_model_N.pth`) -> OUT/flow;
  --vunet      the appearance network (`VunetAlter`, `reg_ckpt_model_K.pth` of a
               shape_and_pose_net run, which uses the behavior model's prefix, or its
               `epoch_ckpts/model@e...pth`) -> an appearance run in OUT, or in OUT/appearance
               when --model is given too;
  --regressor  its keypoint adversary (`Regressor`, `regressor_model_K.pth`); without it the
               appearance run's adversary is freshly initialised (only evaluate.py's "the run's
               own adversary" number reads it).
Not convertible: optimizer files (training does not resume from a converted run), upstream's
MT-VAE and VunetOrg (`vunet` experiment) models, VUnets built with conv_layer_type l2, and what
upstream never saved (the behavior model's adversary and probes).

The behavior run: evaluate with `python evaluate.py --config=configs/behavior.py:h36m
--workdir=OUT` (adding `--config.model.width=W` if the checkpoint's width W is not 1024).
Normalisation is not stored upstream. Either pass the mean and std (an npz with arrays `mean`
and `std`, shape (51,), in upstream's joint order, as upstream's dataset computed them), or
--h36m_data_dir, a TFDS data dir where the human36m dataset is built: the statistics are then
computed as upstream did, over all subjects, test subjects included. That reproduces
upstream's test-subject leak (reference spec §1.3, §7.13), which is what the checkpoint's inputs
were z-scored with; our own training uses the train split only.

The appearance run: its sizes are read off the checkpoint, which also identifies the preset
(h36m: 3 input channels, 7 scales; deepfashion and market: 30 channels of part crops, 5 and 6
appearance scales); --appearance_config overrides that (its image_size, bottleneck_factor,
box_factor and inplane_normalize must fit the checkpoint). DeepFashion and Market runs get
data.crop_geometry = 'upstream', the part crops upstream's weights were trained on
(bds_jax/imaging/inplane.py). The converter prints the evaluate.py command; a Human3.6M one
renders videos with `synthesize.py video --appearance_workdir=...`.

Tensors are mapped by `bds_jax.upstream.mapping` (behavior, flow) and
`bds_jax.upstream.vunet_mapping` (VUnet, adversary); `.pth` files are read without executing
pickles (`bds_jax.upstream.pth`).
"""

import importlib.util
import math
import os
import re

from absl import app
from absl import flags
import jax
from ml_collections import config_flags
import numpy as np
from flax import nnx

from bds_jax import errors
from bds_jax import imaging
from bds_jax import kinds
from bds_jax import runs
from bds_jax import skeleton
from bds_jax.data import datasets
from bds_jax.data import sources
from bds_jax.data.normalization import Normalizer
from bds_jax.models import build
from bds_jax.upstream import mapping
from bds_jax.upstream import pth
from bds_jax.upstream import vunet_mapping

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class OutExistsError(errors.UserError, FileExistsError):
  """--out already holds a run (printed as one line, as every bad input here)."""


def read_yaml(path: str) -> dict:
  """Upstream config.yaml values that matter here: width, sequence length, frame lag."""
  import yaml  # pylint: disable=g-import-not-at-top
  with open(path) as f:
    data = yaml.safe_load(f)  # plain YAML only: no object construction

  def find(node, key):
    if isinstance(node, dict):
      if key in node:
        return node[key]
      for v in node.values():
        if (found := find(v, key)) is not None:
          return found
    return None

  out = {}
  if (width := find(data, 'dim_hidden_b')) is not None:
    out['width'] = int(width)
  if (seq := find(data, 'seq_length')) is not None:
    out['seq_len'] = int(seq[0] if isinstance(seq, (list, tuple)) else seq)
  if (lag := find(data, 'sequential_frame_lag')) is not None:
    out['frame_lag'] = int(lag)
  return out


def upstream_normalizer(npz_path: str | None, h36m_data_dir: str | None) -> tuple:
  """(Normalizer in our joint order, a sentence saying where it came from)."""
  if bool(npz_path) == bool(h36m_data_dir):
    raise errors.InputError('Give exactly one of --normalization (an npz of upstream\'s mean '
                            'and std) and --h36m_data_dir (to compute them as upstream did).')
  if npz_path:
    with np.load(npz_path, allow_pickle=False) as f:
      if 'mean' not in f.files or 'std' not in f.files:
        raise errors.InputError(f'{npz_path} must hold arrays "mean" and "std"; it has '
                                f'{f.files}.')
      mean, std = np.asarray(f['mean'], np.float64), np.asarray(f['std'], np.float64)
    if mean.shape != (mapping.POSE_DIM,) or std.shape != (mapping.POSE_DIM,):
      raise errors.InputError(f'{npz_path}: mean and std must have shape ({mapping.POSE_DIM},) '
                              f'(17 joints x 3, upstream order), got {mean.shape} and '
                              f'{std.shape}.')
    if not (np.all(np.isfinite(mean)) and np.all(std > 0)):
      raise errors.InputError(f'{npz_path}: mean must be finite and std positive.')
    return (Normalizer(mean[mapping.POSE_INDEX].astype(np.float32),
                       std[mapping.POSE_INDEX].astype(np.float32)),
            f'the mean and std in {npz_path} (upstream joint order, reordered)')
  builder = sources.get_builder('human36m', h36m_data_dir)
  sources.prepare(builder, 'human36m', 'never')
  poses = [p for split in builder.info.splits for p in
           sources.load_split(builder, 'human36m', split).poses]
  return (Normalizer.fit(poses),
          f'all {len(poses)} Human3.6M sequences in {h36m_data_dir}, test subjects included, '
          'as upstream computed them (its test-subject leak, needed to match its inputs)')


def _step(path: str) -> int:
  m = re.search(r'_(\d+)\.pth$', os.path.basename(path))
  return int(m.group(1)) if m else 0


def convert(model_path: str, out: str, behavior_config, normalizer: Normalizer,
            flow_path: str | None = None, flow_config=None, yaml_values: dict | None = None):
  """Writes the run directory `out`; returns its `runs.Run`."""
  run = runs.Run(out)
  if run.exists():
    raise OutExistsError(f'{run.config_path} exists: convert into a new --out directory.')
  sd = pth.load_state_dict(model_path)
  width = mapping.behavior_width(sd, model_path)
  arrays = mapping.behavior_arrays(sd, model_path)
  config = behavior_config.copy_and_resolve_references()
  yaml_values = yaml_values or {}
  if yaml_values.get('width', width) != width:
    raise errors.InputError(f'config.yaml says dim_hidden_b={yaml_values["width"]}, but '
                            f'{model_path} has width {width}.')
  config.model.width = width
  config.model.frame = 'world'  # upstream's inputs are world z-scores
  for key in ('seq_len', 'frame_lag'):
    if key in yaml_values:
      config.data[key] = yaml_values[key]
  config.data.data_dir = os.path.abspath(config.data.data_dir) if config.data.data_dir else ''

  model, _ = build.create_models(config, jax.random.key(0), normalizer)
  mapping.assign(model, arrays, f'behavior model from {model_path}')
  run.create()
  normalizer.save(run.normalization_path)
  run.write_config(config)
  ckpt = run.checkpointer(keep=1)
  ckpt.save(_step(model_path), {'vae': nnx.to_pure_dict(nnx.state(model))},
            meta={'converted_from': os.path.abspath(model_path)})
  ckpt.wait()
  ckpt.close()
  if flow_path:
    fsd = pth.load_state_dict(flow_path)
    shape = mapping.flow_shape(fsd, flow_path)
    if shape['dim'] != width:
      raise errors.InputError(f'{flow_path} models {shape["dim"]}-d codes, but {model_path} has '
                              f'{width}-d codes.')
    fconfig = flow_config.copy_and_resolve_references()
    fconfig.behavior_workdir = '..'  # resolved against the flow run's own folder
    fconfig.flow.num_blocks = shape['num_blocks']
    fconfig.flow.hidden_width = shape['width']
    fconfig.flow.num_layers = shape['num_layers']
    flow = build.create_flow(fconfig, width)
    mapping.assign(flow, mapping.flow_arrays(fsd, flow_path), f'flow from {flow_path}')
    _, params, buffers = build.split_flow(flow)
    frun = runs.Run(run.flow_dir).create()
    frun.write_config(fconfig)
    fckpt = frun.checkpointer(keep=1)
    fckpt.save(_step(flow_path), {'params': params, 'buffers': buffers},
               meta={'converted_from': os.path.abspath(flow_path)})
    fckpt.wait()
    fckpt.close()
  return run


# (appearance input channels, posture scales, appearance scales) -> the preset they identify.
APPEARANCE_PRESETS = {(3, 7, 7): 'h36m', (30, 7, 5): 'deepfashion', (30, 7, 6): 'market'}


def appearance_preset_config(preset: str):
  """configs/appearance.py's config for `preset` (loaded by path, as the config flags are)."""
  spec = importlib.util.spec_from_file_location(
      '_bds_appearance_config', os.path.join(ROOT, 'configs', 'appearance.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(preset)


def appearance_config(shape: dict, config=None, source: str = 'checkpoint'):
  """The converted appearance run's config: `config` (default: the preset the checkpoint's sizes
  identify) with the widths read off the checkpoint and the settings its weights need."""
  key = (shape['appearance_channels'], shape['n_scales'], shape['n_app_scales'])
  if config is None:
    if key not in APPEARANCE_PRESETS:
      raise errors.InputError(
          f'{source}: {key[0]} input channels, {key[1]} posture and {key[2]} appearance scales '
          'match no preset (h36m, deepfashion, market): pass --appearance_config='
          'configs/appearance.py:<preset> with the image_size, bottleneck_factor and '
          'box_factor it was trained with.')
    config = appearance_preset_config(APPEARANCE_PRESETS[key])
  config = config.copy_and_resolve_references()
  if config.get('trainer') != 'appearance':
    raise errors.InputError('--appearance_config must be an appearance config '
                            '(configs/appearance.py[:preset]).')
  m, d = config.model, config.data
  n_scales = 1 + int(round(math.log2(m.image_size))) - m.bottleneck_factor
  inplane = shape['appearance_channels'] > 3
  n_app = n_scales - d.box_factor if inplane else n_scales
  problems = []
  if n_scales != shape['n_scales']:
    problems.append(f'{shape["n_scales"]} posture scales, but image_size={m.image_size} and '
                    f'bottleneck_factor={m.bottleneck_factor} give {n_scales}')
  if inplane != bool(d.inplane_normalize):
    problems.append(f'{shape["appearance_channels"]} appearance input channels, but '
                    f'data.inplane_normalize={d.inplane_normalize}')
  elif n_app != shape['n_app_scales']:
    problems.append(f'{shape["n_app_scales"]} appearance scales, but data.box_factor='
                    f'{d.box_factor} gives {n_app}')
  if shape['appearance_channels'] not in (3, 30) or shape['pose_channels'] != 3:
    problems.append(f'{shape["appearance_channels"]} appearance and {shape["pose_channels"]} '
                    'stickman channels (expected 3 or 30, and 3)')
  if problems:
    raise errors.InputError(f'{source} does not fit the appearance config '
                            f'({"; ".join(problems)}): pass the preset it was trained with '
                            '(--appearance_config=configs/appearance.py:h36m, :deepfashion or '
                            ':market) and its overrides.')
  m.nf_start, m.nf_max = shape['nf_start'], shape['nf_max']
  m.n_latent_scales = shape['n_latent']
  m.sigmoid_logstd, m.logstd_range = True, (0.0, 1.0)  # upstream's posterior: sigma in (1, e)
  m.part_warp = m.part_blend = m.room_branch = m.room_scene = False  # ours (docs/appearance.md)
  d.mask_room = False  # upstream's crops show the room
  if inplane:
    d.crop_geometry = 'upstream'  # the crops its weights were trained on
  d.data_dir = os.path.abspath(d.data_dir) if d.data_dir else ''
  config.loss.likelihood = 'vgg19'  # what upstream trained with
  return config


def convert_appearance(vunet_path: str, out: str, config=None,
                       regressor_path: str | None = None):
  """Writes the appearance run directory `out` from upstream's VUnet (and its adversary);
  returns its `runs.Run`. Without `regressor_path` the adversary is freshly initialised."""
  run = runs.Run(out)
  if run.exists():
    raise OutExistsError(f'{run.config_path} exists: convert into a new --out directory.')
  sd = vunet_mapping.unwrap_data_parallel(pth.load_state_dict(vunet_path))
  config = appearance_config(vunet_mapping.vunet_shape(sd, vunet_path), config, vunet_path)
  rsd = None
  if regressor_path:
    rsd = vunet_mapping.unwrap_data_parallel(pth.load_state_dict(regressor_path))
    rshape = vunet_mapping.regressor_shape(rsd, regressor_path)
    if rshape['n_latent'] != config.model.n_latent_scales:
      raise errors.InputError(f'{regressor_path} reads {rshape["n_latent"]} latent scales, but '
                              f'{vunet_path} has {config.model.n_latent_scales}.')
    if rshape['num_keypoints'] != config.model.num_keypoints:
      raise errors.InputError(f'{regressor_path} predicts {rshape["num_keypoints"]} keypoints, '
                              f'but {config.data.name} has {config.model.num_keypoints}: is it '
                              'the adversary of this VUnet?')
    config.model.regressor_channels = rshape['conv_channels']
    config.model.regressor_hidden = rshape['hidden']
  # Shapes only: every parameter is overwritten, so no random initialisation is paid for.
  model, reg = nnx.eval_shape(lambda: build.create_appearance(config, jax.random.key(0)))
  abstract = nnx.to_pure_dict(nnx.state(model))
  params = mapping.fill(abstract, vunet_mapping.vunet_arrays(sd, abstract, vunet_path),
                        f'VUnet from {vunet_path}')
  reg_params = nnx.to_pure_dict(nnx.state(reg))
  if rsd is not None:
    # Upstream's Human3.6M keypoints are its 17 joints in its order; ours are reordered.
    same = datasets.get(config.data.name).keypoints is not imaging.H36M_17
    order = None if same else skeleton.UPSTREAM_TO_OURS
    reg_params = mapping.fill(reg_params, vunet_mapping.regressor_arrays(
        rsd, reg_params, order, regressor_path), f'adversary from {regressor_path}')
  else:
    from bds_jax.evaluation import appearance as evaluation  # pylint: disable=g-import-not-at-top
    reg_params = evaluation.fresh_regressor(reg_params, model.latent_shapes, config.seed)[1]
  run.create()
  run.write_config(config)
  ckpt = run.checkpointer(keep=1)
  meta = {'converted_from': os.path.abspath(vunet_path)}
  if regressor_path:
    meta['regressor_converted_from'] = os.path.abspath(regressor_path)
  ckpt.save(_step(vunet_path), {'params': params, 'reg': reg_params}, meta=meta)
  ckpt.wait()
  ckpt.close()
  return run


def appearance_eval_flags(config) -> str:
  """The --config flags evaluate.py needs for a converted appearance run: its preset, and the
  fields it checks (the appearance kind's checked_fields, bds_jax/kinds.py) where the run
  differs from the preset."""
  preset = appearance_preset_config(config.preset)
  flags_ = ['--config=configs/appearance.py' + (f':{config.preset}' if config.preset else '')]
  for field in kinds.get('appearance').checked_fields:
    ours, theirs = config, preset
    for part in field.split('.'):
      ours, theirs = ours[part], theirs[part]
    if ours != theirs:
      flags_.append(f'--config.{field}={ours}')
  return ' '.join(flags_)


_MODEL = flags.DEFINE_string('model', None, 'Upstream behavior checkpoint reg_ckpt_model_N.pth.')
_FLOW = flags.DEFINE_string('flow', None, 'Upstream flow checkpoint flow_ckpt_model_N.pth.')
_YAML = flags.DEFINE_string('config_yaml', None, 'Upstream behavior config.yaml (checked against '
                            'the checkpoint; sets the sequence length and frame lag).')
_NORM = flags.DEFINE_string('normalization', None, 'npz with upstream\'s "mean" and "std".')
_H36M = flags.DEFINE_string('h36m_data_dir', None, 'TFDS data dir with human36m built, to '
                            'compute the normalisation as upstream did.')
_VUNET = flags.DEFINE_string('vunet', None, 'Upstream appearance VUnet reg_ckpt_model_N.pth of a '
                             'shape_and_pose_net run (or its epoch_ckpts/model@...pth).')
_REGRESSOR = flags.DEFINE_string('regressor', None, 'Its adversary, regressor_model_N.pth '
                                 '(optional: without it the adversary is untrained).')
_OUT = flags.DEFINE_string('out', None, 'The run directory to write (with --model and --vunet '
                           'both, the appearance run goes to <out>/appearance).')
config_flags.DEFINE_config_file('config', os.path.join(ROOT, 'configs', 'behavior.py') + ':h36m',
                                'Behavior config the converted run gets.', lock_config=False)
config_flags.DEFINE_config_file('flow_config',
                                os.path.join(ROOT, 'configs', 'flow.py') + ':upstream',
                                'Flow config the converted flow run gets.', lock_config=False)
config_flags.DEFINE_config_file('appearance_config', None,
                                'Appearance config (configs/appearance.py:<preset>) the converted '
                                'VUnet run gets; default: the preset its sizes identify.',
                                lock_config=False)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  if not _OUT.value or not (_MODEL.value or _VUNET.value):
    raise app.UsageError('--out and --model (behavior) and/or --vunet (appearance) are required.')
  if _FLOW.value and not _MODEL.value:
    raise app.UsageError('--flow needs --model (the behavior model whose codes it models).')
  if _REGRESSOR.value and not _VUNET.value:
    raise app.UsageError('--regressor needs --vunet (the VUnet it is the adversary of).')
  if _VUNET.value:  # first: it writes nothing when the checkpoint does not fit
    out = os.path.join(_OUT.value, 'appearance') if _MODEL.value else _OUT.value
    arun = convert_appearance(_VUNET.value, out, flags.FLAGS.appearance_config,
                              _REGRESSOR.value)
    c = arun.config
    print(f'Wrote {arun.path}: appearance VUnet ({c.data.name}, {c.model.image_size} px) from '
          f'{_VUNET.value}' + (f', adversary from {_REGRESSOR.value}' if _REGRESSOR.value else
                               ' (no --regressor: its adversary is untrained)') + '.')
    if c.data.inplane_normalize:
      print('Part crops: upstream\'s geometry (data.crop_geometry=upstream, in its config.json).')
    print(f'Evaluate with: python evaluate.py {appearance_eval_flags(c)} --workdir={arun.path}')
  if not _MODEL.value:
    return
  normalizer, source = upstream_normalizer(_NORM.value, _H36M.value)
  yaml_values = read_yaml(_YAML.value) if _YAML.value else {}
  run = convert(_MODEL.value, _OUT.value, flags.FLAGS.config, normalizer, _FLOW.value,
                flags.FLAGS.flow_config, yaml_values)
  width = run.config.model.width
  print(f'Wrote {run.path}: behavior model (width {width}) from {_MODEL.value}'
        + (f', flow from {_FLOW.value}' if _FLOW.value else '') + '.')
  print(f'Normalisation: {source}.')
  print('Evaluate with: python evaluate.py --config=configs/behavior.py:h36m'
        + ('' if width == 1024 else f' --config.model.width={width}') + f' --workdir={run.path}')
  if _VUNET.value:
    print(f'Render videos with: python synthesize.py video --workdir={run.path} '
          f'--appearance_workdir={os.path.join(run.path, "appearance")}')


if __name__ == '__main__':
  errors.main_with_clear_errors(lambda: app.run(main, flags_parser=errors.parse_flags))
