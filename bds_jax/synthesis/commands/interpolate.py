"""interpolate: the codes between two behaviors, linear (top row) and spherical (bottom),
decoded from one start posture."""

import dataclasses

from bds_jax.synthesis import behavior
from bds_jax.synthesis import session
from bds_jax.synthesis.session import option

HELP = 'linear and spherical paths between two behaviors\' codes'


@dataclasses.dataclass
class Options(session.Common, session.MotionFiles):
  source: str = option('test:auto', 'The two behaviors: <split>:<i>,<j> | <split>:auto | a '
                       'pose or motion file of two clips.')
  target: str = option('test:auto', 'The start posture: <split>:<i> | <split>:auto | a file.')
  steps: int = option(5, 'Clips from one code to the other.')


def run(s: session.Session, o: Options) -> dict:
  pair = s.clips(o.source, 2, '--source')
  figure = behavior.interpolate(s.sampler, pair, s.clips(o.target, 1, '--target', 1), o.steps)
  return session.save(s, o, 'interpolate', figure)
