"""umap: one UMAP of posterior codes of test windows beside as many flow and N(0, I)
samples (PNG by class and by set, and an HTML scatter that plays a clip on hover), with the
k-NN class purity of the windows in behavior space against start-pose space."""

import dataclasses
import os

import jax

from bds_jax.synthesis import embedding
from bds_jax.synthesis import outputs
from bds_jax.synthesis import session
from bds_jax.synthesis.session import option

HELP = 'posterior codes vs flow and prior samples (PNG + interactive HTML)'


@dataclasses.dataclass
class Options(session.Common):
  points: int = option(2000, 'Test windows embedded, and samples per prior.')
  k: int = option(5, 'Nearest windows the class purity counts.')


def _pct(x: float) -> str:
  return f'{100 * x:.0f}%'


def run(s: session.Session, o: Options) -> dict:
  sampler, name = s.sampler, o.name or 'umap'
  codes, sets, labels, clips, stats = embedding.collect(sampler, s.windows('test'), o.points,
                                                        jax.random.key(o.seed), k=o.k)
  xy = embedding.fit(codes, o.seed)
  os.makedirs(s.out_dir, exist_ok=True)
  title = f'UMAP of behavior space ({s.config.data.name}, test split)'
  embedding.write_png(os.path.join(s.out_dir, f'{name}.png'), xy, sets, labels, title)
  embedding.write_html(os.path.join(s.out_dir, f'{name}.html'), xy, sets, labels, clips,
                       title, sampler.fps)
  n = stats['test windows']
  per_set = {x: sets.count(x) for x in dict.fromkeys(sets)}
  caption = (f'One UMAP embedding of {len(xy)} codes: '
             + ', '.join(f'{c} {x}' for x, c in per_set.items()) +
             f' (left: the windows by class, {stats["classes"]} classes; right: the sets). '
             f'Of each of the {n} windows\' {stats["k"]} nearest windows of other sequences, '
             f'{_pct(stats["k-NN class purity, behavior space (μ)"])} share its class in behavior '
             f'space (μ, not the 2-D picture) and '
             f'{_pct(stats["k-NN class purity, start-pose space"])} in start-pose space '
             f'(chance {_pct(stats["chance (sum of squared class shares)"])}). The HTML version '
             'plays a clip when a larger point is hovered.')
  entry = {'name': name, 'command': 'umap', 'title': title, 'still': f'{name}.png',
           'html': f'{name}.html', 'points': int(len(xy)), 'caption': caption,
           'stats': {**stats, **{f'points: {x}': c for x, c in per_set.items()}},
           'workdir': s.run.path}
  outputs.add_entry(s.out_dir, entry)
  return entry
