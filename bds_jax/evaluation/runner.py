"""Runs the evaluation suites on a trained run (and baseline runs) and writes the reports."""

import logging
import os
import time

import tqdm

from bds_jax import inference
from bds_jax.evaluation import context
from bds_jax.evaluation import diversity
from bds_jax.evaluation import gt_transfer
from bds_jax.evaluation import hmp
from bds_jax.evaluation import realism
from bds_jax.evaluation import report
from bds_jax.evaluation import transfer

log = logging.getLogger(__name__)

SUITES = {'transfer': transfer.run, 'realism': realism.run, 'diversity': diversity.run,
          'hmp': hmp.run, 'gt_transfer': gt_transfer.run}


def parse_suites(spec: str) -> list[str]:
  names = [s.strip() for s in spec.split(',') if s.strip()]
  if names == ['all']:
    return list(SUITES)
  unknown = [s for s in names if s not in SUITES]
  if unknown or not names:
    raise ValueError(f'eval_config.suites={spec!r}: unknown suite(s) {unknown}; choose from '
                     f'{list(SUITES)} or "all".')
  return names


def evaluate(config, eval_config, workdir: str, baseline_workdirs=(),
             out_dir: str | None = None) -> dict:
  """Evaluates `workdir` (checked against `config`) and any baseline runs; writes reports.

  Returns the results dict also written to <out_dir>/results.json (default <workdir>/eval).
  """
  suites = parse_suites(eval_config.suites)
  workdir = os.path.abspath(workdir)
  run_config = inference.read_config(workdir, 'behavior')
  context.check_config(config, run_config, workdir)
  results = {'eval_config': eval_config.to_dict(), 'dataset': run_config.data.name, 'runs': {}}
  for wd in [workdir, *baseline_workdirs]:
    wd = os.path.abspath(wd)
    if wd != workdir:
      other = inference.read_config(wd, 'behavior')
      if (other.data.name, other.data.builder_config) != (run_config.data.name,
                                                          run_config.data.builder_config):
        raise ValueError(f'Baseline {wd} was trained on {other.data.name} '
                         f'({other.data.builder_config or "default"}), the main run on '
                         f'{run_config.data.name}: compare runs on the same data.')
    ctx = context.load(wd, eval_config, eval_config.flow_workdir if wd == workdir else '')
    name = ctx.name
    while name in results['runs']:
      name += "'"
    run = {'workdir': wd, 'variant': ctx.config.model.variant, 'step': ctx.behavior.step,
           'flow': ctx.flow.workdir if ctx.flow else None,
           'flow_step': ctx.flow.step if ctx.flow else None, 'suites': {}, 'seconds': {}}
    for suite in tqdm.tqdm(suites, desc=f'evaluate {name}', disable=not eval_config.progress_bar):
      start = time.perf_counter()
      run['suites'][suite] = SUITES[suite](ctx, eval_config)
      run['seconds'][suite] = time.perf_counter() - start
      log.info('%s / %s done in %.1f s.', name, suite, run['seconds'][suite])
    results['runs'][name] = run
  report.write(out_dir or os.path.join(workdir, 'eval'), results, run_config.data.name)
  return results
