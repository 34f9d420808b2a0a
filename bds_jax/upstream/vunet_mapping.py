"""Upstream's appearance network and its adversary -> our AppearanceModel and KeypointRegressor.

Upstream `VunetAlter` (models/vunets.py; reference spec §4) with `conv_layer_type: l1`:
- Every convolution is a NormConv2d: `<m>.conv.weight_v` (O, I, kh, kw), `<m>.conv.weight_g`
  (O, 1, 1, 1), `<m>.conv.bias` (O,), `<m>.gamma` and `<m>.beta` (1, O, 1, 1). Ours hold
  v (kh, kw, I, O), g, bias, gamma and beta (O,).
- A residual block (`VunetRNB`) holds `nin` (the 1x1 on its skip input; our `skip`) and `conv`;
  Downsample wraps its conv as `down`, Upsample as `up`. Upstream's depth-to-space is the
  DCR order our Upsample uses, so subpixel weights need no permutation.
- `eu` / `du` (EncUp / DecUp) -> app_up / pose_up: nin -> stem, blocks.k -> blocks[k],
  downs.k.down -> downs[k].
- `ed` (EncDownAlter) -> app_down: nin -> stem; per latent scale i, blocks.2i -> pre[i],
  make_latent_params.i -> mu[i], make_logstds.i -> logstd[i], blocks.2i+1 -> post[i],
  ups.i.up -> ups[i]. The last scale's blocks.2n-1 and ups.n-1, and fin_block, feed nothing
  (models/appearance.py): their keys are accepted and dropped.
- `dd` (DecDownAlter) -> decoder: nin -> stem, blocks.2i -> first[i], auto_blocks.i ->
  latent[i], blocks.2i+1 -> second[i], ups.i.up -> ups[i], out_conv -> out.
Upstream `Regressor` (the adversary; plain layers): `embedders.k` are its convs, finest latent
first (it applies them to the means in reverse), so embedders.k -> convs[n-1-k] (kernel
HWIO); `linears.0` -> hidden, whose input columns are reordered because upstream concatenates
the conv features finest first and we bottleneck first; `linears.1` -> head, its rows reordered
to our joint order when the dataset's joints differ from upstream's (Human3.6M).
Not convertible: `VunetOrg` (experiment `vunet`: keys dd.latent_nins, dd.auto_lp) and models
built with conv_layer_type l2 (L2NormConv2d: `<m>.weight`, no weight_g / weight_v).
"""

import numpy as np

from bds_jax import errors
from bds_jax.upstream.mapping import raise_problems
from bds_jax.upstream.mapping import take

SPEC = 'reference spec §4, bds_jax/upstream/vunet_mapping.py'
_NORM_CONV = {'v', 'g', 'bias', 'gamma', 'beta'}
_RNB = {'skip': 'nin', 'conv': 'conv'}  # our ResBlock's convs -> upstream VunetRNB's


def unwrap_data_parallel(sd: dict) -> dict:
  """A state dict saved from nn.DataParallel (every key 'module.<name>') -> plain names."""
  if sd and all(k.startswith('module.') for k in sd):
    return {k[len('module.'):]: v for k, v in sd.items()}
  return sd


def _count(sd: dict, prefix: str) -> int:
  return len({k[len(prefix):].split('.')[0] for k in sd if k.startswith(prefix)})


