"""A 2D UMAP of behavior space: posterior codes of test windows vs flow and prior samples.

One embedding (umap-learn) of three sets of codes: μ of `n` test windows (coloured by their
class; 2 000 by default), `n` flow samples and `n` N(0, I) samples. Beside it, the k-NN class
purity of the windows in μ-space (not of the 2-D picture) and in start-pose space. A good flow puts its samples where the
posterior codes are; the Gaussian prior's samples show how far the aggregate posterior is from
N(0, I). Outputs: a PNG (two panels: classes, and the three sets) and a self-contained HTML
scatter where hovering a point plays its clip (the window, or the sample decoded from a test
start posture), drawn from a side view in a canvas. No scripts are loaded from anywhere.
"""

import html
import json
import os

import jax
import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position

from bds_jax import sampling  # pylint: disable=g-import-not-at-top,wrong-import-position
from bds_jax import skeleton  # pylint: disable=g-import-not-at-top,wrong-import-position
from bds_jax.data.windows import Windows  # pylint: disable=wrong-import-position
from bds_jax.metrics import neighbours  # pylint: disable=wrong-import-position
from bds_jax.synthesis import behavior  # pylint: disable=g-import-not-at-top,wrong-import-position

SET_COLORS = {'posterior μ': '#7f7f7f', 'flow samples': '#2ca02c', 'N(0, I) samples': '#ff7f0e'}
HOVER_STRIDE = 2  # every 2nd frame of a hover clip (keeps the page a few MB)
HOVER_CLIPS = 300  # points per set that play a clip on hover (the rest only show their set)


def collect(sampler: sampling.Sampler, windows: Windows, n: int, key, batch: int = 256,
            hover: int = HOVER_CLIPS, k: int = 5):
  """Codes, set names, class names, hover clips (metres, or None) of the three sets, and the
  k-NN class purity of the test windows in behavior space (μ) beside start-pose space.

  n test windows are drawn at random (all classes) and n samples of each prior; `hover` points
  of each set carry their clip (the window, or the sample decoded from a test start posture).
  """
  rng = np.random.default_rng(int(jax.random.randint(key, (), 0, 2**31 - 1)))
  n = min(n, len(windows))
  idx = np.sort(rng.choice(len(windows), n, replace=False))
  located = [windows.locate(int(i)) for i in idx]
  x = np.stack([windows.window(*loc) for loc in located])
  mu = behavior.posterior_means(sampler, x, batch)
  codes, sets = [mu], ['posterior μ'] * n
  names = windows.seqs.label_names
  label_ids = np.array([int(windows.seqs.labels[seq]) for seq, _ in located])
  labels = [names[c] for c in label_ids]
  groups = np.array([seq for seq, _ in located])
  stats = purity_stats(mu, x[:, 0], label_ids, groups, k)
  shown = set(rng.choice(n, min(hover, n), replace=False).tolist())
  clips = [sampler.normalizer.denormalize(w) if i in shown else None for i, w in enumerate(x)]
  priors = (('flow', 'flow samples'),) if sampler.has_flow else ()
  for prior, name in priors + (('gaussian', 'N(0, I) samples'),):
    z = np.asarray(jax.device_get(sampler.sample_codes(n, jax.random.fold_in(key, len(sets)),
                                                        prior)))
    m = min(hover, n)
    starts = sampler.normalizer.denormalize(x[rng.choice(n, m, replace=False), 0])
    clips.extend(list(sampler.decode(z[:m], starts)) + [None] * (n - m))
    codes.append(z)
    sets += [name] * n
    labels += [''] * n
  return np.concatenate(codes), sets, labels, clips, stats


def purity_stats(mu, starts, labels, groups, k: int) -> dict:
  """k-NN class purity of windows in μ-space and in (normalised) start-pose space."""
  flat = np.asarray(starts).reshape(len(starts), -1)
  return {'test windows': int(len(mu)), 'classes': int(len(np.unique(labels))), 'k': int(k),
          'k-NN class purity, behavior space (μ)': neighbours.knn_purity(mu, labels, k, groups),
          'k-NN class purity, start-pose space': neighbours.knn_purity(flat, labels, k, groups),
          'chance (sum of squared class shares)': neighbours.chance(labels)}


def fit(codes: np.ndarray, seed: int, n_neighbors: int = 15) -> np.ndarray:
  import umap  # pylint: disable=g-import-not-at-top  # slow to import (numba); only here
  return umap.UMAP(n_neighbors=min(n_neighbors, len(codes) - 1), min_dist=0.3,
                   random_state=seed).fit_transform(codes)


