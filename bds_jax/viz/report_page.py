"""A run's report: one self-contained index.html in the run directory.

  report_page.write('runs/demo')   # -> runs/demo/index.html

Built from what is in the directory, so evaluate.py and synthesize.py both just call `write`:
  * run summary: trainer, dataset, steps, training time, the config (collapsed);
  * training curves (PNG from metrics.jsonl) of the run, its flow/ prior and any appearance
    run a synthesis used;
  * every evaluation table (eval/*.md, the paper's numbers beside ours) as HTML tables;
  * synthesize.py's results (synthesis/manifest.json): videos, stills, captions and numbers;
    and the appearance run's evaluation tables.
Links are relative (the folder can be copied or served anywhere); nothing is fetched from the
internet: no scripts, fonts or styles from elsewhere.
"""

import html
import json
import os
import time

from markdown_it import MarkdownIt
import numpy as np

from bds_jax import run_layout
from bds_jax import skeleton
from bds_jax.viz import curves

EVAL_ORDER = ('transfer', 'realism', 'diversity', 'hmp', 'gt_transfer', 'appearance')

_MD = MarkdownIt('commonmark', {'html': False}).enable('table')


def _read_json(path: str):
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, json.JSONDecodeError):
    return None


def _rel(path: str, root: str) -> str:
  return os.path.relpath(path, root).replace(os.sep, '/')


def _metrics_span(path: str) -> tuple[int | None, float | None]:
  """(last step, seconds of training) from metrics.jsonl (steps / steps_per_sec, summed)."""
  series = curves.read_metrics(path) if os.path.exists(path) else {}
  steps = [int(s.max()) for s, _ in series.values() if len(s)]
  rate = series.get('train/steps_per_sec')
  seconds = None
  if rate is not None and len(rate[0]):
    s, r = rate[0].astype(float), rate[1]
    gaps = np.maximum(np.diff(s, prepend=0.0), 0.0)  # a resume may log a step again
    seconds = float(np.sum(gaps / np.maximum(r, 1e-9)))
  return (max(steps) if steps else None), seconds


def _summary(run_dir: str, config: dict) -> str:
  step, seconds = _metrics_span(os.path.join(run_dir, run_layout.METRICS_FILE))
  data = config.get('data', {})
  rows = [('directory', run_dir), ('trainer', config.get('trainer', '?')),
          ('preset', config.get('preset') or '(none)'),
          ('dataset', f'{data.get("name", "?")} ({data.get("builder_config") or "default"})'),
          ('steps trained', step if step is not None else '–'),
          ('training time', f'{seconds / 60:.1f} min (from logged throughput)' if seconds
           else '–')]
  model = config.get('model', {})
  rows += [(f'model.{k}', model[k]) for k in ('variant', 'width', 'frame', 'image_size')
           if k in model]
  body = ''.join(f'<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>'
                 for k, v in rows)
  return (f'<table class="kv">{body}</table><details><summary>config.json</summary><pre>'
          f'{html.escape(json.dumps(config, indent=1))}</pre></details>')


def _curves(run_dir: str, runs: list[tuple[str, str]]) -> str:
  parts = []
  for label, path in runs:
    png = curves.plot(os.path.join(path, run_layout.METRICS_FILE),
                      os.path.join(run_dir, run_layout.REPORT_ASSETS_DIR, f'curves_{label}.png'),
                      f'{label}: {os.path.basename(path)}')
    if png:
      parts.append(f'<figure><img src="{_rel(png, run_dir)}" alt="training curves of {label}">'
                   f'<figcaption>{html.escape(label)} run ({html.escape(path)}): blue train, '
                   'red evaluation.</figcaption></figure>')
  return ''.join(parts) or '<p>No metrics.jsonl yet.</p>'


def _tables(eval_dir: str) -> str:
  if not os.path.isdir(eval_dir):
    return ''
  names = [f[:-3] for f in os.listdir(eval_dir) if f.endswith('.md')]
  names.sort(key=lambda n: (EVAL_ORDER.index(n) if n in EVAL_ORDER else len(EVAL_ORDER), n))
  parts = []
  for name in names:
    with open(os.path.join(eval_dir, f'{name}.md')) as f:
      table = _MD.render(f.read())  # its headings sit below the page's Evaluation heading
    table = table.replace('<h2>', '<h3>').replace('</h2>', '</h3>')
    parts.append(f'<section class="table">{table}</section>')
  return ''.join(parts)


def _value(v) -> str:
  if isinstance(v, float):
    return f'{v:.3g}'
  if isinstance(v, (list, tuple)):
    return ', '.join(_value(x) for x in v)
  return str(v)


def _stats_table(stats: dict | None) -> str:
  """A synthesis entry's numbers as a two-column table (Unicode as it is, floats to 3 digits)."""
  if not stats:
    return ''
  rows = ''.join(f'<tr><th>{html.escape(str(k))}</th><td>{html.escape(_value(v))}</td></tr>'
                 for k, v in stats.items())
  return f'<table class="kv stats">{rows}</table>'