def vunet_shape(sd: dict, source: str = 'checkpoint') -> dict:
  """The architecture read off a VunetAlter state dict's keys and shapes."""
  if any(k.startswith(('dd.latent_nins.', 'dd.auto_lp.')) for k in sd):
    raise errors.InputError(f'{source} is an upstream VunetOrg (experiment "vunet", '
                            'autoregressive decoder), which is not convertible: convert a '
                            'shape_and_pose_net (VunetAlter) checkpoint.')
  for key in ('eu.nin.conv.weight_v', 'du.nin.conv.weight_v', 'ed.nin.conv.weight_v',
              'ed.make_logstds.0.conv.weight_v'):
    if key not in sd or np.ndim(sd[key]) != 4:
      raise errors.InputError(f'{source}: no {key}; is this the appearance VUnet '
                              '(reg_ckpt_model_N.pth of a shape_and_pose_net run, VunetAlter '
                              'with conv_layer_type l1)?')
  eu, du, ed = (np.shape(sd[f'{p}.nin.conv.weight_v']) for p in ('eu', 'du', 'ed'))
  if eu[0] != du[0]:
    raise errors.InputError(f'{source}: eu.nin has {eu[0]} output channels, du.nin {du[0]}; '
                            'upstream gives both nf_start.')
  return {'appearance_channels': int(eu[1]), 'pose_channels': int(du[1]),
          'nf_start': int(eu[0]), 'nf_max': int(ed[0]),
          'n_scales': _count(sd, 'du.blocks.') // 2, 'n_app_scales': _count(sd, 'eu.blocks.') // 2,
          'n_latent': _count(sd, 'ed.make_latent_params.')}


def _upstream_name(path: tuple) -> str:
  """Upstream's module name for the NormConv2d at our parameter path (a tuple of keys)."""
  top, rest = path[0], path[1:]
  if top in ('app_up', 'pose_up'):
    p = 'eu' if top == 'app_up' else 'du'
    if rest == ('stem',):
      return f'{p}.nin'
    if rest[0] == 'blocks' and rest[2] == 'conv':
      return f'{p}.blocks.{rest[1]}.conv'
    if rest[0] == 'downs':
      return f'{p}.downs.{rest[1]}.down'
  elif top == 'app_down':
    if rest == ('stem',):
      return 'ed.nin'
    kind, i = rest[0], rest[1]
    if kind in ('pre', 'post'):
      return f'ed.blocks.{2 * i + (kind == "post")}.{_RNB[rest[2]]}'
    if kind in ('mu', 'logstd'):
      return f'ed.{"make_latent_params" if kind == "mu" else "make_logstds"}.{i}'
    if kind == 'ups':
      return f'ed.ups.{i}.up'
  elif top == 'decoder':
    if rest in (('stem',), ('out',)):
      return 'dd.nin' if rest == ('stem',) else 'dd.out_conv'
    kind, i = rest[0], rest[1]
    if kind in ('first', 'second'):
      return f'dd.blocks.{2 * i + (kind == "second")}.{_RNB[rest[2]]}'
    if kind == 'latent':
      return f'dd.auto_blocks.{i}.{_RNB[rest[2]]}'
    if kind == 'ups':
      return f'dd.ups.{i}.up'
  raise ValueError(f'our appearance parameter {".".join(map(str, path))} has no upstream '
                   'counterpart (models/appearance.py changed?).')


def _norm_convs(tree, path=()):
  """(path, v's shape) of every NormConv2d in a pure dict of our parameters."""
  if isinstance(tree, dict) and set(tree) == _NORM_CONV:
    yield path, tuple(np.shape(tree['v']))
  elif isinstance(tree, dict):
    for key in sorted(tree, key=str):
      yield from _norm_convs(tree[key], path + (key,))


