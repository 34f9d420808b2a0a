"""Timing and FLOP-counting helpers, and the model setups, shared by the benchmark scripts."""

import contextlib
import functools
import os
import platform
import time
import types

import jax
import jax.numpy as jnp
import numpy as np


def machine() -> str:
  dev = jax.devices()[0]
  return (f'{platform.processor() or platform.machine()}, {jax.device_count()} x '
          f'{dev.device_kind} ({dev.platform}), JAX {jax.__version__}')


# /proc/cpuinfo flag -> name: the extensions a CPU step's speed turns on (bf16 matmuls run
# natively only with AVX-512 BF16 or AMX; without them both libraries emulate bf16).
VECTOR_EXTENSIONS = (('avx2', 'AVX2'), ('avx512f', 'AVX-512'), ('avx512_bf16', 'AVX-512 BF16'),
                     ('amx_bf16', 'AMX-BF16'))


def appearance_preamble(size: int, eigen_convolutions: bool):
  """The appearance benchmarks' start: check --size, pick XLA:CPU's convolution kernels as
  train.py does, and print what the figures depend on (machine, CPU extensions, XLA flags,
  the load: another busy process slows PyTorch's multi-threaded CPU kernels many times over)."""
  from absl import app  # pylint: disable=g-import-not-at-top
  from bds_jax import xla_cpu  # pylint: disable=g-import-not-at-top
  if size % 16:
    raise app.UsageError(f'--size={size} must be a multiple of 16 (VGG19 max-pools).')
  if eigen_convolutions:
    xla_cpu.prefer_eigen_convolutions()
  print(f'machine: {machine()}')
  print(f'CPU: {cpu_features()}')
  print(f'XLA_FLAGS: {os.environ.get("XLA_FLAGS", "")!r}')
  print(f'load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (another busy '
        'process slows PyTorch\'s multi-threaded CPU kernels many times over)')


def cpu_features(cpuinfo: str = '/proc/cpuinfo') -> str:
  """'<CPU model>; <extensions it has>, no <those it lacks>', from /proc/cpuinfo (Linux), or
  what `platform` knows elsewhere."""
  try:
    with open(cpuinfo) as f:
      text = f.read()
  except OSError:
    return f'{platform.processor() or platform.machine()} (no {cpuinfo}: extensions unknown)'
  first = text.strip().split('\n\n')[0]  # the first processor's block
  fields = dict(line.split(':', 1) for line in first.splitlines() if ':' in line)
  fields = {k.strip(): v.strip() for k, v in fields.items()}
  flags = set(fields.get('flags', '').split())
  have = [name for flag, name in VECTOR_EXTENSIONS if flag in flags]
  lack = [name for flag, name in VECTOR_EXTENSIONS if flag not in flags]
  return (f'{fields.get("model name", platform.machine())}; '
          + ', '.join(have or ['none of ' + '/'.join(n for _, n in VECTOR_EXTENSIONS)])
          + (f', no {", ".join(lack)}' if have and lack else ''))


def torch_kernels() -> str:
  """Which CPU kernels PyTorch picked: its ATen vector capability and whether oneDNN serves
  its convolutions (and so bf16 autocast)."""
  import torch  # pylint: disable=g-import-not-at-top
  capability = getattr(torch.backends.cpu, 'get_cpu_capability', lambda: 'unknown')()
  return (f'ATen {capability}, oneDNN {"on" if torch.backends.mkldnn.is_available() else "off"}'
          f', {torch.get_num_threads()} threads')


def median_seconds(fn, *args, repeats: int = 5, warmup: int = 1) -> float:
  """Median wall time of fn(*args), blocking on its outputs."""
  for _ in range(warmup):
    jax.block_until_ready(fn(*args))
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - t)
  return float(np.median(times))


def train_step_seconds(step, state, *args, repeats: int = 5) -> float:
  """Median seconds per call of a jitted, state-donating step(state, *args) -> (state, metrics).

  The state is threaded through the calls (it is donated), as in a training loop; the first
  call compiles and is not timed.
  """
  holder = [state]

  def run(*a):
    holder[0], metrics = step(holder[0], *a)
    return metrics

  return median_seconds(run, *args, repeats=repeats)


def matmul_gflops(n: int = 4096, dtype=jnp.float32, repeats: int = 5) -> float:
  """The rate of one large square matmul: the practical compute ceiling of this device."""
  a = jax.random.normal(jax.random.key(0), (n, n), dtype)
  t = median_seconds(jax.jit(lambda x: x @ x), a, repeats=repeats)
  return 2 * n**3 / t / 1e9


