"""Where the appearance train step's time goes: each part timed on its own, ours (JAX) beside
the upstream-equivalent PyTorch step's same part, in each library's settings, in one run.

  python benchmarks/appearance_parts.py [--size=256 --batch=12 --steps=5
      --settings=jax_float32,jax_bfloat16,torch_float32,torch_bf16 --count_flops]
  python benchmarks/appearance_parts.py --size=64 --batch=2 --steps=1   # a quick check

Shapes as benchmarks/appearance_step.py (H3.6M, configs/appearance.py:h36m). Parts, each
forward + backward where the step differentiates it, each jitted on its own (JAX), median of
--steps calls after one untimed call:
  encoder    the appearance encoder (app_up + app_down) w.r.t. its parameters, cotangent ones
  decoder    the posture stream (pose_up) + decoder on fixed latents, w.r.t. their parameters
             and the latents
  vgg19      the perceptual loss at the image size: VGG19 on the prediction (backward to it)
             and on the target (no backward)
  regressor  the 5 regressor Adam updates on fixed means; upstream also ran 5 no-grad encoder
             passes to make them: a PyTorch-only row
  optimizer  one Adam update of all model parameters (JAX: jitted, donating)
then the whole step (JAX: appearance_step.train_step; PyTorch: upstream_torch_appearance.
time_step) and the sum of the parts: their difference is what fusion saves or overhead costs.
Settings: JAX float32 / bfloat16 (model.compute_dtype: bf16 convolutions), PyTorch float32 /
bf16 autocast. The last columns: JAX's fastest over PyTorch's fastest (> 1: JAX slower) and
'where XLA loses' where that is above 1.1; then XLA's GFLOP count of each JAX part and its rate.
"""

import functools
import math
import os
import sys

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
import jax.numpy as jnp  # pylint: disable=g-import-not-at-top,wrong-import-position
import optax  # pylint: disable=g-import-not-at-top,wrong-import-position
from flax import nnx  # pylint: disable=g-import-not-at-top,wrong-import-position

from benchmarks import common  # pylint: disable=g-import-not-at-top,wrong-import-position
from benchmarks import upstream_torch_appearance as torch_step  # pylint: disable=g-import-not-at-top,wrong-import-position
from benchmarks import upstream_torch_parts as torch_parts  # pylint: disable=g-import-not-at-top,wrong-import-position
from bds_jax.models import appearance_losses as al  # pylint: disable=g-import-not-at-top,wrong-import-position
from bds_jax.models import vgg  # pylint: disable=g-import-not-at-top,wrong-import-position
from bds_jax.train import appearance_step  # pylint: disable=g-import-not-at-top,wrong-import-position

SETTINGS = {'jax_float32': 'JAX f32', 'jax_bfloat16': 'JAX bf16', 'torch_float32': 'torch f32',
            'torch_bf16': 'torch bf16ac'}
PARTS = ('encoder', 'decoder', 'vgg19', 'regressor', 'regressor_encoder', 'optimizer')
ROWS = PARTS + ('whole', 'sum')
LABELS = {'encoder': 'encoder', 'decoder': 'decoder (+ posture stream)',
          'vgg19': 'VGG19 perceptual loss', 'regressor': 'regressor (5 Adam updates)',
          'regressor_encoder': "regressor's 5 no-grad encoder passes (upstream only)",
          'optimizer': 'optimizer (Adam, all params)', 'whole': 'whole step',
          'sum': 'sum of parts'}
ENCODER, DECODER = ('app_up', 'app_down'), ('pose_up', 'decoder')

flags.DEFINE_integer('size', 256, 'Image size (paper, H3.6M: 256; a multiple of 16).')
flags.DEFINE_integer('batch', 12, 'Batch size (paper: 12).')
flags.DEFINE_integer('steps', 5, 'Timed calls per part (after one untimed warm-up call).')
flags.DEFINE_list('settings', list(SETTINGS), f'Columns, of {", ".join(SETTINGS)}.')
flags.DEFINE_bool('count_flops', True, 'Count each JAX part\'s FLOPs with XLA.')
flags.DEFINE_bool('eigen_convolutions', True, 'As train.py does for appearance runs: XLA:CPU '
                  'convolutions on its own kernels, not YNNPACK (bds_jax/xla_cpu.py).')
FLAGS = flags.FLAGS


def _subtree(params, names):
  return {k: params[k] for k in names}


