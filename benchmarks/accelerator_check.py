"""One-shot accelerator check: the project's speed figures on one device, in one table.

  python benchmarks/accelerator_check.py [--json=check.json] [--steps=10] [--groups=...]
  python benchmarks/accelerator_check.py --reduced     # tiny shapes: checks the script on a CPU

For the day a GPU or TPU is lent: planned to fit in 8 minutes on one GPU, most of it compiling
(not yet timed on one). Nothing to install beyond requirements.txt (and `jax[cuda13]` on a GPU;
a CUDA build of torch for the PyTorch rows). It prints the device, the JAX version and the date,
then one markdown table; --json=PATH writes the same as JSON. docs/speed.md, "Accelerator
check", says what each row and column means.

Rows, at the paper's shapes (random weights: the time does not depend on them):
* the same-run ceilings: a 4096^2 matmul and a 3x3 128-channel convolution at 64^2 (batch 12),
  in float32 and bfloat16;
* the behavior, flow, diffusion and appearance train steps, in float32 and, where the model has
  a compute dtype, bfloat16: seconds per step, examples per second, achieved GFLOP/s (FLOPs from
  XLA's cost analysis of the model's float32 step, scans unrolled) and its ratio to the
  ceilings of the row's dtype;
* the upstream-equivalent PyTorch steps (benchmarks/upstream_torch_*.py) when torch sees a CUDA
  device, run first in a child process (no shared CUDA libraries or memory with JAX);
* sampling: futures per second for each prior (N(0, I), flow, diffusion), B x K futures decoded
  as the HMP suite decodes them;
* the HMP suite (bds_jax.evaluation.hmp, all three priors) on N windows of synthetic_motion, K
  futures each: its wall time, compilation included.

--reduced: tiny shapes (the smoke presets), 1 timed call per row, 4 HMP windows of the `small`
synthetic_motion build, no PyTorch. --trace_only (tests/test_accelerator_check.py) builds the
train steps abstractly and traces them instead of compiling them: XLA:CPU takes over a minute to
compile them even at tiny shapes.
"""

import argparse
import dataclasses
import datetime
import functools
import json
import math
import os
import subprocess
import sys
import time
import traceback
import types

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
import jaxlib  # pylint: disable=g-import-not-at-top,wrong-import-position
import jax.numpy as jnp  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position
from flax import nnx  # pylint: disable=g-import-not-at-top,wrong-import-position

from benchmarks import common  # pylint: disable=g-import-not-at-top,wrong-import-position
from bds_jax import sampling  # pylint: disable=g-import-not-at-top,wrong-import-position
from bds_jax import skeleton  # pylint: disable=g-import-not-at-top,wrong-import-position
from bds_jax.data import assembly  # pylint: disable=g-import-not-at-top,wrong-import-position
from bds_jax.data import hmp as hmp_data  # pylint: disable=g-import-not-at-top,wrong-import-position
from bds_jax.data.normalization import Normalizer  # pylint: disable=g-import-not-at-top,wrong-import-position
from bds_jax.evaluation import hmp as hmp_suite  # pylint: disable=g-import-not-at-top,wrong-import-position
from bds_jax.evaluation.context import Context  # pylint: disable=g-import-not-at-top,wrong-import-position
from bds_jax.models import build  # pylint: disable=g-import-not-at-top,wrong-import-position
from bds_jax.models import vgg  # pylint: disable=g-import-not-at-top,wrong-import-position
from bds_jax.train import appearance_step  # pylint: disable=g-import-not-at-top,wrong-import-position
from bds_jax.train import behavior_step  # pylint: disable=g-import-not-at-top,wrong-import-position
from bds_jax.train import diffusion_step  # pylint: disable=g-import-not-at-top,wrong-import-position
from bds_jax.train import flow_step  # pylint: disable=g-import-not-at-top,wrong-import-position
from configs import behavior  # pylint: disable=g-import-not-at-top,wrong-import-position
from configs import diffusion  # pylint: disable=g-import-not-at-top,wrong-import-position
from configs import evaluate as eval_configs  # pylint: disable=g-import-not-at-top,wrong-import-position
from configs import flow  # pylint: disable=g-import-not-at-top,wrong-import-position

GROUPS = ('ceilings', 'behavior', 'flow', 'diffusion', 'appearance', 'torch', 'sampling', 'hmp')
DTYPES = ('float32', 'bfloat16')
FLOPS_MODES = ('compiled', 'lowered', 'off')
HMP_OBSERVED, HMP_PREDICTED, HMP_STRIDE, HMP_THRESHOLD = 25, 100, 25, 0.5


