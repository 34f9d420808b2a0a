"""The evaluator protocol: registry and schedule (batching: `bds_jax.sharding.batched`).

An evaluator is a module `bds_jax/evaluation/<type>.py` with a function

    def run(ctx: Context, **kwargs) -> Iterator[tuple[str, value]]

that yields named metrics (`bds_jax.evaluation.context.Context` is what it sees: the model,
the data, batching; while training also the train state and the trainer's step functions).
Config selects it, as in big_vision:

    config.evals.<name> = dict(type='<module>', every_steps=N, final=True, prefix='eval/', **kw)

Trainers run each entry every N steps (0: not periodically) and after the last step when
`final` is set; the metrics are logged as `<prefix><metric>` and must then be scalars, or
(H, W, 3) uint8 images (figures), which go to TensorBoard; nested dicts are flattened
(`<prefix><metric>/<key>`) and words or None left out of the logs, so the suites of
evaluate.py run as training evaluators too.
evaluate.py runs the paper suites named by `eval_config.suites`, with `eval_config.<suite>` as
keyword arguments (plus `seed`); their values may be nested dicts, and the module's optional
`table(results, dataset)` renders its <suite>.md (report.write). A figure is an evaluator that
writes files and yields nothing. So a new metric is one new module here, named in a config.
"""

import dataclasses
import importlib
import re
from types import ModuleType

SCHEDULE_KEYS = ('type', 'every_steps', 'final', 'prefix')


def get(type_name: str) -> ModuleType:
  """The evaluator module `bds_jax/evaluation/<type_name>.py`."""
  if not re.fullmatch(r'[a-z][a-z0-9_]*', type_name or ''):
    raise ValueError(f'Evaluator type {type_name!r} must name a module of bds_jax/evaluation/.')
  name = f'bds_jax.evaluation.{type_name}'
  try:
    module = importlib.import_module(name)
  except ModuleNotFoundError as e:
    if e.name != name:
      raise
    raise ValueError(f'Unknown evaluator type {type_name!r}: there is no '
                     f'bds_jax/evaluation/{type_name}.py.') from None
  if not callable(getattr(module, 'run', None)):
    raise ValueError(f'bds_jax/evaluation/{type_name}.py is not an evaluator: it has no run().')
  return module


def collect(module: ModuleType, ctx, **kwargs) -> dict:
  """Runs one evaluator and returns its metrics as a dict (in the order it yields them)."""
  return dict(module.run(ctx, **kwargs))


@dataclasses.dataclass(frozen=True)
class Spec:
  """One `config.evals` entry."""
  name: str
  module: ModuleType
  every_steps: int
  final: bool
  prefix: str
  kwargs: dict

  def due(self, step: int) -> bool:
    return self.every_steps > 0 and step % self.every_steps == 0


def parse(evals) -> list[Spec]:
  """`config.evals` (name -> dict with a type) -> Specs, in name order (ConfigDict sorts keys)."""
  specs = []
  for name, entry in (evals or {}).items():
    entry = dict(entry)
    if 'type' not in entry:
      raise ValueError(f'config.evals.{name} needs a type (a module of bds_jax/evaluation/).')
    specs.append(Spec(name, get(entry['type']), int(entry.get('every_steps', 0)),
                      bool(entry.get('final', True)), str(entry.get('prefix', f'{name}/')),
                      {k: v for k, v in entry.items() if k not in SCHEDULE_KEYS}))
  return specs


def _loggable(key: str, value):
  """An evaluator's (key, value) as the training logs take them: numbers and figures, nested
  dicts (evaluate.py's suite results) flattened to 'key/inner'; words and None left out."""
  if isinstance(value, dict):
    for k, v in value.items():
      yield from _loggable(f'{key}/{k}', v)
  elif isinstance(value, (bool, str, list, tuple)) or value is None:
    return
  else:
    yield key, value


class Evaluators:
  """A trainer's evaluators on one Context; `run(state, step)` is all the training loop calls."""

  def __init__(self, evals, ctx):
    self.specs = parse(evals)
    self.ctx = ctx
    self._last_step = {}

  def run(self, state, step: int, final: bool = False) -> dict:
    """Runs the evaluators due at `step` (final: those not yet run at this step); their metrics.

    All of them see one Context, so step functions they share run once.
    """
    if final:
      due = [s for s in self.specs if s.final and self._last_step.get(s.name) != step]
    else:
      due = [s for s in self.specs if s.due(step)]
    out = {}
    if due:
      ctx = self.ctx.at(state, step)
      for spec in due:
        for key, value in spec.module.run(ctx, **spec.kwargs):
          out.update(_loggable(spec.prefix + key, value))
        self._last_step[spec.name] = step
    return out
