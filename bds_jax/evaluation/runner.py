"""Runs the evaluation suites on a trained run (and baseline runs) and writes the reports.

A suite is an evaluator (`bds_jax.evaluation.common`): `eval_config.suites` names them, and
each runs with its section of the eval config (`eval_config.<suite>`) and `eval_config.seed`.
What applies to a run follows its kind (its config.json's trainer; `bds_jax.kinds`): the
suites (`Kind.eval_suites`), the fields checked against the given --config
(`Kind.checked_fields`) and the context the suites see (`Kind.eval_context`, one of
`CONTEXTS`). A prior (flow, diffusion) is evaluated through the behavior run it belongs to.
"""

import logging
import json
import os
import time

import ml_collections
import tqdm

from bds_jax import errors
from bds_jax import kinds
from bds_jax import run_layout
from bds_jax import runs
from bds_jax.evaluation import appearance
from bds_jax.evaluation import common
from bds_jax.evaluation import context
from bds_jax.evaluation import report

log = logging.getLogger(__name__)


def _behavior_context(workdir: str, eval_config, main: bool):
  """A behavior run's Context (with its priors) and what results.json records of it."""
  ctx = context.load(workdir, eval_config, eval_config.flow_workdir if main else '')
  flow = ctx.flow
  return ctx, {'variant': ctx.config.model.variant, 'step': ctx.behavior.step,
               'flow': flow.run.path if flow else None,
               'flow_step': flow.step if flow else None}


def _appearance_context(workdir: str, eval_config, main: bool):
  del main
  ctx = context.load_appearance(workdir, eval_config, name=os.path.basename(workdir))
  return ctx, {'step': ctx.step}


# Kind.eval_context -> fn(workdir, eval_config, main run?) -> (the suites' ctx, the run's
# entries in results.json).
CONTEXTS = {'behavior': _behavior_context, 'appearance': _appearance_context}


def available_suites(eval_config, trainer: str = 'behavior') -> list[str]:
  """The suites eval_config configures (its sections, each one suite's settings) that apply
  to runs of `trainer`, by name."""
  suites = kinds.get(trainer).eval_suites
  return [k for k, v in eval_config.items()
          if isinstance(v, ml_collections.ConfigDict) and k in suites]


def parse_suites(spec: str, eval_config, trainer: str = 'behavior') -> list[str]:
  available = available_suites(eval_config, trainer)
  names = [s.strip() for s in spec.split(',') if s.strip()]
  if names == ['all']:
    return available
  unknown = [s for s in names if s not in available]
  if unknown or not names:
    raise errors.ConfigError(f'eval_config.suites={spec!r}: unknown suite(s) {unknown} for this '
                     f'{trainer} run (--workdir); choose from {available} or "all".')
  return names


def _evaluated_kind(run_config, workdir: str) -> kinds.Kind:
  """The kind of the run in workdir, if evaluate.py evaluates runs of it."""
  kind = kinds.get(run_config.trainer, f'{workdir} (its config.json)')
  if kind.eval_context is None and kind.trained_over:
    raise errors.ConfigError(
        f'{workdir} holds a {kind.name} run: evaluate the {kind.trained_over} run it was '
        'trained over (the priors in its folder are used automatically, or pass '
        '--eval_config.flow_workdir).')
  if kind.eval_context not in CONTEXTS:
    evaluated = sorted(k.name for k in kinds.KINDS.values() if k.eval_context in CONTEXTS)
    raise errors.ConfigError(f'{workdir} holds a {kind.name!r} run; evaluate.py evaluates '
                             f'{evaluated}.')
  return kind


def run_suite(suite: str, ctx: context.Context, eval_config) -> dict:
  """One suite's results on ctx, with its eval-config section as keyword arguments."""
  return common.collect(common.get(suite), ctx, seed=eval_config.seed,
                        **eval_config[suite].to_dict())


def evaluate(config, eval_config, workdir: str, baseline_workdirs=(),
             out_dir: str | None = None) -> dict:
  """Evaluates `workdir` (checked against `config`) and any baseline runs; writes reports.

  Returns the results dict also written to <out_dir>/results.json (default <workdir>/eval).
  """
  main = runs.Run(workdir, eval_config.data_dir or None)
  run_config = runs.read_config(main.path)
  kind = _evaluated_kind(run_config, main.path)
  trainer = kind.name
  suites = parse_suites(eval_config.suites, eval_config, trainer)
  kinds.check_given_config(config, run_config, main.path)
  if 'appearance' in suites and eval_config.appearance.get('lpips_weights'):
    appearance.lpips_params(eval_config.appearance.lpips_weights)  # a bad file fails here
  results = {'eval_config': eval_config.to_dict(), 'dataset': run_config.data.name,
             'trainer': trainer, 'runs': {}}
  for wd in [main.path, *baseline_workdirs]:
    wd = os.path.abspath(wd)
    if wd != main.path:
      other = runs.read_config(wd)
      if other.trainer != trainer:
        raise errors.ConfigError(f'Baseline {wd} is a {other.trainer!r} run, the main run a '
                         f'{trainer!r} run: compare runs of one kind.')
      if (other.data.name, other.data.builder_config) != (run_config.data.name,
                                                          run_config.data.builder_config):
        raise errors.ConfigError(f'Baseline {wd} was trained on {other.data.name} '
                         f'({other.data.builder_config or "default"}), the main run on '
                         f'{run_config.data.name}: compare runs on the same data.')
    ctx, entries = CONTEXTS[kind.eval_context](wd, eval_config, wd == main.path)
    run = {'workdir': wd, 'trainer': trainer, **entries, 'suites': {}, 'seconds': {}}
    name = ctx.name
    while name in results['runs']:
      name += "'"
    for suite in tqdm.tqdm(suites, desc=f'evaluate {name}', disable=not eval_config.progress_bar):
      start = time.perf_counter()
      run['suites'][suite] = run_suite(suite, ctx, eval_config)
      run['seconds'][suite] = time.perf_counter() - start
      log.info('%s / %s done in %.1f s.', name, suite, run['seconds'][suite])
    results['runs'][name] = run
  out_dir = out_dir or main.eval_dir
  _keep_earlier_suites(results, os.path.join(out_dir, run_layout.RESULTS_FILE))
  report.write(out_dir, results, run_config.data.name)
  return results


PRIOR_FREE_SUITES = ('transfer', 'gt_transfer')  # posterior means only: no flow or prior


def _keep_earlier_suites(results: dict, path: str):
  """Adds the suites of an earlier results.json that were not run now, for each run whose
  checkpoint is the same one (and its flow too, unless the suite uses no prior), so that
  suites can be evaluated one at a time."""
  try:
    with open(path) as f:
      earlier = json.load(f)
  except (OSError, ValueError):
    return
  for name, run in results['runs'].items():
    old = (earlier.get('runs') or {}).get(name) if isinstance(earlier, dict) else None
    if not isinstance(old, dict) or any(old.get(k) != run.get(k) for k in ('workdir', 'step')):
      continue
    same_flow = all(old.get(k) == run.get(k) for k in ('flow', 'flow_step'))
    kept = [s for s in old.get('suites', {})
            if s not in run['suites'] and (same_flow or s in PRIOR_FREE_SUITES)]
    for suite in kept:
      run['suites'][suite] = old['suites'][suite]
      run['seconds'][suite] = old.get('seconds', {}).get(suite)
    if kept:
      log.info('%s: kept %s from the earlier evaluation of the same checkpoint (%s).', name,
               ', '.join(kept), path)
