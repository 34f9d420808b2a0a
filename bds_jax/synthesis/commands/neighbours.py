"""neighbours: a re-enactment's nearest test windows in behavior space (μ) versus in posture
space (start pose), with the share of each that has the source's class, for this re-enactment
and averaged over many."""

import dataclasses

from bds_jax.synthesis import behavior
from bds_jax.synthesis import session
from bds_jax.synthesis.session import option

HELP = 'a re-enactment\'s nearest test windows in behavior space vs posture space'


@dataclasses.dataclass
class Options(session.Common, session.MotionFiles):
  source: str = option('test:auto', 'The source behavior: <split>:<i> | <split>:auto | a file.')
  target: str = option('test:auto', 'The start posture it is re-enacted from.')
  k: int = option(5, 'Neighbours shown.')
  points: int = option(2000, 'Re-enactments the class share is averaged over.')


def run(s: session.Session, o: Options) -> dict:
  source = s.clips(o.source, 1, '--source')
  target = s.clips(o.target, 1, '--target', 1, source.labels)
  figure = behavior.neighbours(s.sampler, s.windows('test'), source, target, o.k, many=o.points,
                               seed=o.seed)
  return session.save(s, o, 'neighbours', figure)