def check_cover(params, enc_grads, dec_grads):
  """The encoder's and the decoder's parts differentiate disjoint halves of the model that
  together are all of it, and each parameter gets a nonzero gradient from its part."""
  assert not set(enc_grads) & set(dec_grads), (set(enc_grads), set(dec_grads))
  grads = {**enc_grads, **dec_grads}
  assert jax.tree.structure(grads) == jax.tree.structure(params), set(params) ^ set(grads)
  shapes = jax.tree.map(lambda g, p: g.shape == p.shape, grads, params)
  assert all(jax.tree.leaves(shapes)), shapes
  live = jax.jit(lambda g: jax.tree.map(lambda x: jnp.any(x != 0), g))(grads)
  dead = [jax.tree_util.keystr(path) for path, ok in jax.tree_util.tree_leaves_with_path(
      jax.device_get(live)) if not ok]
  assert not dead, f'parameters without a gradient from their part: {dead}'


def jax_parts(dtype, size, batch_size, steps, count_flops, vgg_weights, batch,
              whole_step=True):
  """({row: seconds}, {row: flops}) of the JAX parts and (whole_step) the whole step at
  `dtype`."""
  cfg = common.appearance_config(size, batch_size, dtype)
  setup, state = appearance_step.build(cfg, num_frames=100_000)
  assert setup.disc_def is None  # H3.6M: no discriminator
  batch = jax.device_put(batch)
  params, md = state['params'], setup.model_def
  k_enc, k_dec = jax.random.split(jax.random.key(0))

  def encoder(enc, rest, appearance, key):
    codes, vjp = jax.vjp(lambda e: al.encode({**rest, **e}, appearance, key, model_def=md), enc)
    return codes, vjp(jax.tree.map(jnp.ones_like, codes))[0]

  def decoder(dec, rest, latents, stickman, appearance, key):
    out, vjp = jax.vjp(lambda d, z: nnx.merge(md, {**rest, **d}).decode(
        stickman, z, key=key, appearance=appearance), dec, latents)
    return out, vjp(jnp.ones_like(out))

  def perceptual(pred, image, mask, weights):
    return jax.value_and_grad(
        lambda p: al.likelihood(weights, p, image, setup.loss, mask)[0])(pred)

  def optimizer(params, opt, grads):
    updates, opt = setup.tx.update(grads, opt, params)
    return optax.apply_updates(params, updates), opt

  enc_args = (_subtree(params, ENCODER), _subtree(params, DECODER), batch['appearance'], k_enc)
  codes, enc_grads = jax.jit(encoder)(*enc_args)
  dec_args = (_subtree(params, DECODER), _subtree(params, ENCODER), codes[2], batch['stickman'],
              batch['appearance'], k_dec)
  pred, (dec_grads, _) = jax.jit(decoder)(*dec_args)
  check_cover(params, enc_grads, dec_grads)
  grads = {**enc_grads, **dec_grads}
  parts = {
      'encoder': (encoder, enc_args),
      'decoder': (decoder, dec_args),
      'vgg19': (perceptual, (pred, batch['image'], batch['person_mask'], vgg_weights)),
      'regressor': (functools.partial(appearance_step.regressor_update, setup),
                    (state['reg'], state['reg_opt'], codes[0], batch['appearance_keypoints'])),
      'optimizer': (optimizer, (params, state['opt'], grads)),
  }
  if whole_step:
    parts['whole'] = (functools.partial(appearance_step.train_step, setup),
                      (state, batch, vgg_weights))
  flops = ({k: common.xla_flops(fn, *args) for k, (fn, args) in parts.items()}
           if count_flops else {})
  secs = {}
  for name in ('encoder', 'decoder', 'vgg19', 'regressor'):
    fn, args = parts[name]
    secs[name] = common.median_seconds(jax.jit(fn), *args, repeats=steps)
  # The optimizer and the whole step donate (as a training loop does): they thread copies.
  copies = jax.tree.map(jnp.copy, (params, state['opt']))
  step_opt = jax.jit(optimizer, donate_argnums=(0, 1))

  def run_opt(g):
    nonlocal copies
    copies = step_opt(*copies, g)
    return copies

  secs['optimizer'] = common.median_seconds(run_opt, grads, repeats=steps)
  if whole_step:
    secs['whole'] = common.train_step_seconds(jax.jit(parts['whole'][0], donate_argnums=0),
                                              state, batch, vgg_weights, repeats=steps)
  return secs, flops