def _results_path(run_dir: str) -> str:
  return os.path.join(run_dir, run_layout.EVAL_DIR, run_layout.RESULTS_FILE)


def _first_run(results: dict | None) -> dict:
  runs = (results or {}).get('runs') or {}
  return next(iter(runs.values()), {}).get('suites', {}) if runs else {}


def _key_numbers(run_dir: str, entries: list[dict], related) -> list[tuple[str, str, str]]:
  """(what, ours, reference) rows of the headline, each from the file that holds it."""
  rows = []
  gt = _first_run(_read_json(_results_path(run_dir))).get('gt_transfer')
  if gt and 'skipped' not in gt:
    for cat, what in (('self', 'self-reconstruction'), ('direct', 'transfer, direct pairs'),
                      ('transition', 'transfer, transition pairs')):
      r = gt.get(cat) or {}
      if 'mpjpe_mm_model' in r:
        model, static = r['mpjpe_mm_model']['mean'], r['mpjpe_mm_static']['mean']
        rows.append((f'{what}: MPJPE ({r["num_pairs"]} pairs)',
                     f'{model:.0f} mm ({model / static:.2f} × static)',
                     f'holding the start posture: {static:.0f} mm'))
    acc = (gt.get('direct') or {}).get('recognition_accuracy')
    if acc:
      rows.append(('behavior recognised in direct re-enactments', f'{100 * acc["reenacted"]:.0f}%',
                   f'in the true renderings: {100 * acc["truth"]:.0f}%'))
  for e in entries:
    st = e.get('stats') or {}
    if e.get('command') == 'umap' and 'k-NN class purity, behavior space (μ)' in st:
      rows.append((f'k-NN class purity of {st["test windows"]} test windows, μ-space',
                   f'{100 * st["k-NN class purity, behavior space (μ)"]:.0f}%',
                   f'start-pose space {100 * st["k-NN class purity, start-pose space"]:.0f}%, '
                   f'chance {100 * st["chance (sum of squared class shares)"]:.0f}%'))
    key = 're-enactments, behavior space (μ): share with the source class'
    if e.get('command') == 'neighbours' and key in st:
      rows.append((f'μ-neighbours of {st["re-enactments"]} re-enactments with the source\'s class',
                   f'{100 * st[key]:.0f}%',
                   f'start-pose neighbours '
                   f'{100 * st["re-enactments, posture space (start pose): share with the source class"]:.0f}%'))
  for label, path in related:
    truth = _first_run(_read_json(_results_path(path))).get(
        'appearance', {}).get('truth') if label == 'appearance' else None
    if truth and 'code_effect' in truth:
      ce = truth['code_effect']
      rows.append(('appearance code effect on the person (L1)', f'{ce["model"]:.3f}',
                   f'the true renderings differ by {ce["truth"]:.3f}'))
  return rows


def _headline(run_dir: str, entries: list[dict], related) -> str:
  """The first screen: the transfer grid, the RGB video and the key numbers."""
  picks = [e for c in ('transfer', 'video') for e in entries if e.get('command') == c][:2]
  rows = _key_numbers(run_dir, entries, related)
  table = ''
  if rows:
    body = ''.join(f'<tr><td>{html.escape(a)}</td><td><b>{html.escape(b)}</b></td>'
                   f'<td>{html.escape(c)}</td></tr>' for a, b, c in rows)
    table = (f'<table class="headline"><tr><th>measured</th><th>this run</th><th>reference'
             f'</th></tr>{body}</table>')
  if not picks and not table:
    return '<p>Nothing evaluated or synthesised yet.</p>'
  return (_synthesis(run_dir, picks, headline=True) if picks else '') + table


def _synthesis(run_dir: str, entries: list[dict], headline: bool = False) -> str:
  parts = []
  for e in entries:
    base = os.path.join(run_dir, run_layout.SYNTHESIS_DIR)
    media = ''
    if e.get('video'):
      src = _rel(os.path.join(base, e['video']), run_dir)
      poster = _rel(os.path.join(base, e['still']), run_dir) if e.get('still') else ''
      if src.endswith('.gif'):
        media = f'<img src="{src}" alt="{html.escape(e["title"])}">'
      else:
        media = (f'<video src="{src}" poster="{poster}" controls loop muted autoplay '
                 f'playsinline></video>')
    elif e.get('still'):
      media = f'<img src="{_rel(os.path.join(base, e["still"]), run_dir)}" alt="">'
    media += ''.join(f'<img src="{_rel(os.path.join(base, im), run_dir)}" alt="">'
                     for im in e.get('images', ()))  # further figures of the result
    link = (f' <a href="{_rel(os.path.join(base, e["html"]), run_dir)}">interactive version'
            '</a>' if e.get('html') else '')
    stats = _stats_table(e.get('stats'))
    meta = (f'{e.get("frames", "")} frames at {e.get("fps", ""):g} fps' if e.get('frames')
            else '')
    if headline:  # media and caption only: the numbers are in the table below
      parts.append(f'<figure class="head">{media}<figcaption>{html.escape(e["title"])}. '
                   f'{html.escape(e.get("caption", ""))}</figcaption></figure>')
      continue
    parts.append(f'<section class="synth"><h3>{html.escape(e["title"])}</h3>{media}'
                 f'<p>{html.escape(e.get("caption", ""))}{link}</p><p class="meta">'
                 f'<code>synthesize.py {html.escape(e.get("command", ""))}</code> {meta}</p>'
                 f'{stats}</section>')
  return ''.join(parts) or ('<p>Nothing synthesised yet: run <code>python synthesize.py '
                            'transfer --workdir=...</code>.</p>')


