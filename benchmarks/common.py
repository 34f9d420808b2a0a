"""Timing and FLOP-counting helpers shared by the benchmark scripts."""

import contextlib
import functools
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np


def machine() -> str:
  dev = jax.devices()[0]
  return (f'{platform.processor() or platform.machine()}, {jax.device_count()} x '
          f'{dev.device_kind} ({dev.platform}), JAX {jax.__version__}')


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


def xla_flops(fn, *args) -> float:
  """FLOPs of fn(*args) by XLA's cost analysis, with all scans unrolled."""
  # A fresh function object: JAX caches traces per function, and the unrolled trace must not
  # be reused by a later jax.jit(fn) that is timed.
  with unrolled_scans():
    cost = jax.jit(lambda *a: fn(*a)).lower(*args).compile().cost_analysis()
  if isinstance(cost, (list, tuple)):
    cost = cost[0]
  return float(cost['flops'])