def measure(size=256, batch=12, steps=5, settings=tuple(SETTINGS), count_flops=True,
            log=print, whole_step=True) -> dict:
  """{'seconds': {row: {setting: s}}, 'flops': {setting: {row: flops}}, 'table': text};
  whole_step=False leaves out the whole-step row (the test's shortcut: its compile is most
  of a tiny run)."""
  unknown = set(settings) - set(SETTINGS)
  if unknown:
    raise ValueError(f'unknown settings {sorted(unknown)}; known: {", ".join(SETTINGS)}.')
  seconds = {row: {} for row in ROWS}
  flops = {}
  jax_settings = [s for s in settings if s.startswith('jax_')]
  if jax_settings:
    vgg_weights = jax.device_put(vgg.convert_arrays(vgg.random_arrays(0)))
    data = common.appearance_batch(batch, size)
  for s in jax_settings:
    secs, flops[s] = jax_parts(s[len('jax_'):], size, batch, steps, count_flops, vgg_weights,
                               data, whole_step)
    for row, sec in secs.items():
      seconds[row][s] = sec
    log(f'  timed {SETTINGS[s]}: ' + ', '.join(f'{k} {v:.3f} s' for k, v in secs.items()))
  torch_settings = [s for s in settings if s.startswith('torch_')]
  if torch_settings and not torch_step.available():
    log('PyTorch not installed: its columns are skipped (pip install -r '
        'benchmarks/requirements.txt).')
    torch_settings = []
  elif torch_settings:
    log(f'PyTorch {torch_step.torch.__version__}: {common.torch_kernels()}')
  for s in torch_settings:
    bf16 = s == 'torch_bf16'
    secs = torch_parts.time_parts(size, batch, steps, bf16=bf16)
    if whole_step:
      secs['whole'] = torch_step.time_step(size, batch, steps=steps, bf16=bf16)
    for row, sec in secs.items():
      seconds[row][s] = sec
    log(f'  timed {SETTINGS[s]}: ' + ', '.join(f'{k} {v:.3f} s' for k, v in secs.items()))
  columns = jax_settings + torch_settings
  for s in columns:
    seconds['sum'][s] = sum(seconds[p][s] for p in PARTS if s in seconds[p])
  for s in jax_settings:
    if flops[s]:
      flops[s]['sum'] = sum(flops[s][p] for p in PARTS if p in flops[s])
  return {'seconds': seconds, 'flops': flops,
          'table': table(seconds, flops, columns, jax_settings)}


def table(seconds, flops, columns, jax_settings) -> str:
  width = max(len(v) for v in LABELS.values())
  lines = ['seconds per call; JAX/torch = JAX\'s fastest / PyTorch\'s fastest (> 1: JAX slower)',
           f'{"part":<{width}} ' + ' '.join(f'{SETTINGS[s]:>12}' for s in columns)
           + f' {"JAX/torch":>10}']
  for row in ROWS:
    cells = [f'{seconds[row][s]:12.3f}' if s in seconds[row] else f'{"–":>12}' for s in columns]
    best = {lib: min((v for s, v in seconds[row].items() if s.startswith(lib)), default=None)
            for lib in ('jax_', 'torch_')}
    ratio = best['jax_'] / best['torch_'] if best['jax_'] and best['torch_'] else None
    mark = '  where XLA loses' if ratio and ratio > 1.1 and row in PARTS else ''
    lines.append(f'{LABELS[row]:<{width}} ' + ' '.join(cells)
                 + (f' {ratio:9.2f}x' if ratio else f' {"–":>10}') + mark)
  flop_cols = [s for s in jax_settings if flops.get(s)]
  if flop_cols:
    lines += ['', f'{"JAX part (XLA cost analysis)":<{width}} ' + ' '.join(
        f'{"GFLOP " + SETTINGS[s][4:]:>10} {"GFLOP/s":>8}' for s in flop_cols)]
    for row in ROWS:
      if row == 'regressor_encoder':
        continue
      cells = []
      for s in flop_cols:
        f, sec = flops[s].get(row), seconds[row].get(s)
        cells.append(f'{f / 1e9:10.2f} {f / sec / 1e9:8.1f}' if f and sec else f'{"–":>19}')
      lines.append(f'{LABELS[row]:<{width}} ' + ' '.join(cells))
  return '\n'.join(lines)


def main(argv):
  del argv
  common.appearance_preamble(FLAGS.size, FLAGS.eigen_convolutions)
  print(f'shapes: batch {FLAGS.batch}, {FLAGS.size}x{FLAGS.size}, H3.6M settings; median of '
        f'{FLAGS.steps} timed calls per part after one untimed call')
  result = measure(FLAGS.size, FLAGS.batch, FLAGS.steps, FLAGS.settings, FLAGS.count_flops)
  print()
  print(result['table'])
  print('(JAX bf16 runs the model\'s convolutions in bf16 and VGG19 in float32, as its train '
        'step does (vgg19_features casts to float32); PyTorch\'s autocast runs VGG19 in bf16 '
        'too. PyTorch\'s encoder runs upstream\'s unused final encoder block, upstream\'s cost. '
        'Its sum of parts includes the no-grad encoder passes; the JAX step has none: one '
        'encoder pass serves both updates. The parts leave out the KL and adversarial terms.)')
  assert all(math.isfinite(v) for row in result['seconds'].values() for v in row.values())


if __name__ == '__main__':
  app.run(main)