@dataclasses.dataclass(frozen=True)
class Sizes:
  """The shapes of one mode. Presets name configs/*.py presets ('' = the paper's)."""
  behavior_preset: str = ''   # batch 64, 50 frames, width 1024
  flow_preset: str = ''       # 15 blocks, 2 x 1024
  diffusion_preset: str = ''  # h36m's: width 512, 4 blocks, k = 50, batch 64
  image_size: int = 256       # appearance: H3.6M, batch 12, VGG19 perceptual loss
  image_batch: int = 12
  appearance_small: bool = False  # the smoke preset's channel counts, 3 scales, 2 regressor
                                  # steps (XLA:CPU's compile time grows with the scales)
  matmul_n: int = 4096
  conv: tuple = (12, 64, 128)  # batch, size, channels of the 3x3 ceiling convolution
  sample_batch: int = 64      # observations per sampling call ...
  sample_k: int = 50          # ... x futures each
  hmp_windows: int = 5168     # Human3.6M's protocol window count
  hmp_k: int = 50
  hmp_batch: int = 0          # model-call batch of the suite (0: configs/evaluate.py's, 256)
  builder_config: str = ''    # synthetic_motion build ('' = default, 'small')
  steps: int = 10             # timed repeats per row (median)


FULL = Sizes()
REDUCED = Sizes(behavior_preset='smoke', flow_preset='smoke', diffusion_preset='smoke',
                image_size=32, image_batch=2, appearance_small=True, matmul_n=128,
                conv=(2, 16, 16), sample_batch=4, sample_k=3, hmp_windows=4, hmp_k=3,
                hmp_batch=12, builder_config='small', steps=1)
# In REDUCED, sampling's shapes are the suite's (B = N windows, B·K = its batch), so the suite
# reuses sampling's compiled programs.


def _row(row_id: str, name: str, group: str, **fields) -> dict:
  out = dict(id=row_id, name=name, group=group, seconds=None, rate=None, unit='',
             gflop=None, gflops_per_s=None, pct_matmul=None, pct_conv=None, vs_torch=None,
             note='', skipped=None, error=None, wall_s=None)
  out.update(fields)
  return out


class Check:
  """Runs the rows of one mode and keeps them in order."""

  def __init__(self, sizes: Sizes, args):
    self.sizes = sizes
    self.args = args
    self.rows: list[dict] = []
    self.start = time.perf_counter()
    self.ceilings: dict = {}   # dtype -> (matmul GFLOP/s, conv GFLOP/s)
    self.torch: dict = {}      # torch row id -> seconds
    self.flops: dict = {}      # model -> XLA FLOPs per step (of its first row, float32)

  def log(self, msg: str):
    print(f'[{time.perf_counter() - self.start:7.1f} s] {msg}', file=sys.stderr, flush=True)

  def add(self, row: dict, fn=None):
    """Fills `row` with fn() (a dict of fields) unless it is skipped; an exception is the
    row's error (the other rows still run). Appends it."""
    t = time.perf_counter()
    if row['group'] not in self.args.groups:
      row['skipped'] = 'not selected (--groups)'
    elif row['skipped'] is None and fn is not None:
      try:
        row.update(fn())
      except Exception as e:  # pylint: disable=broad-except
        first = (str(e).strip().splitlines() or [''])[0][:300]
        row['error'] = f'{type(e).__name__}: {first}'
        traceback.print_exc(file=sys.stderr)
    row['wall_s'] = time.perf_counter() - t
    self.rows.append(row)
    status = (f'skipped: {row["skipped"]}' if row['skipped'] else
              f'error: {row["error"]}' if row['error'] else f'{row["seconds"]:.4g} s')
    self.log(f'{row["name"]}: {status} ({row["wall_s"]:.1f} s wall)')
    return row

  # ---------------------------------------------------------------------------------- helpers
  def ratios(self, dtype: str, flops: float | None, sec: float) -> dict:
    if not flops:
      return {}
    gfs = flops / sec / 1e9
    mm, cv = self.ceilings.get(dtype, (None, None))
    return {'gflop': flops / 1e9, 'gflops_per_s': gfs,
            'pct_matmul': 100 * gfs / mm if mm else None,
            'pct_conv': 100 * gfs / cv if cv else None}

  def count_flops(self, model: str, fn, *args):
    """XLA's FLOPs of step fn(*args), counted once per model, on its first (float32) row and
    used for every row of that model: the same work in any dtype (None: --flops=off)."""
    if self.args.flops == 'off':
      return None
    if model not in self.flops:
      t = time.perf_counter()
      try:
        self.flops[model] = common.xla_flops(fn, *args, compiled=self.args.flops == 'compiled')
      except Exception as e:  # pylint: disable=broad-except
        if self.args.flops != 'lowered':
          raise
        # A backend without cost analysis before compiling: count on the compiled step.
        self.log(f'{model}: no cost analysis of the lowered step ({type(e).__name__}); '
                 'compiling it to count')
        self.flops[model] = common.xla_flops(fn, *args, compiled=True)
      self.log(f'{model}: {self.flops[model] / 1e9:.3g} GFLOP per step ({self.args.flops} '
               f'cost analysis, {time.perf_counter() - t:.1f} s)')
    return self.flops[model]

  def trace_only(self, model: str, build) -> dict:
    """--trace_only: the step is built with abstract shapes (jax.eval_shape) and traced; a
    model's first row is traced with its scans unrolled and lowered, and XLA counts its FLOPs.
    Nothing is compiled or run."""
    holder = {}

    def abstract():
      step_fn, state, args = build()
      holder['step_fn'] = step_fn
      return state, args

    state, args = jax.eval_shape(abstract)
    if model in self.flops:  # a model's later rows (bfloat16): traced only
      jax.jit(holder['step_fn']).trace(state, *args)
      return dict(skipped='--trace_only: built abstractly and traced, not compiled')
    flops = self.flops[model] = common.xla_flops(holder['step_fn'], state, *args,
                                                 compiled=False)
    return dict(gflop=flops / 1e9, skipped=f'--trace_only: built abstractly, traced and lowered '
                                           f'({flops / 1e9:.3g} GFLOP per step), not compiled')

  def step_row(self, model: str, dtype: str, build, examples: int, unit: str, note: str = ''):
    """Times one train step: build() -> (step_fn(state, *args), state, args)."""

    def run():
      if self.args.trace_only:
        return self.trace_only(model, build)
      t = time.perf_counter()
      step_fn, state, args = build()
      t_build = time.perf_counter()
      flops = self.count_flops(model, step_fn, state, *args)
      t_flops = time.perf_counter()
      compiled = jax.jit(step_fn, donate_argnums=0).lower(state, *args).compile()
      t_compile = time.perf_counter()
      sec = common.train_step_seconds(compiled, state, *args, repeats=self.sizes.steps)
      torch_sec = self.torch.get(f'torch_{model}_float32')
      return dict(seconds=sec, rate=examples / sec, unit=unit,
                  vs_torch=torch_sec / sec if torch_sec else None, note=note,
                  phases_s={'build': t_build - t, 'flops': t_flops - t_build,
                            'compile': t_compile - t_flops,
                            'timing': time.perf_counter() - t_compile},
                  **self.ratios(dtype, flops, sec))

    return run


