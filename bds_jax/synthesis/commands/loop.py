"""loop: one long sequence of chained samples, each starting from the last pose of the one
before."""

import dataclasses

import jax

from bds_jax import errors
from bds_jax.synthesis import behavior
from bds_jax.synthesis import session
from bds_jax.synthesis.session import option

HELP = 'one long sequence of chained samples'


@dataclasses.dataclass
class Options(session.Common, session.MotionFiles):
  target: str = option('test:auto', 'The first start posture: <split>:<i> | <split>:auto | a '
                       'pose or motion file.')
  num_behaviors: int = option(4, 'Chained behaviors.')
  prior: str = option('auto', 'The prior sampled (auto: the flow when the run has one, else '
                      'N(0, I)).', ('auto', 'flow', 'gaussian'))


def run(s: session.Session, o: Options) -> dict:
  sampler = s.sampler
  prior = o.prior if o.prior != 'auto' else 'flow' if sampler.has_flow else 'gaussian'
  if prior == 'flow' and not sampler.has_flow:
    raise errors.InputError(f'--prior=flow, but {s.run.path} has no flow run in flow/ (train '
                            'one with configs/flow.py): use --prior=gaussian.')
  figure = behavior.loop(sampler, s.clips(o.target, 1, '--target'), o.num_behaviors,
                         jax.random.key(o.seed), prior)
  return session.save(s, o, 'loop', figure)
