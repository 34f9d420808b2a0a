"""benchmarks/accelerator_check.py in its reduced CPU mode: every row of the table is there, with
a finite number or an explicit 'skipped: <reason>', and the JSON holds the same rows.

Compiling the seven train steps takes over a minute on XLA:CPU even at tiny shapes, so the test
runs them with --trace_only: each step is built abstractly and traced (what breaks when a model
or a batch changes), and the float32 ones, scans unrolled, are lowered and their FLOPs counted
by XLA. The ceilings, sampling and the HMP suite run for real. `--reduced` without
--trace_only gives the CPU table in docs/speed.md, "Accelerator check".
"""

import json
import math

from benchmarks import accelerator_check

STEP_ROWS = [f'{m}_{d}' for m in ('behavior', 'flow', 'diffusion', 'appearance')
             for d in ('float32', 'bfloat16')]
ROWS = (['torch_behavior_float32', 'torch_appearance_float32', 'torch_appearance_bf16']
        + [f'{c}_{d}' for d in ('float32', 'bfloat16') for c in ('matmul', 'conv')]
        + STEP_ROWS + ['sample_gaussian', 'sample_flow', 'sample_diffusion', 'hmp_suite'])


def _finite(x):
  return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def test_reduced_check_has_every_row(data_dir, tmp_path, capsys):
  out = tmp_path / 'check.json'
  rc = accelerator_check.main(['--reduced', '--trace_only', f'--json={out}',
                               f'--data_dir={data_dir}'])
  printed = capsys.readouterr().out
  result = json.loads(out.read_text())
  rows = {r['id']: r for r in result['rows']}
  assert rc == 0, [r['error'] for r in result['rows'] if r['error']]
  assert [r['id'] for r in result['rows']] == ROWS
  for r in result['rows']:
    assert not r['error'], r
    assert _finite(r['seconds']) or r['skipped'], r
  for row_id in ('matmul_float32', 'conv_bfloat16', 'sample_flow', 'sample_diffusion',
                 'hmp_suite'):
    assert _finite(rows[row_id]['seconds']) and _finite(rows[row_id]['rate']), rows[row_id]
  for row_id in STEP_ROWS:
    if row_id == 'diffusion_bfloat16':
      assert 'no compute dtype' in rows[row_id]['skipped']
      continue
    assert rows[row_id]['skipped'].startswith('--trace_only'), rows[row_id]
    if row_id.endswith('float32'):  # traced and lowered: XLA counted its work
      assert _finite(rows[row_id]['gflop']), rows[row_id]
  assert rows['torch_behavior_float32']['skipped'].startswith('--reduced')
  assert rows['hmp_suite']['hmp']['windows'] == 4
  assert math.isfinite(rows['hmp_suite']['hmp']['ADE']['diffusion'])

  # stdout: the device, JAX's version and the date, then one markdown line per row.
  assert f'JAX {result["jax"]}' in printed and f'date: {result["date"]}' in printed
  lines = [l for l in printed.splitlines() if l.startswith('| ') and not l.startswith('| check')]
  assert len(lines) == len(ROWS)
  for line, r in zip(lines, result['rows']):
    cells = [c.strip() for c in line.strip('|').split('|')]
    assert cells[0] == r['name']
    assert cells[1].startswith('skipped: ') or math.isfinite(float(cells[1])), line
  assert result['table'] in printed


def test_cpu_features_name_the_bf16_extensions(tmp_path):
  """The benchmarks' CPU line: the model and which of AVX2 / AVX-512 / AVX-512 BF16 / AMX it has
  (bf16 steps run natively only with the last two)."""
  from benchmarks import common  # pylint: disable=g-import-not-at-top
  info = tmp_path / 'cpuinfo'
  info.write_text('processor\t: 0\nmodel name\t: AMD EPYC 9B14\n'
                  'flags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512vl\n\n'
                  'processor\t: 1\nmodel name\t: AMD EPYC 9B14\nflags\t\t: fpu sse2 avx2\n')
  assert common.cpu_features(str(info)) == ('AMD EPYC 9B14; AVX2, AVX-512, AVX-512 BF16, '
                                            'no AMX-BF16')
  info.write_text('model name\t: Old\nflags\t\t: fpu sse2\n')
  assert common.cpu_features(str(info)) == 'Old; none of AVX2/AVX-512/AVX-512 BF16/AMX-BF16'
  assert 'extensions unknown' in common.cpu_features(str(tmp_path / 'missing'))