# ---------------------------------------------------------------------------------- models
def behavior_config(sizes: Sizes, impl: str = 'fused', dtype: str = 'float32'):
  cfg = behavior.get_config(sizes.behavior_preset or None)
  cfg.model.lstm_impl = impl
  cfg.model.compute_dtype = dtype
  return cfg


def random_poses(batch: int, frames: int, seed: int = 0):
  return jax.random.normal(jax.random.key(seed), (batch, frames, skeleton.POSE_DIM))


def build_behavior(sizes: Sizes, impl: str, dtype: str):
  cfg = behavior_config(sizes, impl, dtype)
  setup, state = behavior_step.build(cfg, steps_per_epoch=1000)
  batch = {'poses': random_poses(cfg.data.batch_size, cfg.data.seq_len + 1)}
  return functools.partial(behavior_step.train_step, setup), state, (batch,)


def build_flow(sizes: Sizes, dtype: str):
  bcfg = behavior_config(sizes)
  fcfg = flow.get_config(sizes.flow_preset or None)
  fcfg.flow.compute_dtype = dtype
  bsetup, bstate = behavior_step.build(bcfg, steps_per_epoch=1)
  setup, state = flow_step.build(fcfg, bcfg.model.width, bsetup.model_def)
  batch = {'poses': random_poses(fcfg.data.batch_size, bcfg.data.seq_len + 1)}
  return functools.partial(flow_step.train_step, setup), state, (bstate['vae'], batch)


def diffusion_config(sizes: Sizes):
  dcfg = diffusion.get_config(sizes.diffusion_preset or None)
  dcfg.model.num_labels = 0       # BeLFusion's observation-only prior (the hmp suite's)
  return dcfg


def build_diffusion(sizes: Sizes, dtype: str):
  del dtype  # float32 only: the diffusion prior has no compute dtype
  bcfg = behavior_config(sizes)
  dcfg = diffusion_config(sizes)
  dcfg.optim.obs_steps = 0        # every step is a denoiser step (the second, longer phase)
  bsetup, bstate = behavior_step.build(bcfg, steps_per_epoch=1)
  setup, state = diffusion_step.build(dcfg, bcfg.model.width, bsetup.model_def, None)
  b = dcfg.data.batch_size
  batch = {'observation': random_poses(b, dcfg.data.observed, 1),
           'poses': random_poses(b, bcfg.data.seq_len + 1)}
  return functools.partial(diffusion_step.train_step, setup), state, (bstate['vae'], batch)


def appearance_config(sizes: Sizes, dtype: str):
  cfg = common.appearance_config(sizes.image_size, sizes.image_batch, dtype)
  if sizes.appearance_small:
    cfg.model.bottleneck_factor = 3
    cfg.model.nf_start, cfg.model.nf_max = 4, 8
    cfg.model.regressor_channels = cfg.model.regressor_hidden = 8
    cfg.loss.regressor_steps = 2
  return cfg


