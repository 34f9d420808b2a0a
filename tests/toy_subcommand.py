"""A subcommand registered from the tests (docs/architecture.md, "A new figure or subcommand"):
the start postures of a few test windows, as one still row."""

import dataclasses

from bds_jax.synthesis import behavior
from bds_jax.synthesis import session
from bds_jax.synthesis.session import option
from bds_jax.viz.animation import Panel

HELP = 'start postures of test windows'


@dataclasses.dataclass
class Options(session.Common):
  target: str = option('test:auto', 'Windows whose start postures are drawn.')
  num: int = option(2, 'How many (auto).')


def run(s: session.Session, o: Options) -> dict:
  clips = s.clips(o.target, o.num, '--target')
  figure = behavior.Figure([[Panel(t, p[0]) for t, p in zip(clips.titles, clips.poses)]],
                           'Start postures', 'The first pose of each window.',
                           {'windows': len(clips)})
  return session.save(s, o, 'toy', figure)