def vunet_arrays(sd: dict, ours: dict, source: str = 'checkpoint') -> dict[str, np.ndarray]:
  """{our parameter path: array} of the VUnet; `ours` is our model's pure-dict parameters
  (their shapes say what each upstream tensor must hold)."""
  problems, out, known = [], {}, set()

  def get(key, shape):
    known.add(key)
    return take(sd, key, shape, problems)

  for path, (kh, kw, cin, cout) in _norm_convs(ours):
    mine, theirs = '.'.join(map(str, path)), _upstream_name(path)
    out[f'{mine}.v'] = get(f'{theirs}.conv.weight_v', (cout, cin, kh, kw)).transpose(2, 3, 1, 0)
    out[f'{mine}.g'] = get(f'{theirs}.conv.weight_g', (cout, 1, 1, 1)).reshape(cout)
    out[f'{mine}.bias'] = get(f'{theirs}.conv.bias', (cout,))
    out[f'{mine}.gamma'] = get(f'{theirs}.gamma', (1, cout, 1, 1)).reshape(cout)
    out[f'{mine}.beta'] = get(f'{theirs}.beta', (1, cout, 1, 1)).reshape(cout)
  n = len(ours['app_down']['mu'])
  dead = (f'ed.blocks.{2 * n - 1}.', f'ed.ups.{n - 1}.', 'ed.fin_block.')
  unexpected = sorted(k for k in set(sd) - known if not k.startswith(dead))
  raise_problems(problems, unexpected, source, 'VunetAlter', SPEC)
  return out


def regressor_shape(sd: dict, source: str = 'checkpoint') -> dict:
  """{'n_latent', 'conv_channels', 'hidden', 'num_keypoints'} of an upstream Regressor."""
  if 'embedders.0.weight' not in sd or 'linears.0.weight' not in sd:
    raise errors.InputError(f'{source}: no embedders.0.weight / linears.0.weight; is this the '
                            'appearance adversary (regressor_model_N.pth of a '
                            'shape_and_pose_net run)?')
  if _count(sd, 'linears.') != 2 or 'linears.1.weight' not in sd:
    raise errors.InputError(f'{source}: {_count(sd, "linears.")} linear layers; ours has 2 '
                            '(upstream\'s n_linear default).')
  outputs = int(np.shape(sd['linears.1.weight'])[0])
  if outputs % 2:
    raise errors.InputError(f'{source}: linears.1 has {outputs} outputs, not 2 per keypoint.')
  return {'n_latent': _count(sd, 'embedders.'),
          'conv_channels': int(np.shape(sd['embedders.0.weight'])[0]),
          'hidden': int(np.shape(sd['linears.0.weight'])[0]), 'num_keypoints': outputs // 2}


def regressor_arrays(sd: dict, ours: dict, joint_order=None,
                     source: str = 'checkpoint') -> dict[str, np.ndarray]:
  """{our parameter path: array} of the adversary; `ours` is our regressor's pure-dict
  parameters. `joint_order`: our keypoint k is upstream's joint_order[k] (None: the same)."""
  problems, out, known = [], {}, set()

  def get(key, shape):
    known.add(key)
    return take(sd, key, shape, problems)

  n = len(ours['convs'])
  for i in range(n):
    kh, kw, cin, c = np.shape(ours['convs'][i]['kernel'])
    out[f'convs.{i}.kernel'] = get(f'embedders.{n - 1 - i}.weight',
                                   (c, cin, kh, kw)).transpose(2, 3, 1, 0)
    out[f'convs.{i}.bias'] = get(f'embedders.{n - 1 - i}.bias', (c,))
  width, hidden = np.shape(ours['hidden']['kernel'])
  c = width // n
  columns = np.concatenate([np.arange(c) + (n - 1 - i) * c for i in range(n)])
  out['hidden.kernel'] = get('linears.0.weight', (hidden, width))[:, columns].T
  out['hidden.bias'] = get('linears.0.bias', (hidden,))
  outputs = np.shape(ours['head']['kernel'])[1]
  if joint_order is not None and 2 * len(joint_order) != outputs:
    raise errors.InputError(f'{source}: a joint order of {len(joint_order)} joints for a regressor '
                            f'with {outputs} outputs.')
  rows = (np.arange(outputs) if joint_order is None else
          (np.asarray(joint_order)[:, None] * 2 + np.arange(2)).ravel())
  out['head.kernel'] = get('linears.1.weight', (outputs, hidden))[rows].T
  out['head.bias'] = get('linears.1.bias', (outputs,))[rows]
  raise_problems(problems, sorted(set(sd) - known), source, 'Regressor', SPEC)
  return out