def build_appearance(sizes: Sizes, dtype: str, vgg_weights):
  cfg = appearance_config(sizes, dtype)
  setup, state = appearance_step.build(cfg, num_frames=100_000)
  batch = jax.device_put(common.appearance_batch(sizes.image_batch, sizes.image_size))
  return functools.partial(appearance_step.train_step, setup), state, (batch, vgg_weights)


# ---------------------------------------------------------------------------------- PyTorch
TORCH_CHILD = r'''
import json, sys, traceback
sys.path.insert(0, {root!r})
out = {{}}
try:
  import torch
except ImportError:
  print(json.dumps({{'skipped': 'torch is not installed (a CUDA build of torch; '
                                'benchmarks/requirements.txt has the CPU one)'}}))
  sys.exit(0)
if not torch.cuda.is_available():
  print(json.dumps({{'skipped': f'torch {{torch.__version__}} sees no CUDA device'}}))
  sys.exit(0)
torch.backends.cuda.matmul.allow_tf32 = {tf32}
torch.backends.cudnn.allow_tf32 = {tf32}
torch.backends.cudnn.benchmark = True
from benchmarks import upstream_torch_appearance, upstream_torch_step
out['version'] = torch.__version__
out['device'] = torch.cuda.get_device_name()
runs = {{
    'torch_behavior_float32': lambda: upstream_torch_step.time_step(
        {width}, {batch}, {frames}, {dim}, steps={steps}, device='cuda'),
    'torch_appearance_float32': lambda: upstream_torch_appearance.time_step(
        {size}, {image_batch}, steps={steps}, device='cuda'),
    'torch_appearance_bf16': lambda: upstream_torch_appearance.time_step(
        {size}, {image_batch}, steps={steps}, bf16=True, device='cuda'),
}}
for key, fn in runs.items():
  try:
    out[key] = fn()
  except Exception as e:
    traceback.print_exc()
    out[key] = f'{{type(e).__name__}}: {{str(e).strip()[:200]}}'
  torch.cuda.empty_cache()
print(json.dumps(out))
'''


def tf32_like_jax() -> bool:
  """Whether XLA's float32 matmuls may use TF32 on a GPU (JAX's default precision does)."""
  precision = str(jax.config.jax_default_matmul_precision or 'default').lower()
  return precision not in ('highest', 'float32', 'f32_f32_f32', 'precision.highest')


def torch_rows(check: Check, sizes: Sizes):
  """The PyTorch rows, measured in a child process before JAX starts its backend."""
  ids = (('torch_behavior_float32', 'PyTorch upstream-eq. behavior step, float32', 'behavior',
          'sequences/s'),
         ('torch_appearance_float32', 'PyTorch upstream-eq. appearance step, float32',
          'appearance', 'images/s'),
         ('torch_appearance_bf16', 'PyTorch upstream-eq. appearance step, bf16 autocast',
          'appearance', 'images/s'))
  reason, result = None, {}
  if 'torch' not in check.args.groups:
    reason = 'not selected (--groups)'
  elif check.args.reduced:
    reason = '--reduced (no PyTorch)'
  elif not check.args.torch:
    reason = '--notorch'
  else:
    bcfg = behavior_config(sizes)
    code = TORCH_CHILD.format(
        root=ROOT, tf32=tf32_like_jax(), width=bcfg.model.width, batch=bcfg.data.batch_size,
        frames=bcfg.data.seq_len, dim=skeleton.POSE_DIM, steps=sizes.steps,
        size=sizes.image_size, image_batch=sizes.image_batch)
    check.log('PyTorch rows: starting a child process')
    t = time.perf_counter()
    try:
      proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            timeout=check.args.torch_timeout, cwd=ROOT, check=False)
      lines = proc.stdout.strip().splitlines()
      result = json.loads(lines[-1]) if lines else {}
      if proc.returncode or not lines:
        sys.stderr.write(proc.stderr[-3000:])
        result = {'error': f'child process exited {proc.returncode}: '
                           f'{(proc.stderr.strip().splitlines() or [""])[-1][:200]}'}
    except subprocess.TimeoutExpired:
      result = {'error': f'child process ran past --torch_timeout={check.args.torch_timeout} s'}
    check.log(f'PyTorch rows: {time.perf_counter() - t:.1f} s')
    reason = result.get('skipped')
  check.torch_info = {k: result[k] for k in ('version', 'device') if k in result}
  check.torch_info['tf32'] = tf32_like_jax()
  for row_id, name, model, unit in ids:
    row = _row(row_id, name, 'torch', skipped=reason)
    if reason is None:
      value = result.get(row_id, result.get('error', 'no result'))
      if isinstance(value, float):
        check.torch[row_id] = value
        examples = bcfg.data.batch_size if model == 'behavior' else sizes.image_batch
        fp32 = result.get(f'torch_{model}_float32')
        row.update(seconds=value, rate=examples / value, unit=unit,
                   vs_torch=fp32 / value if isinstance(fp32, float) else None,
                   note=f'torch {result.get("version")}, TF32 '
                        f'{"on" if tf32_like_jax() else "off"} (as XLA\'s float32)')
      else:
        row['error'] = str(value)
    check.add(row)


