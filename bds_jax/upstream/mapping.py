"""Upstream PyTorch state dicts -> this project's parameters (h36m-formats spec §3).

Behavior VAE (`ResidualBehaviorNet`, keys `b_enc.*`, `decoder.*`):
- LSTMs: ours hold w = [w_ih | w_hh] (4H, I + H) in PyTorch's gate order and b = b_ih + b_hh.
- Heads `mu_fn` / `std_fn` (weight-normalised 1x1 convolutions with a per-unit affine):
  v = weight_v[:, :, 0, 0].T, g = weight_g.ravel(), bias, gamma and beta raveled; std_fn is our
  `logstd` head (upstream's "std" output is the log-sigma).
- `decoder.n_out` (Linear 1024 -> 51): kernel = weight.T.
- Joints: upstream's 51 dims are joint-major in upstream order; every input column and output
  row is reordered with `skeleton.UPSTREAM_TO_OURS` (its joint 11, 0.1 mm from the root, stands
  in for our pelvis).
Flow (`UnsupervisedTransformer2`, keys `flow.sub_layers.<i>.*`): ActNorm loc/scale (1, D, 1, 1)
-> (D,); coupling.{s,t}.{0,1}.main.{0,2,4,...} -> coupling{0,1}.{s,t}.layers[k] (kernel =
weight.T); shuffle.forward_shuffle_idx -> perm (both apply x[:, idx]). The flow works on codes,
which have no joint order.
"""

import re

import jax
import jax.numpy as jnp
import numpy as np

from bds_jax import errors
from bds_jax import skeleton

POSE_DIM = 3 * skeleton.NUM_JOINTS
# ours[d] = upstream[POSE_INDEX[d]] for the 51 flattened dims.
POSE_INDEX = (np.asarray(skeleton.UPSTREAM_TO_OURS)[:, None] * 3 + np.arange(3)).ravel()


def take(sd: dict, key: str, shape: tuple, problems: list):
  """sd[key] as float32 if it has `shape`; else zeros, and a line in `problems`."""
  if key not in sd:
    problems.append(f'missing {key} (expected shape {shape})')
    return np.zeros(shape, np.float32)
  value = np.asarray(sd[key], np.float32)
  if value.shape != tuple(shape):
    problems.append(f'{key} has shape {value.shape}, expected {tuple(shape)}')
    return np.zeros(shape, np.float32)
  return value


def raise_problems(problems: list, unexpected: list, source: str, what: str,
                   spec: str = 'h36m-formats-and-upstream-checkpoints.md §3', limit: int = 20):
  """One ValueError naming `source` and listing the problems (the first `limit` of them)."""
  lines = problems + [f'unexpected key {k}' for k in unexpected]
  if len(lines) > limit:
    lines = lines[:limit] + [f'... and {len(lines) - limit} more']
  if lines:
    raise errors.InputError(f'{source} is not an upstream {what} state dict as expected '
                            f'({spec}):\n  ' + '\n  '.join(lines))


def behavior_width(sd: dict, source: str = 'checkpoint') -> int:
  key = 'b_enc.rnn.weight_hh_l0'
  if key not in sd or np.ndim(sd[key]) != 2:
    raise errors.InputError(f'{source}: no {key}; is this the behavior model '
                            '(reg_ckpt_model_N.pth)?')
  return int(np.shape(sd[key])[1])


def behavior_arrays(sd: dict, source: str = 'checkpoint') -> dict[str, np.ndarray]:
  """{our parameter path: array} of the behavior VAE, joints reordered to ours."""
  h = behavior_width(sd, source)
  problems = []
  get = lambda k, s: take(sd, k, s, problems)
  out = {}
  for ours, (theirs, suffix) in (('encoder.lstm', ('b_enc.rnn', '_l0')),
                                 ('decoder.lstm', ('decoder.rnn', ''))):
    w_ih = get(f'{theirs}.weight_ih{suffix}', (4 * h, POSE_DIM))[:, POSE_INDEX]
    w_hh = get(f'{theirs}.weight_hh{suffix}', (4 * h, h))
    out[f'{ours}.w'] = np.concatenate([w_ih, w_hh], axis=1)
    out[f'{ours}.b'] = (get(f'{theirs}.bias_ih{suffix}', (4 * h,)) +
                        get(f'{theirs}.bias_hh{suffix}', (4 * h,)))
  for ours, theirs in (('encoder.mu', 'b_enc.mu_fn'), ('encoder.logstd', 'b_enc.std_fn')):
    out[f'{ours}.v'] = get(f'{theirs}.conv.weight_v', (h, h, 1, 1))[:, :, 0, 0].T
    out[f'{ours}.g'] = get(f'{theirs}.conv.weight_g', (h, 1, 1, 1)).ravel()
    out[f'{ours}.bias'] = get(f'{theirs}.conv.bias', (h,))
    out[f'{ours}.gamma'] = get(f'{theirs}.gamma', (1, h, 1, 1)).ravel()
    out[f'{ours}.beta'] = get(f'{theirs}.beta', (1, h, 1, 1)).ravel()
  out['decoder.out.kernel'] = get('decoder.n_out.weight', (POSE_DIM, h))[POSE_INDEX].T
  out['decoder.out.bias'] = get('decoder.n_out.bias', (POSE_DIM,))[POSE_INDEX]
  known = {f'b_enc.rnn.{n}_l0' for n in ('weight_ih', 'weight_hh', 'bias_ih', 'bias_hh')}
  known |= {f'decoder.rnn.{n}' for n in ('weight_ih', 'weight_hh', 'bias_ih', 'bias_hh')}
  known |= {f'b_enc.{f}.{n}' for f in ('mu_fn', 'std_fn')
            for n in ('conv.weight_v', 'conv.weight_g', 'conv.bias', 'gamma', 'beta')}
  known |= {'decoder.n_out.weight', 'decoder.n_out.bias'}
  raise_problems(problems, sorted(set(sd) - known), source, 'behavior model')
  return out


