"""Converts the authors' PyTorch checkpoints into a bds_jax run directory.

  python -m bds_jax.convert_upstream --model=reg_ckpt_model_N.pth [--flow=flow_ckpt_model_M.pth] \
      [--config_yaml=config.yaml] (--normalization=stats.npz | --h36m_data_dir=DIR) --out=runs/upstream

Writes a normal run directory (config.json, normalization.json, an orbax checkpoint of the
parameters, and flow/ when --flow is given) that evaluate.py and the sampler accept:

  python evaluate.py --config=configs/behavior.py:h36m --workdir=runs/upstream

(adding `--config.model.width=W` if the checkpoint's width W is not 1024). The tensors are mapped
by `bds_jax.upstream.mapping`; `.pth` files are read without executing pickles
(`bds_jax.upstream.pth`).

Normalisation is not stored upstream. Either pass the mean and std (an npz with arrays `mean` and
`std`, shape (51,), in upstream's joint order, as upstream's dataset computed them), or
--h36m_data_dir, a TFDS data dir where the human36m dataset is built: the statistics are then
computed as upstream did, over all subjects, test subjects included. That reproduces upstream's
test-subject leak (reference spec §1.3, §7.13), which is what the checkpoint's inputs were
z-scored with; our own training uses the train split only.
"""

import os
import re

from absl import app
from absl import flags
import jax
from ml_collections import config_flags
import numpy as np
from flax import nnx

from bds_jax import errors
from bds_jax import runs
from bds_jax.data import sources
from bds_jax.data.normalization import Normalizer
from bds_jax.models import build
from bds_jax.upstream import mapping
from bds_jax.upstream import pth

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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
    raise ValueError('Give exactly one of --normalization (an npz of upstream\'s mean and std) '
                     'and --h36m_data_dir (to compute them as upstream did).')
  if npz_path:
    with np.load(npz_path, allow_pickle=False) as f:
      if 'mean' not in f.files or 'std' not in f.files:
        raise ValueError(f'{npz_path} must hold arrays "mean" and "std"; it has {f.files}.')
      mean, std = np.asarray(f['mean'], np.float64), np.asarray(f['std'], np.float64)
    if mean.shape != (mapping.POSE_DIM,) or std.shape != (mapping.POSE_DIM,):
      raise ValueError(f'{npz_path}: mean and std must have shape ({mapping.POSE_DIM},) (17 '
                       f'joints x 3, upstream order), got {mean.shape} and {std.shape}.')
    if not (np.all(np.isfinite(mean)) and np.all(std > 0)):
      raise ValueError(f'{npz_path}: mean must be finite and std positive.')
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
    raise FileExistsError(f'{run.config_path} exists: convert into a new --out directory.')
  sd = pth.load_state_dict(model_path)
  width = mapping.behavior_width(sd, model_path)
  arrays = mapping.behavior_arrays(sd, model_path)
  config = behavior_config.copy_and_resolve_references()
  yaml_values = yaml_values or {}
  if yaml_values.get('width', width) != width:
    raise ValueError(f'config.yaml says dim_hidden_b={yaml_values["width"]}, but {model_path} '
                     f'has width {width}.')
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
      raise ValueError(f'{flow_path} models {shape["dim"]}-d codes, but {model_path} has '
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


_MODEL = flags.DEFINE_string('model', None, 'Upstream behavior checkpoint reg_ckpt_model_N.pth.')
_FLOW = flags.DEFINE_string('flow', None, 'Upstream flow checkpoint flow_ckpt_model_N.pth.')
_YAML = flags.DEFINE_string('config_yaml', None, 'Upstream config.yaml (checked against the '
                            'checkpoint; sets the sequence length and frame lag).')
_NORM = flags.DEFINE_string('normalization', None, 'npz with upstream\'s "mean" and "std".')
_H36M = flags.DEFINE_string('h36m_data_dir', None, 'TFDS data dir with human36m built, to '
                            'compute the normalisation as upstream did.')
_OUT = flags.DEFINE_string('out', None, 'The run directory to write.')
config_flags.DEFINE_config_file('config', os.path.join(ROOT, 'configs', 'behavior.py') + ':h36m',
                                'Behavior config the converted run gets.', lock_config=False)
config_flags.DEFINE_config_file('flow_config',
                                os.path.join(ROOT, 'configs', 'flow.py') + ':upstream',
                                'Flow config the converted flow run gets.', lock_config=False)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  if not _MODEL.value or not _OUT.value:
    raise app.UsageError('--model and --out are required.')
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


if __name__ == '__main__':
  errors.main_with_clear_errors(lambda: app.run(main, flags_parser=errors.parse_flags))