# ---------------------------------------------------------------------------------- sampling
def _numpy_weights(tree, seed: int):
  """Random float arrays of an abstract pytree's shapes, drawn by NumPy."""
  rng = np.random.default_rng(seed)

  def leaf(s):
    if not jnp.issubdtype(s.dtype, jnp.floating):
      raise TypeError(f'not a float parameter: {s}')
    return jnp.asarray((0.05 * rng.standard_normal(s.shape)).astype(s.dtype))

  return jax.tree.map(leaf, tree)


def make_sampling_models(sizes: Sizes, reduced: bool):
  """Random-weight behavior model, flow and diffusion prior (common.sampling_models).

  Reduced mode draws the behavior and diffusion weights with NumPy into the constructors'
  shapes: their initialisers, run eagerly, compile ~100 small XLA programs (seconds on a CPU).
  """
  bcfg = behavior_config(sizes)
  fcfg = flow.get_config(sizes.flow_preset or None)
  dcfg = diffusion_config(sizes)
  if not reduced:
    m = common.sampling_models(bcfg, fcfg, dcfg, bcfg.model.width)
    m.vae_params = nnx.to_pure_dict(m.vae_params)
    return bcfg, dcfg, m
  bcfg.model.frame = 'world'
  code = bcfg.model.width
  model_def, vae_params = build.abstract_behavior(bcfg)
  prior_def, prior_params, prior_stats = build.abstract_diffusion(dcfg, code, None)
  flow_def, flow_params, flow_buffers = build.split_flow(build.create_flow(fcfg, code))
  return bcfg, dcfg, types.SimpleNamespace(
      model_def=model_def, vae_params=_numpy_weights(vae_params, 0), flow_def=flow_def,
      flow_params=flow_params, flow_buffers=flow_buffers, prior_def=prior_def,
      prior_params=_numpy_weights(prior_params, 1),
      prior_stats={k: jnp.full(v.shape, 1.0 if k == 'code_hi' else -1.0, v.dtype)
                   for k, v in prior_stats.items()})  # the constructor's scaling, [-1, 1]


def hmp_steps(bcfg) -> int:
  """Frames each HMP future is decoded for (the suite's: 100 frames at 50 Hz)."""
  return math.ceil(HMP_PREDICTED / bcfg.data.frame_lag)


def sampling_rows(check: Check, sizes: Sizes, models):
  """Futures per second of each prior: B·K codes, decoded as the HMP suite decodes them."""
  b, k = sizes.sample_batch, sizes.sample_k
  key = jax.random.key(2)

  def codes(prior, bcfg, dcfg, m, obs):
    if prior == 'gaussian':
      return jax.jit(lambda: jax.random.normal(key, (b * k, bcfg.model.width)))
    if prior == 'flow':
      return lambda: sampling.flow_codes(m.flow_def, m.flow_params, m.flow_buffers, key, b * k)
    return lambda: sampling.diffusion_codes(m.prior_def, m.prior_params, m.prior_stats, key,
                                            obs, k, None, jnp.float32(1.0)).reshape(b * k, -1)

  def run(prior):
    bcfg, dcfg, m = models()
    steps = hmp_steps(bcfg)
    obs = random_poses(b, dcfg.data.observed, 1)
    start = jnp.repeat(obs[:, -1], k, axis=0)
    fn = codes(prior, bcfg, dcfg, m, obs)
    futures = lambda: sampling.decode(m.model_def, m.vae_params, fn(), start, steps)
    codes_s = common.median_seconds(fn, repeats=sizes.steps)
    sec = common.median_seconds(futures, repeats=sizes.steps)
    return dict(seconds=sec, rate=b * k / sec, unit='futures/s',
                note=f'{b} x {k} futures of {steps} frames; codes alone {codes_s:.3g} s')

  for prior, name in (('gaussian', 'N(0, I) codes + decode'), ('flow', 'flow codes + decode'),
                      ('diffusion', 'diffusion codes (DDIM) + decode')):
    check.add(_row(f'sample_{prior}', f'sampling: {name}', 'sampling'),
              functools.partial(run, prior))


# ---------------------------------------------------------------------------------- HMP
def _concat(a, b):
  """Two SequenceSets of one dataset as one (the test split, then more windows)."""
  return dataclasses.replace(
      a, poses=list(a.poses) + list(b.poses), labels=np.concatenate([a.labels, b.labels]),
      subjects=np.concatenate([a.subjects, b.subjects]),
      extras={k: np.concatenate([v, b.extras[k]]) for k, v in a.extras.items()
              if k in b.extras}, split=f'{a.split}+{b.split}')