_FLOW_KEY = re.compile(r'flow\.sub_layers\.(\d+)\.')


def flow_shape(sd: dict, source: str = 'checkpoint') -> dict:
  """{'dim', 'num_blocks', 'width', 'num_layers'} read off the flow state dict's keys."""
  blocks = sorted({int(m.group(1)) for k in sd for m in [_FLOW_KEY.match(k)] if m})
  if not blocks:
    raise errors.InputError(f'{source}: no flow.sub_layers.* keys; is this the flow '
                            '(flow_ckpt_model_N.pth)?')
  prefix = 'flow.sub_layers.0.coupling.s.0.main.'
  layer_ids = sorted({int(k[len(prefix):].split('.')[0]) for k in sd if k.startswith(prefix)})
  if not layer_ids or f'{prefix}0.weight' not in sd:
    raise errors.InputError(f'{source}: no {prefix}0.weight.')
  width, half = np.shape(sd[f'{prefix}0.weight'])
  return {'dim': 2 * int(half), 'num_blocks': len(blocks), 'width': int(width),
          'num_layers': len(layer_ids), 'layer_ids': layer_ids}


def flow_arrays(sd: dict, source: str = 'checkpoint') -> dict[str, np.ndarray]:
  """{our parameter path: array} of the flow (see module docstring)."""
  s = flow_shape(sd, source)
  d, w, half = s['dim'], s['width'], s['dim'] // 2
  problems, out = [], {}
  known = set()

  def get(key, shape):
    known.add(key)
    return take(sd, key, shape, problems)

  for i in range(s['num_blocks']):
    p = f'flow.sub_layers.{i}.'
    out[f'blocks.{i}.loc'] = get(p + 'norm_layer.loc', (1, d, 1, 1)).ravel()
    out[f'blocks.{i}.scale'] = get(p + 'norm_layer.scale', (1, d, 1, 1)).ravel()
    if p + 'norm_layer.initialized' in sd:
      known.add(p + 'norm_layer.initialized')
      if not np.asarray(sd[p + 'norm_layer.initialized']).item():
        problems.append(f'{p}norm_layer.initialized is 0: this flow was never trained')
    for net in ('s', 't'):
      for k in (0, 1):
        for n, layer in enumerate(s['layer_ids']):
          rows = half if n == len(s['layer_ids']) - 1 else w
          cols = half if n == 0 else w
          key = f'{p}coupling.{net}.{k}.main.{layer}.'
          ours = f'blocks.{i}.coupling{k}.{net}.layers.{n}.'
          out[ours + 'kernel'] = get(key + 'weight', (rows, cols)).T
          out[ours + 'bias'] = get(key + 'bias', (rows,))
    perm = get(p + 'shuffle.forward_shuffle_idx', (d,)).astype(np.int64)
    known.add(p + 'shuffle.backward_shuffle_idx')
    if sorted(perm.tolist()) != list(range(d)):
      problems.append(f'{p}shuffle.forward_shuffle_idx is not a permutation of 0..{d - 1}')
    out[f'blocks.{i}.perm'] = perm.astype(np.int32)
  raise_problems(problems, sorted(set(sd) - known), source, 'flow')
  return out


def assign(module, arrays: dict[str, np.ndarray], what: str = 'model'):
  """Writes {dotted path: array} into an NNX module's variables, checking every shape."""
  problems = []
  for path, value in arrays.items():
    obj = module
    parts = path.split('.')
    for part in parts[:-1]:
      obj = obj[int(part)] if part.isdigit() else getattr(obj, part)
    var = getattr(obj, parts[-1])
    if tuple(var[...].shape) != value.shape:
      problems.append(f'{path}: ours {tuple(var[...].shape)}, converted {value.shape}')
      continue
    var[...] = np.asarray(value, np.asarray(var[...]).dtype)
  if problems:
    raise errors.InputError(f'The converted {what} does not fit the model built from its '
                            'config:\n  ' + '\n  '.join(problems))
  return module


def fill(tree: dict, arrays: dict[str, np.ndarray], what: str = 'model') -> dict:
  """The pure-dict parameter tree `tree` (arrays or jax.ShapeDtypeStructs, e.g. from
  nnx.eval_shape: no random initialisation to pay for) with every leaf taken from `arrays`
  {dotted path: array}; a leaf without its array, or of another shape, is an error."""
  problems, used = [], set()

  def one(path, ref):
    key = '.'.join(str(getattr(p, 'key', p)) for p in path)
    if key not in arrays:
      problems.append(f'{key}: not converted')
      return ref
    used.add(key)
    if tuple(np.shape(arrays[key])) != tuple(ref.shape):
      problems.append(f'{key}: ours {tuple(ref.shape)}, converted {np.shape(arrays[key])}')
      return ref
    return jnp.asarray(arrays[key], ref.dtype)

  out = jax.tree_util.tree_map_with_path(one, tree)
  problems += [f'{k}: converted, but ours has no such parameter'
               for k in sorted(set(arrays) - used)]
  if problems:
    raise errors.InputError(f'The converted {what} does not fit the model built from its '
                            'config:\n  ' + '\n  '.join(problems))
  return out
