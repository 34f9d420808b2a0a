"""sample: behaviors drawn from the flow and from N(0, I), side by side, from chosen start
postures."""

import dataclasses

import jax

from bds_jax.synthesis import behavior
from bds_jax.synthesis import session
from bds_jax.synthesis.session import option

HELP = 'behaviors from the flow and from N(0, I), from chosen start postures'


@dataclasses.dataclass
class Options(session.Common, session.MotionFiles):
  target: str = option('test:auto', 'Start postures: <split>:<i>,... | <split>:auto | a pose '
                       'or motion file.')
  num: int = option(3, 'Samples per row (and start postures picked by auto, at most 2).')


def run(s: session.Session, o: Options) -> dict:
  starts = s.clips(o.target, min(o.num, 2), '--target')
  figure = behavior.samples(s.sampler, starts, o.num, jax.random.key(o.seed))
  return session.save(s, o, 'sample', figure)