def hmp_row(check: Check, sizes: Sizes, models, data_dir: str):
  """bds_jax.evaluation.hmp.run on random-weight models over N windows, K futures each."""

  def run():
    bcfg, _, m = models()
    bcfg.data.data_dir = data_dir
    bcfg.data.builder_config = sizes.builder_config
    bcfg.data.prepare = 'auto'
    t_data = time.perf_counter()
    seqs = assembly.load_split(bcfg.data, bcfg.data.eval_split)
    source = f'synthetic_motion{"/" + sizes.builder_config if sizes.builder_config else ""}'
    available = len(hmp_data.protocol_windows(seqs, HMP_OBSERVED, HMP_PREDICTED, HMP_STRIDE))
    where = f'{source} test split'
    if available < sizes.hmp_windows:  # too few test windows: the train split's come next
      seqs = _concat(seqs, assembly.load_split(bcfg.data, bcfg.data.train_split))
      where = f'{source} test split ({available} windows), then train'
    normalizer = Normalizer.fit(seqs.poses)
    windows = assembly.make_windows(bcfg.data, seqs, normalizer)
    data_s = time.perf_counter() - t_data
    sampler = sampling.Sampler(
        m.model_def, m.vae_params, normalizer, seq_len=bcfg.data.seq_len,
        frame_lag=bcfg.data.frame_lag, flow_def=m.flow_def,
        flow_state={'params': m.flow_params, 'buffers': m.flow_buffers},
        diffusion_def=m.prior_def,
        diffusion_state={'params': m.prior_params, 'stats': m.prior_stats})
    batch_size = sizes.hmp_batch or eval_configs.get_config().batch_size
    ctx = Context('random weights', bcfg, normalizer, None, windows, batch_size,
                  sampler=sampler)
    times, results = {}, {}
    t = t0 = time.perf_counter()
    for key, value in hmp_suite.run(
        ctx, seed=0, num_samples=sizes.hmp_k, observed=HMP_OBSERVED, predicted=HMP_PREDICTED,
        stride=HMP_STRIDE, threshold=HMP_THRESHOLD, max_windows=sizes.hmp_windows,
        classifier_checkpoint=''):
      now = time.perf_counter()
      if key == 'num_windows':
        times['windows + multimodal GT'] = now - t
      elif key in ('gaussian', 'flow', 'diffusion', 'oracle_code'):
        times[key] = now - t
      results[key] = value
      t = now
    total = time.perf_counter() - t0
    n = results['num_windows']
    if n < sizes.hmp_windows:
      raise ValueError(f'only {n} HMP windows in {where}; asked for {sizes.hmp_windows}')
    for prior in ('gaussian', 'flow', 'diffusion'):
      if not np.isfinite(results[prior]['ADE']):
        raise ValueError(f'the {prior} row\'s ADE is not finite')
    split = ', '.join(f'{k} {v:.1f} s' for k, v in times.items())
    return dict(seconds=total, rate=n / total, unit='windows/s',
                note=f'N = {n} windows ({where}), K = {sizes.hmp_k}, 3 priors, model calls in '
                     f'batches of {batch_size}, compiles included, data loading '
                     f'({data_s:.1f} s) not: {split}',
                hmp={'windows': n, 'k': sizes.hmp_k, 'batch': batch_size, 'data_s': data_s,
                     'parts_s': times,
                     'ADE': {p: results[p]['ADE'] for p in ('gaussian', 'flow', 'diffusion')}})

  check.add(_row('hmp_suite', 'HMP suite (bds_jax.evaluation.hmp)', 'hmp'), run)


# ---------------------------------------------------------------------------------- the run
def _once(fn):
  """fn's result (or exception) on every call, computed on the first."""
  memo = []

  def call():
    if not memo:
      try:
        memo.append((fn(), None))
      except Exception as e:  # pylint: disable=broad-except
        memo.append((None, e))
    if memo[0][1] is not None:
      raise memo[0][1]
    return memo[0][0]

  return call


def run_check(args) -> dict:
  if not args.reduced:
    return _run_check(args)
  # Reduced mode runs on a CPU, where every eager jax.random call of a new shape compiles a
  # threefry program (seconds each while models initialise); 'rbg' keys compile in a fraction.
  with jax.default_prng_impl('rbg'):
    return _run_check(args)


