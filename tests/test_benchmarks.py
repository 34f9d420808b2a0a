"""benchmarks/appearance_parts.py at a tiny shape: every part row is in the table, with a finite
positive time, and the JAX parts together differentiate every model parameter (the script's
own check). PyTorch's columns are left out (its eager CPU timings are slow to gather and not
what is tested); the ratio column is checked on made-up PyTorch numbers."""

import math

from benchmarks import appearance_parts


def test_appearance_parts_table_has_every_row():
  result = appearance_parts.measure(size=32, batch=2, steps=1, settings=['jax_float32'],
                                    count_flops=False, log=lambda _: None, whole_step=False)
  seconds = result['seconds']
  for row in appearance_parts.ROWS:
    if row in ('regressor_encoder', 'whole'):  # upstream's passes: a PyTorch-only row;
      assert not seconds[row]                 # the whole step: left out here
      continue
    sec = seconds[row]['jax_float32']
    assert math.isfinite(sec) and sec > 0, (row, sec)
    assert appearance_parts.LABELS[row] in result['table']
  assert math.isclose(seconds['sum']['jax_float32'],
                      sum(seconds[p]['jax_float32'] for p in appearance_parts.PARTS
                          if p != 'regressor_encoder'))

  # JAX's fastest over PyTorch's fastest, and the marker only on parts > 10% slower.
  seconds = {row: dict(v, torch_float32=2.0, torch_bf16=1.0) for row, v in seconds.items()}
  seconds['whole']['jax_float32'] = 3.0
  seconds['encoder']['jax_float32'] = 1.05
  seconds['decoder']['jax_float32'] = 1.5
  table = appearance_parts.table(seconds, {}, ['jax_float32', 'torch_float32', 'torch_bf16'],
                                 ['jax_float32'])
  lines = {l.split('  ')[0]: l for l in table.splitlines()}
  assert lines['encoder'].rstrip().endswith('1.05x')
  assert '1.50x  where XLA loses' in lines['decoder (+ posture stream)']
