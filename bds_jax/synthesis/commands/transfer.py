"""transfer: a grid: source behaviors along the top, target start postures down the side,
each source's code μ decoded from each target's first pose in the cells."""

import dataclasses

from bds_jax.synthesis import behavior
from bds_jax.synthesis import session
from bds_jax.synthesis.session import option

HELP = 'grid: source behaviors along the top, target start postures down the side'


@dataclasses.dataclass
class Options(session.Common, session.MotionFiles):
  source: str = option('test:auto', 'Source behaviors: <split>:<i>,... | <split>:auto | '
                       'poses.npy | a .bvh or .npz motion file.')
  target: str = option('test:auto', 'Target start postures, as --source.')
  num: int = option(3, 'Sources and targets picked by auto.')


def run(s: session.Session, o: Options) -> dict:
  sources = s.clips(o.source, o.num, '--source')
  targets = s.clips(o.target, o.num, '--target', 1, sources.labels)
  return session.save(s, o, 'transfer', behavior.transfer_grid(s.sampler, sources, targets))