def write(run_dir: str) -> str:
  """(Re)writes <run_dir>/index.html from the directory's contents; returns its path."""
  run_dir = os.path.abspath(run_dir)
  config = _read_json(os.path.join(run_dir, run_layout.CONFIG_FILE)) or {}
  manifest = _read_json(os.path.join(run_dir, run_layout.SYNTHESIS_DIR,
                                     run_layout.MANIFEST_FILE)) or []
  related = [(config.get('trainer', 'run'), run_dir)]
  flow_dir = os.path.join(run_dir, run_layout.FLOW_DIR)
  if os.path.exists(os.path.join(flow_dir, run_layout.CONFIG_FILE)):
    related.append(('flow', flow_dir))
  for e in manifest:
    path = e.get('appearance_workdir')
    if path and os.path.isdir(path) and ('appearance', path) not in related:
      related.append(('appearance', path))
  legend = ''.join(f'<span class="swatch" style="background:{c}"></span>{side} '
                   for side, c in skeleton.SIDE_COLORS.items())
  evals = [('this run', os.path.join(run_dir, run_layout.EVAL_DIR))] + [
      (f'the {label} run', os.path.join(p, run_layout.EVAL_DIR)) for label, p in related[1:]]
  tables = [(label, p, _tables(p)) for label, p in evals]
  eval_html = ''.join(f'<p class="meta">Evaluation of {html.escape(label)} '
                      f'({html.escape(p)}: results.json and the Markdown tables).</p>{t}'
                      for label, p, t in tables if t)
  title = f'bds_jax report: {os.path.basename(run_dir)}'
  page = _PAGE.format(
      title=html.escape(title), when=time.strftime('%Y-%m-%d %H:%M'),
      summary=_summary(run_dir, config), legend=legend, synthesis=_synthesis(run_dir, manifest),
      headline=_headline(run_dir, manifest, related),
      evaluation=eval_html or '<p>Not evaluated yet: run <code>python evaluate.py</code>.</p>',
      curves=_curves(run_dir, related))
  path = os.path.join(run_dir, run_layout.REPORT_FILE)
  with open(path + '.tmp', 'w') as f:
    f.write(page)
  os.replace(path + '.tmp', path)
  return path


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1280px; padding: 0 24px 48px;
       color: #222; }}
h1 {{ font-size: 1.6em; margin-top: 24px; }}
h2 {{ border-bottom: 1px solid #ddd; margin-top: 40px; }}
table {{ border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }}
th, td {{ border: 1px solid #ddd; padding: 3px 8px; text-align: left; }}
th {{ background: #f5f5f5; }} table.kv th {{ width: 160px; }}
video, .synth img, figure img {{ max-width: 100%; border: 1px solid #eee; }}
pre {{ background: #f7f7f7; padding: 8px; overflow-x: auto; font-size: 12px; }}
.meta {{ color: #666; font-size: 13px; }} .swatch {{ display: inline-block; width: 12px;
height: 12px; margin: 0 4px 0 10px; vertical-align: middle; }}
nav a {{ margin-right: 16px; }}
.heads {{ display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }}
figure.head {{ margin: 0; flex: 1 1 560px; }} figure.head video, figure.head img {{ width: 100%; }}
figure.head figcaption {{ font-size: 13px; color: #444; }}
table.headline {{ flex: 1 1 100%; font-size: 14px; }}
</style>
</head>
<body>
<h1>{title}</h1>
<nav><a href="#headline">Headline</a><a href="#summary">Summary</a><a href="#synthesis">Synthesis</a>
<a href="#evaluation">Evaluation</a><a href="#curves">Training curves</a></nav>
<p class="meta">Written {when}. Skeleton colours: {legend}</p>
<h2 id="headline">Headline</h2>
<div class="heads">{headline}</div>
<h2 id="summary">Run</h2>
{summary}
<h2 id="synthesis">Synthesis</h2>
{synthesis}
<h2 id="evaluation">Evaluation</h2>
{evaluation}
<h2 id="curves">Training curves</h2>
{curves}
</body>
</html>
"""