def _run_check(args) -> dict:
  sizes = dataclasses.replace(REDUCED if args.reduced else FULL,
                              **{k: v for k, v in (('steps', args.steps),
                                                   ('hmp_windows', args.hmp_windows),
                                                   ('hmp_k', args.hmp_k),
                                                   ('hmp_batch', args.hmp_batch)) if v})
  check = Check(sizes, args)
  date = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')
  torch_rows(check, sizes)  # first: the child has the device to itself
  dev = jax.devices()[0]
  header = {
      'date': date,
      'device': f'{jax.device_count()} x {dev.device_kind} ({dev.platform})',
      'host': f'{common.cpu_features()}; {os.cpu_count()} CPUs',
      'jax': jax.__version__,
      'jaxlib': jaxlib.__version__,
      'matmul_precision': str(jax.config.jax_default_matmul_precision or 'default'),
      'xla_flags': os.environ.get('XLA_FLAGS', ''),
      'mode': 'reduced' if args.reduced else 'full',
      'flops': args.flops,
      'torch': check.torch_info,
      'sizes': dataclasses.asdict(sizes),
  }
  check.log(f'{header["device"]}, JAX {header["jax"]}, {header["mode"]} mode')

  # Ceilings, in each dtype.
  for dtype in DTYPES:
    d = jnp.dtype(dtype)

    def ceiling(kind, d=d, dtype=dtype):
      n, (cb, cs, cc) = sizes.matmul_n, sizes.conv
      if kind == 'matmul':
        gfs = common.matmul_gflops(n, d, repeats=max(sizes.steps, 3))
        flops = 2 * n**3
      else:
        gfs = common.conv_gflops(cb, cs, cc, d, repeats=max(sizes.steps, 3))
        flops = 2 * cb * cs * cs * cc * cc * 9
      mm, cv = check.ceilings.get(dtype, (None, None))
      check.ceilings[dtype] = (gfs, cv) if kind == 'matmul' else (mm, gfs)
      return dict(seconds=flops / gfs / 1e9, rate=gfs, unit='GFLOP/s', gflop=flops / 1e9,
                  gflops_per_s=gfs)

    n, (cb, cs, cc) = sizes.matmul_n, sizes.conv
    check.add(_row(f'matmul_{dtype}', f'ceiling: {n}² matmul, {dtype}', 'ceilings'),
              functools.partial(ceiling, 'matmul'))
    check.add(_row(f'conv_{dtype}', f'ceiling: 3×3 conv {cc}→{cc} at {cs}², batch {cb}, '
                   f'{dtype}', 'ceilings'), functools.partial(ceiling, 'conv'))

  bcfg = behavior_config(sizes)
  vgg_weights = None
  if 'appearance' in args.groups and args.trace_only:  # shapes only
    vgg_weights = jax.tree.map(
        lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), vgg.convert_arrays(
            {k: np.broadcast_to(np.float32(0), v) for k, v in vgg.ARRAY_SHAPES.items()}))
  elif 'appearance' in args.groups:
    vgg_weights = jax.device_put(vgg.convert_arrays(vgg.random_arrays(0)))
  builders = {
      'behavior': lambda dtype, impl: functools.partial(build_behavior, sizes, impl, dtype),
      'flow': lambda dtype, impl: functools.partial(build_flow, sizes, dtype),
      'diffusion': lambda dtype, impl: functools.partial(build_diffusion, sizes, dtype),
      'appearance': lambda dtype, impl: functools.partial(build_appearance, sizes, dtype,
                                                          vgg_weights),
  }
  fcfg, dcfg = flow.get_config(sizes.flow_preset or None), diffusion_config(sizes)
  shapes = {
      'behavior': (bcfg.data.batch_size, 'sequences/s',
                   f'batch {bcfg.data.batch_size}, {bcfg.data.seq_len} frames, width '
                   f'{bcfg.model.width}, {bcfg.loss.regressor_steps} regressor steps'),
      'flow': (fcfg.data.batch_size, 'codes/s',
               f'batch {fcfg.data.batch_size}, {fcfg.flow.num_blocks} blocks of '
               f'{fcfg.flow.num_layers} x {fcfg.flow.hidden_width}, encoder included'),
      'diffusion': (dcfg.data.batch_size, 'windows/s',
                    f'batch {dcfg.data.batch_size} x k = {dcfg.loss.k}, denoiser '
                    f'{dcfg.model.num_blocks} x {dcfg.model.width}, motion term decoded'),
      'appearance': (sizes.image_batch, 'images/s',
                     f'batch {sizes.image_batch}, {sizes.image_size}², VGG19 loss, '
                     f'{appearance_config(sizes, "float32").loss.regressor_steps} '
                     'regressor steps'),
  }
  for model in ('behavior', 'flow', 'diffusion', 'appearance'):
    examples, unit, note = shapes[model]
    impls = args.lstm_impls if model == 'behavior' else ('fused',)
    for impl in impls:
      for dtype in DTYPES:
        suffix = '' if impl == 'fused' else f' (lstm_impl={impl})'
        row_id = f'{model}_{dtype}' if impl == 'fused' else f'{model}_{impl}_{dtype}'
        row = _row(row_id, f'{model} train step, {dtype}{suffix}', model)
        if model == 'diffusion' and dtype != 'float32':
          row['skipped'] = 'the diffusion prior has no compute dtype (float32 only)'
        check.add(row, check.step_row(model, dtype, builders[model](dtype, impl), examples,
                                      unit, note))

  models = _once(functools.partial(make_sampling_models, sizes, args.reduced))
  sampling_rows(check, sizes, models)
  hmp_row(check, sizes, models, args.data_dir)

  return {**header, 'total_s': time.perf_counter() - check.start, 'rows': check.rows}