def write_png(path: str, xy: np.ndarray, sets, labels, title: str):
  sets, labels = np.asarray(sets), np.asarray(labels)
  fig, axes = plt.subplots(1, 2, figsize=(12, 5.4), dpi=110)
  post = sets == 'posterior μ'
  classes = sorted(set(labels[post]))
  cmap = plt.get_cmap('tab20' if len(classes) > 10 else 'tab10')
  for i, c in enumerate(classes):
    m = post & (labels == c)
    axes[0].scatter(xy[m, 0], xy[m, 1], s=5, color=cmap(i % cmap.N), label=c, alpha=0.7,
                    linewidths=0)
  axes[0].set_title('posterior μ of test windows, by class')
  axes[0].legend(fontsize=7, markerscale=1.5, loc='best', ncol=1 if len(classes) <= 12 else 2)
  for name, colour in SET_COLORS.items():
    m = sets == name
    if m.any():
      axes[1].scatter(xy[m, 0], xy[m, 1], s=4, color=colour, label=name, alpha=0.5,
                      linewidths=0)
  axes[1].set_title('posterior μ vs samples of the priors')
  axes[1].legend(fontsize=8, markerscale=1.5)
  for ax in axes:
    ax.set_xticks([])
    ax.set_yticks([])
  fig.suptitle(title)
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)


def _side_view(clip: np.ndarray, azim_deg: float = -65.0) -> list:
  """A clip (T, 17, 3) as centimetre integers of a side view: (T', 17, 2) of (u, height)."""
  a = np.radians(azim_deg)
  right = np.array([-np.sin(a), np.cos(a)])  # the figures' camera's horizontal axis
  c = clip[::HOVER_STRIDE]
  u = (c[..., :2] - c[:1, 0, :2]) @ right
  return np.round(np.stack([u, c[..., 2]], -1) * 100).astype(int).tolist()


def write_html(path: str, xy: np.ndarray, sets, labels, clips, title: str, fps: float):
  lo, hi = xy.min(0), xy.max(0)
  scaled = (xy - lo) / np.maximum(hi - lo, 1e-9)
  points = [{'x': round(float(p[0]), 4), 'y': round(float(p[1]), 4), 's': s, 'l': l,
             **({'c': _side_view(c)} if c is not None else {})}
            for p, s, l, c in zip(scaled, sets, labels, clips)]
  data = {'points': points, 'colors': SET_COLORS, 'bones': skeleton.BONES,
          'sides': [skeleton.SIDE_COLORS[skeleton.bone_side(p, c)] for p, c in skeleton.BONES],
          'fps': fps / HOVER_STRIDE}
  # `</` cannot end the script element early inside JSON.
  payload = json.dumps(data, separators=(',', ':')).replace('</', '<\\/')
  with open(path + '.tmp', 'w') as f:
    f.write(_PAGE.replace('%TITLE%', html.escape(title)).replace('%DATA%', payload))
  os.replace(path + '.tmp', path)


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>%TITLE%</title>
<style>body{font-family:sans-serif;margin:16px}#wrap{display:flex;gap:16px}
#plot{border:1px solid #ccc}#clip{border:1px solid #ccc}#info{font-size:13px;height:2em}
.key span{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px}</style></head>
<body><h2>%TITLE%</h2><p>Hover a larger point to play its clip (side view). Grey: posterior μ
of test windows; green: flow samples; orange: N(0, I) samples (each decoded from a test start
posture).</p><div class="key" id="key"></div><div id="wrap"><svg id="plot" width="640"
height="560"></svg><div><canvas id="clip" width="300" height="360"></canvas><div id="info">
</div></div></div><script id="data" type="application/json">%DATA%</script><script>
const D=JSON.parse(document.getElementById('data').textContent);
const svg=document.getElementById('plot'),ns='http://www.w3.org/2000/svg';
const key=document.getElementById('key');
for(const [n,c] of Object.entries(D.colors)){
 key.innerHTML+='<span style="background:'+c+'"></span>'+n;}
let timer=null;
function play(p){const cv=document.getElementById('clip'),g=cv.getContext('2d');
 document.getElementById('info').textContent=p.s+(p.l?' — '+p.l:'');
 if(timer)clearInterval(timer);let t=0;
 timer=setInterval(()=>{const f=p.c[t%p.c.length];g.clearRect(0,0,cv.width,cv.height);
  g.strokeStyle='#ccc';g.beginPath();g.moveTo(0,330);g.lineTo(300,330);g.stroke();
  D.bones.forEach((b,i)=>{g.strokeStyle=D.sides[i];g.lineWidth=4;g.lineCap='round';
   g.beginPath();g.moveTo(150+f[b[0]][0]*1.3,330-f[b[0]][1]*1.3);
   g.lineTo(150+f[b[1]][0]*1.3,330-f[b[1]][1]*1.3);g.stroke();});t++;},1000/D.fps);}
D.points.forEach(p=>{const c=document.createElementNS(ns,'circle');
 c.setAttribute('cx',20+p.x*600);c.setAttribute('cy',540-p.y*520);
 c.setAttribute('r',p.c?4:2);
 c.setAttribute('fill',D.colors[p.s]);c.setAttribute('fill-opacity',p.c?0.8:0.4);
 const tt=document.createElementNS(ns,'title');tt.textContent=p.s+(p.l?': '+p.l:'');
 c.appendChild(tt);if(p.c)c.addEventListener('mouseenter',()=>play(p));svg.appendChild(c);});
const first=D.points.find(p=>p.c);if(first)play(first);
</script></body></html>
"""
