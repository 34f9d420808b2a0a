"""Mixed precision: matmuls in a compute dtype, everything else (parameters, optimizer state,
losses, recurrent state) in float32.

`model.compute_dtype` / `flow.compute_dtype` select it; 'float32' means no casting at all.
"""

import jax.numpy as jnp

COMPUTE_DTYPES = ('float32', 'bfloat16')


def resolve(name: str):
  """Config name -> the dtype passed to layers (None for float32: compute as stored)."""
  if name not in COMPUTE_DTYPES:
    raise ValueError(f'compute_dtype={name!r} must be one of {COMPUTE_DTYPES}.')
  return None if name == 'float32' else jnp.dtype(name)


def cast(x, dtype):
  return x if dtype is None else x.astype(dtype)


def accumulation(dtype):
  """Accumulation type for `dtype` operands: float32, or the operands' own when None."""
  return None if dtype is None else jnp.float32


def matmul(a, b, dtype):
  """a @ b with operands in `dtype` (None: as they are), accumulated in float32."""
  return jnp.matmul(cast(a, dtype), cast(b, dtype), preferred_element_type=accumulation(dtype))