# ---------------------------------------------------------------------------------- output
def _num(x, digits=3) -> str:
  if x is None:
    return '–'
  if abs(x) >= 10**digits:
    return f'{x:,.0f}'
  return f'{x:.{digits}g}'


def markdown(result: dict) -> str:
  lines = ['| check | s | throughput | GFLOP/s | % matmul | % conv | vs PyTorch fp32 | note |',
           '|---|---|---|---|---|---|---|---|']
  for r in result['rows']:
    if r['skipped'] or r['error']:
      status = f'skipped: {r["skipped"]}' if r['skipped'] else f'error: {r["error"]}'
      lines.append(f'| {r["name"]} | {status} | | | | | | |')
      continue
    pct = lambda x: '–' if x is None else f'{x:.0f}%'
    ratio = lambda x: '–' if x is None else f'{x:.2f}×'
    lines.append(
        f'| {r["name"]} | {_num(r["seconds"])} | {_num(r["rate"])} {r["unit"]} | '
        f'{_num(r["gflops_per_s"])} | {pct(r["pct_matmul"])} | {pct(r["pct_conv"])} | '
        f'{ratio(r["vs_torch"])} | {r["note"]} |')
  return '\n'.join(lines)


def report(result: dict) -> str:
  torch_info = result['torch']
  t = (f'torch {torch_info["version"]} on {torch_info["device"]}' if 'version' in torch_info
       else 'no PyTorch rows')
  return '\n'.join([
      f'date: {result["date"]}',
      f'device: {result["device"]}; host: {result["host"]}',
      f'JAX {result["jax"]} (jaxlib {result["jaxlib"]}), default matmul precision '
      f'{result["matmul_precision"]}; {t}',
      f'mode: {result["mode"]}; FLOPs: {result["flops"]} cost analysis of each model\'s float32 '
      f'step (scans unrolled); % matmul / % conv: of the same-run ceilings in the row\'s dtype; '
      f'total {result["total_s"]:.0f} s',
      '',
      markdown(result),
  ])


def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument('--reduced', action='store_true',
                 help='tiny shapes, 1 timed repeat, 4 HMP windows, no PyTorch (a CPU check)')
  p.add_argument('--json', default='', help='also write the result as JSON to this path')
  p.add_argument('--steps', type=int, default=0,
                 help='timed repeats per row (default: 10; --reduced: 1)')
  p.add_argument('--hmp_windows', type=int, default=0,
                 help='HMP windows N (default: 5168, Human3.6M\'s count; --reduced: 4)')
  p.add_argument('--hmp_k', type=int, default=0, help='HMP futures per window (default 50)')
  p.add_argument('--hmp_batch', type=int, default=0,
                 help='the suite\'s model-call batch (default: configs/evaluate.py\'s, 256; '
                      '--reduced: N x K)')
  p.add_argument('--groups', default=','.join(GROUPS),
                 help=f'rows to run, a subset of {",".join(GROUPS)} (others are skipped)')
  p.add_argument('--lstm_impls', default='fused',
                 help='behavior LSTM implementations: fused and/or reference')
  p.add_argument('--flops', choices=FLOPS_MODES, default='lowered',
                 help='lowered (default): XLA\'s cost analysis of the unrolled step\'s HLO '
                      'before optimisation, no compile (within 0.5%% of the compiled count at '
                      'the paper\'s shapes); compiled: of the compiled unrolled step, as '
                      'benchmarks/behavior_step.py (one more compile per model); off')
  p.add_argument('--data_dir', default=os.path.join(ROOT, 'data', 'tfds'),
                 help='TFDS data dir of synthetic_motion (built there if missing)')
  p.add_argument('--trace_only', action='store_true',
                 help='train steps are only built abstractly, traced, lowered and their FLOPs '
                      'counted (no compile, no timing): seconds for the test of --reduced')
  p.add_argument('--notorch', dest='torch', action='store_false',
                 help='skip the PyTorch rows')
  p.add_argument('--torch_timeout', type=float, default=240.0,
                 help='seconds allowed for the PyTorch child process')
  args = p.parse_args(argv)
  args.groups = tuple(g.strip() for g in args.groups.split(',') if g.strip())
  unknown = set(args.groups) - set(GROUPS)
  if unknown:
    p.error(f'--groups: unknown {sorted(unknown)}; choose from {GROUPS}')
  args.lstm_impls = tuple(i.strip() for i in args.lstm_impls.split(',') if i.strip())
  return args


def main(argv=None) -> int:
  args = parse_args(argv)
  result = run_check(args)
  result['table'] = markdown(result)
  print(report(result))
  if args.json:
    with open(args.json, 'w') as f:
      json.dump(result, f, indent=1, default=float)
  return 1 if any(r['error'] for r in result['rows']) else 0


if __name__ == '__main__':
  sys.exit(main())