@contextlib.contextmanager
def unrolled_scans():
  """While active, every lax.scan is traced fully unrolled.

  XLA's cost analysis counts a while-loop body once, whatever its trip count, so FLOPs of a
  scanned RNN are undercounted by ~T x. Counting on an unrolled trace of the same function
  gives XLA's own count of the real computation.
  """
  original = jax.lax.scan
  jax.lax.scan = functools.partial(original, unroll=True)
  try:
    yield
  finally:
    jax.lax.scan = original


def xla_flops(fn, *args, compiled: bool = True) -> float:
  """FLOPs of fn(*args) by XLA's cost analysis, with all scans unrolled.

  compiled=False reads the same analysis off the unrolled HLO before XLA optimises it: no
  compile (seconds instead of minutes for a long scan), the same matmul and convolution
  counts, elementwise work counted slightly differently (behavior step at the paper's shapes:
  173.3 against 173.5 GFLOP; at the smoke preset's width 32, 6% lower).
  """
  # A fresh function object: JAX caches traces per function, and the unrolled trace must not
  # be reused by a later jax.jit(fn) that is timed.
  with unrolled_scans():
    lowered = jax.jit(lambda *a: fn(*a)).lower(*args)
    cost = lowered.compile().cost_analysis() if compiled else lowered.cost_analysis()
  if isinstance(cost, (list, tuple)):
    cost = cost[0]
  return float(cost['flops'])


def conv_gflops(batch: int, size: int, channels: int, dtype, repeats: int = 5) -> float:
  """The rate of one 3x3 same-padded NHWC convolution, channels -> channels."""
  # NumPy operands: an eager jax.random.normal compiles a program per shape (seconds on a CPU).
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal((batch, size, size, channels), np.float32), dtype)
  w = jnp.asarray(rng.standard_normal((3, 3, channels, channels), np.float32), dtype)
  conv = jax.jit(lambda x, w: jax.lax.conv_general_dilated(
      x, w, (1, 1), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC')))
  t = median_seconds(conv, x, w, repeats=repeats)
  return 2 * batch * size * size * channels * channels * 9 / t / 1e9


def appearance_config(size: int, batch: int, dtype: str):
  """The paper's H3.6M appearance config (configs/appearance.py:h36m) at `size` px."""
  from configs import appearance  # pylint: disable=g-import-not-at-top
  cfg = appearance.get_config('h36m')
  cfg.model.image_size = size
  cfg.data.batch_size = batch
  cfg.model.compute_dtype = dtype
  cfg.loss.adversary_clamp = 1.2  # upstream's; a speed benchmark needs no chance level
  return cfg


def appearance_batch(batch: int, size: int) -> dict:
  """A random appearance training batch (H3.6M: the appearance input is the image)."""
  rng = np.random.default_rng(0)
  image = rng.uniform(-1, 1, (batch, size, size, 3)).astype(np.float32)
  return {'image': image, 'appearance': image,  # H3.6M: the appearance input is the image
          'stickman': np.where(rng.uniform(size=image.shape) > 0.9, 1.0, -1.0).astype(
              np.float32),
          'appearance_keypoints': rng.uniform(size=(batch, 17, 2)).astype(np.float32),
          'person_mask': (rng.uniform(size=(batch, size, size, 1)) > 0.5).astype(np.float32)}


def sampling_models(bcfg, fcfg, dcfg, code: int) -> types.SimpleNamespace:
  """Random-weight behavior model (width = code), flow and diffusion prior, split for
  bds_jax.sampling: the time of sampling does not depend on the weights. dcfg.model.num_labels
  must be resolved (0: observation-only)."""
  from bds_jax.models import build  # pylint: disable=g-import-not-at-top
  from flax import nnx  # pylint: disable=g-import-not-at-top
  bcfg.model.width = code
  bcfg.model.frame = 'world'  # the body frame needs a run's normalizer; same cost
  vae, _ = build.create_models(bcfg, jax.random.key(0))
  model_def, vae_params = nnx.split(vae)
  flow_def, flow_params, flow_buffers = build.split_flow(build.create_flow(fcfg, code))
  prior_def, prior_params, prior_stats = build.split_diffusion(
      build.create_diffusion(dcfg, code, None))
  return types.SimpleNamespace(
      model_def=model_def, vae_params=vae_params, flow_def=flow_def, flow_params=flow_params,
      flow_buffers=flow_buffers, prior_def=prior_def, prior_params=prior_params,
      prior_stats=prior_stats)
