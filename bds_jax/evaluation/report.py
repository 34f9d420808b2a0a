"""Markdown tables of evaluation results, with the paper's reported numbers beside ours.

The paper's numbers (../shared/spec/paper-reported-numbers.md) are on Human3.6M; on another
dataset they are printed for orientation only, and the tables say so.
"""

import json
import math
import os

from bds_jax import run_layout
from bds_jax.data import datasets

# Paper Table 1 rows (RE and TDE at T = 1, 10, 20, 30, 40, 50; acc; d_beta mean, std).
PAPER_TABLE1 = {
    'cAE': ((0.72, 0.28, 0.26, 0.28, 0.30, 0.33), (8.30, 1.94, 0.34, 0.23, 0.23, 0.23), 0.45,
            (0.92, 0.34)),
    'cVAE': ((5.29, 5.28, 5.05, 4.82, 4.55, 4.46), (9.07, 8.95, 8.81, 8.87, 8.86, 8.80), 0.13,
             (0.00, 0.00)),
    'MT-VAE': ((1.36, 1.40, 1.39, 1.38, 1.34, 1.37), (8.90, 8.95, 8.66, 8.45, 8.27, 8.12), 0.20,
               (4.44, 2.05)),
    'ours γ_C=0, I_KL=100': ((1.24, 0.89, 0.81, 0.78, 0.73, 0.80),
                            (8.99, 7.09, 5.55, 4.33, 3.48, 3.13), 0.39, (3.47, 0.93)),
    'ours I_KL=100': ((2.01, 1.96, 1.88, 1.76, 1.77, 1.76), (9.08, 8.78, 8.57, 8.37, 8.15, 8.0),
                      0.38, (1.60, 0.78)),
}
PAPER_GT_ACC = 0.45
PAPER_T_VALUES = (1, 10, 20, 30, 40, 50)
# Which paper row corresponds to each of our variants.
VARIANT_PAPER_ROW = {'ours': 'ours I_KL=100', 'ours_no_adversary': 'ours γ_C=0, I_KL=100',
                     'cvae': 'cVAE', 'cae': 'cAE'}
PAPER_TABLE2 = {'cVAE': (0.25, 0.36, 0.16, 0.22), 'DSF': (0.38, 0.62, 0.31, 0.42),
                'ours': (0.63, 0.88, 0.45, 0.58)}  # ASD, FSD at N=10; ASD, FSD at N=50
PAPER_TABLE3 = {'ours γ_C=0': {'self': 0.49, 'transfer': 0.14, 'prior': 0.09, 'flow': 0.12},
                'ours': {'self': 0.49, 'transfer': 0.23, 'prior': 0.13, 'flow': 0.23}}
PAPER_APD = {'Pose-Knows': 6.72, 'HP-GAN': 7.24, 'GMVAE': 6.77, 'DSF': 9.33, 'DLow': 11.74,
             'ours': 12.24}
# Paper Table 5 (reconstruction setting): (IS, SSIM) on DeepFashion and on Market-1501; the
# paper reports no appearance numbers on Human3.6M.
PAPER_TABLE5 = {'VUnet': ((3.09, 0.79), (3.21, 0.35)), 'DIG': ((3.23, 0.61), (3.44, 0.10)),
                'PG²': ((3.09, 0.76), (3.46, 0.25)), 'ours': ((3.08, 0.80), (3.16, 0.35))}
# Newer pose-guided methods (paper-reported-numbers.md; second-hand): (FID, LPIPS, SSIM) on
# DeepFashion (pose transfer at 256×176) and on Market-1501 (128×64). Another protocol than
# Table 5's reconstruction at 256×256.
PUBLISHED_POSE_GUIDED = {'PCDMs (ICLR\'24)': ((7.47, 0.1365, 0.7444), (13.90, 0.2238, 0.3169)),
                         'IMAGPose (NeurIPS\'24)': ((5.87, 0.1284, 0.7561),
                                                    (12.66, 0.2104, 0.3282))}
# The paper's Table 5 columns (the published tuples above are in this order).
TABLE5_DATASETS = ('deepfashion', 'market1501')
BELFUSION_HMP = {'APD': 7.602, 'ADE': 0.372, 'FDE': 0.474, 'MMADE': 0.473, 'MMFDE': 0.507,
                 'CMD': 5.988, 'FID': 0.209}
# Published Human3.6M rows of the stochastic-HMP table (paper-reported-numbers.md: as listed
# in benchmark summaries, not read from the papers). APDE is not reported with them here.
PUBLISHED_HMP = {
    'BeLFusion': BELFUSION_HMP,
    'CoMusion': {'APD': 7.632, 'ADE': 0.350, 'FDE': 0.458, 'MMADE': 0.494, 'MMFDE': 0.506,
                 'CMD': 3.202, 'FID': 0.102},
    'SkeletonDiffusion': {'APD': 7.249, 'ADE': 0.344, 'FDE': 0.450, 'MMADE': 0.487,
                          'MMFDE': 0.512, 'CMD': 4.178, 'FID': 0.123},
    'SLD': {'APD': 8.741, 'ADE': 0.348, 'FDE': 0.436, 'MMADE': 0.435, 'MMFDE': 0.463},
    'KinemaDiff': {'APD': 6.912, 'ADE': 0.331, 'FDE': 0.449, 'CMD': 4.60, 'FID': 0.083},
    'Gaussian-Mixture Latent Flow': {'APD': 4.804, 'ADE': 0.333, 'FDE': 0.399, 'CMD': 3.015,
                                     'FID': 0.088},
}
# What each published row's label must carry beside it (the spec's caveats).
PUBLISHED_HMP_CAVEATS = {
    'SLD': 'ECCV\'24; second-hand; DLow/GSPS windows, not the 5 168-window list',
    'KinemaDiff': 'ICLR\'26; second-hand',
    'Gaussian-Mixture Latent Flow': 'CVPR\'26; second-hand; no code released; its FDE comes '
                                    'with far lower diversity',
}
HMP_PRIORS = ('gaussian', 'flow', 'diffusion')


def _f(x, digits=2):
  if x is None or (isinstance(x, float) and math.isnan(x)):
    return '–'
  return f'{x:.{digits}f}'


def _dataset_note(dataset: str) -> str:
  if datasets.get(dataset).paper_tables:
    return ''
  return (f'\n*Our numbers are on `{dataset}`; the paper\'s are on Human3.6M and are shown '
          'for orientation only.*\n')


def transfer_table(results: dict, dataset: str) -> str:
  """Paper Table 1 layout: one row per evaluated run, then the paper's rows."""
  skipped = [f'- {name}: skipped ({r["skipped"]}).' for name, r in results.items()
             if 'skipped' in r]
  results = {name: r for name, r in results.items() if 'skipped' not in r}
  if not results:  # data without classes (docs/own_mocap.md)
    return '\n'.join([f'## Behavior transfer (paper Table 1){_dataset_note(dataset)}', '']
                     + skipped) + '\n'
  ts = next(iter(results.values()))['T']
  head = ' | '.join(f'T={t} RE | T={t} TDE' for t in ts)
  lines = [f'## Behavior transfer (paper Table 1){_dataset_note(dataset)}',
           'RE: held-out posture regression error from μ (higher = less posture in the code); '
           'TDE: time-aligned re-enactment vs source (z-scored units); acc: linear probe on μ '
           '(train → test); d_β: mean ± std. Paper-comparable variants (upstream\'s TDE offset, '
           'RE trained and scored on test) in parentheses.', '',
           f'| model | {head} | acc | d_β |', '|' + '---|' * (2 * len(ts) + 3)]
  for name, r in results.items():
    body = 'RE_body' in r  # a body-frame run: RE on both kinds of target, each labelled
    cells = ' | '.join(f'{_f(r["RE"][str(t)])} ({_f(r["RE_paper_same_data"][str(t)])}) | '
                       f'{_f(r["TDE"][str(t)])} ({_f(r["TDE_upstream"][str(t)])})' for t in ts)
    label = f'{name}, RE on world z-scores' if body else name
    lines.append(f'| {label} | {cells} | {_f(r["acc"])} (gt {_f(r["gt_acc"])}) | '
                 f'{_f(r["d_beta"]["mean"])} ± {_f(r["d_beta"]["std"])} |')
    if body:
      cells = ' | '.join(f'{_f(r["RE_body"][str(t)])} '
                         f'({_f(r["RE_body_paper_same_data"][str(t)])}) | –' for t in ts)
      lines.append(f'| {name}, RE on body-frame targets | {cells} | | |')
  for name, (re, tde, acc, (dm, ds)) in PAPER_TABLE1.items():
    cells = ' | '.join(f'{re[PAPER_T_VALUES.index(t)]:.2f} | {tde[PAPER_T_VALUES.index(t)]:.2f}'
                       for t in ts)
    lines.append(f'| paper: {name} | {cells} | {acc:.2f} (gt {PAPER_GT_ACC:.2f}) | '
                 f'{dm:.2f} ± {ds:.2f} |')
  lines.append('')
  bodies = [r for r in results.values() if 'RE_body' in r]
  if bodies:
    lines += ['RE kinds. World: the source posture at T in world z-scores, the paper\'s '
              'targets; the paper\'s RE column is this measurement (of a world-frame model). '
              'A body-frame run\'s code cannot carry where the person stands or faces, by '
              'construction, so its world RE mostly measures that placement and is inflated: '
              'it is neither the paper\'s number nor a measure of disentanglement. Body frame: '
              f'{bodies[0]["RE_kinds"]["RE_body"]}; it measures the posture left in the code '
              'and has no paper counterpart.', '']
  for name, r in results.items():
    lines.append(f'- {name}: same-class reference d_β = '
                 f'{_f(r["d_beta_same_class_reference"]["mean"])}; chance accuracy '
                 f'{_f(r["chance_acc"])}; {r["num_pairs"]} test pairs.')
  return '\n'.join(lines + skipped) + '\n'


def realism_table(results: dict, dataset: str) -> str:
  kinds = ('self', 'transfer', 'prior', 'flow')
  lines = [f'## Realism (paper Table 3){_dataset_note(dataset)}',
           'Held-out accuracy of a real-vs-generated GRU classifier (0.5 = indistinguishable) '
           '/ ROC AUC; in parentheses the paper-comparable mean P(real) of the generated '
           'training sequences (0.5 ideal).', '',
           '| model | ' + ' | '.join(kinds) + ' |', '|' + '---|' * (len(kinds) + 1)]
  for name, r in results.items():
    cells = [f'{_f(r[k]["heldout_accuracy"])} / {_f(r[k]["heldout_auc"])} '
             f'({_f(r[k]["paper_mean_p_real"])})' if k in r else '–' for k in kinds]
    lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
  for name, row in PAPER_TABLE3.items():
    lines.append(f'| paper: {name} | ' + ' | '.join(f'({row[k]:.2f})' for k in kinds) + ' |')
  return '\n'.join(lines) + '\n'


def diversity_table(results: dict, dataset: str) -> str:
  lines = [f'## Diversity (paper Tables 2 and 4){_dataset_note(dataset)}',
           'Metres, world coordinates of the 17 joints; N samples per start posture.', '',
           '| model | prior | N | ASD | FSD | APD | ADE | FDE |', '|---|---|---|---|---|---|---|---|']
  for name, r in results.items():
    for prior in ('gaussian', 'flow'):
      for n, m in r.get(prior, {}).items():
        lines.append(f'| {name} | {prior} | {n} | {_f(m["ASD"])} | {_f(m["FSD"])} | '
                     f'{_f(m["APD"])} | {_f(m["ADE"])} | {_f(m["FDE"])} |')
  for name, (a10, f10, a50, f50) in PAPER_TABLE2.items():
    lines.append(f'| paper: {name} | | 10 | {a10:.2f} | {f10:.2f} | | | |')
    lines.append(f'| paper: {name} | | 50 | {a50:.2f} | {f50:.2f} | | | |')
  lines.append('')
  lines.append('Paper Table 4 APD: ' + ', '.join(f'{k} {v:.2f}' for k, v in PAPER_APD.items()))
  return '\n'.join(lines) + '\n'


def _prior_label(prior: str, r: dict) -> str:
  if prior != 'diffusion':
    return prior
  return f'diffusion: {r.get("diffusion_prior", "conditioning not recorded")}'


def hmp_table(results: dict, dataset: str) -> str:
  cols = ('APD', 'ADE', 'FDE', 'MMADE', 'MMFDE', 'APDE', 'CMD', 'FID')
  lines = [f'## Stochastic human motion prediction (DLow/BeLFusion protocol){_dataset_note(dataset)}',
           '25 observed / 100 predicted frames at 50 Hz, root-relative 16 joints, metres.', '',
           '| model | prior | ' + ' | '.join(cols) + ' |', '|' + '---|' * (len(cols) + 2)]
  for name, r in results.items():
    for prior in HMP_PRIORS:
      if prior in r:
        lines.append(f'| {name} | {_prior_label(prior, r)} | ' +
                     ' | '.join(_f(r[prior].get(c), 3) for c in cols) + ' |')
    if 'oracle_code' in r:
      lines.append(f'| {name} | oracle: the true future\'s own code, K = 1 | ' +
                   ' | '.join(_f(r['oracle_code'].get(c), 3) for c in cols) + ' |')
  for method, row in PUBLISHED_HMP.items():
    caveat = f'; {PUBLISHED_HMP_CAVEATS[method]}' if method in PUBLISHED_HMP_CAVEATS else ''
    lines.append(f'| {method} (published, Human3.6M{caveat}) | | ' +
                 ' | '.join(_f(row.get(c), 3) for c in cols) + ' |')
  first = next(iter(results.values()))
  lines += ['', f'{first["num_windows"]} windows, K = {first["num_samples"]}, multimodal radius '
                f'{first["threshold"]}; CMD reference: {first["cmd_reference"]}.',
            f'Prediction: {first["prediction"]}.',
            'Published rows: as listed in benchmark summaries and other papers\' tables, not read '
            'from the papers; "second-hand" ones only from such tables.']
  for name, r in results.items():
    who = f' ({name})' if len(results) > 1 else ''
    if r.get('protocol_differences'):
      lines += ['', f'Differences from the published protocol{who}:']
      lines += [f'- {d}' for d in r['protocol_differences']]
    if r.get('recipe_differences'):
      lines += ['', f'The diffusion row\'s model beside BeLFusion\'s{who}:']
      lines += [f'- {d}' for d in r['recipe_differences']]
  return '\n'.join(lines) + '\n'


def gt_transfer_table(results: dict, dataset: str) -> str:
  del dataset
  lines = ['## Ground-truth transfer (synthetic dataset; new)',
           'MPJPE (mm) between the re-enactment and the generator\'s true rendering of the '
           'source behavior from the target start posture, at T and averaged. The source window '
           'starts at its behavior onset and the truth starts moving at once, so both show the '
           'behavior from the first frame. `self`: each source re-enacted from its own first '
           'frame (what the code carries at all); `direct`: the target posture needs no '
           'transition; `transition`: the truth first moves into the behavior (e.g. stands up), '
           'which a code of the behavior alone does not say, so these pairs are reported apart '
           'and never pooled. Naive references: holding the start posture (static), adding the '
           'source\'s joint displacements to the start posture (source offsets), and the source '
           'window moved to the target\'s root (copy source).',
           '']
  for name, r in results.items():
    if 'skipped' in r:
      lines.append(f'- {name}: skipped ({r["skipped"]}).')
      continue
    ts = r['T']
    for cat in ('self', 'direct', 'transition'):
      rc = r.get(cat, {})
      if not rc.get('num_pairs'):
        continue
      lines += [f'| {name}, {cat} ({rc["num_pairs"]} pairs) | ' +
                ' | '.join(f'T={t}' for t in ts) + ' | mean | × static |',
                '|' + '---|' * (len(ts) + 3)]
      static = rc['mpjpe_mm_static']['mean']
      for kind in ('model', 'static', 'source_offsets', 'copy_source'):
        if f'mpjpe_mm_{kind}' not in rc:
          continue
        m = rc[f'mpjpe_mm_{kind}']
        lines.append(f'| {kind} | ' + ' | '.join(_f(m[str(t)], 0) for t in ts) +
                     f' | {_f(m["mean"], 0)} | {_f(m["mean"] / static, 2)} |')
      lines.append('')
      if rc.get('by_class'):
        lines += ['| class | pairs | model | static | × static |', '|---|---|---|---|---|']
        lines += [f'| {c} | {n} | {_f(m, 0)} | {_f(st, 0)} | {_f(m / st, 2)} |'
                  for c, (n, m, st) in rc['by_class'].items()]
        lines.append('')
      if 'recognition_accuracy' in rc:
        acc = rc['recognition_accuracy']
        lines += [f'Behavior recognised in the re-enactments: {_f(acc["reenacted"])} (on the '
                  f'true renderings {_f(acc["truth"])}).', '']
    lines += [f'Classifier accuracy on real test windows: '
              f'{_f(r["recognition_real_test_windows"])}; {r["num_pairs"]} pairs in all.', '']
  return '\n'.join(lines) + '\n'


def _inception_cell(value, note: str, digits: int = 2) -> str:
  return _f(value, digits) if value is not None else note


def appearance_table(results: dict, dataset: str) -> str:
  """Paper Table 5 (our rows, then the paper's), the posture probe, and on synthetic_people
  transfer against the true rendering."""
  spec = datasets.get(dataset)
  note = (f'\n*The paper\'s numbers are on {spec.title} (its column is marked); ours are on '
          f'`{dataset}`.*\n' if spec.paper_table5 else
          f'\n*Our numbers are on `{dataset}`; the paper reports Table 5 on DeepFashion and '
          'Market-1501 only (no Human3.6M numbers) and is shown for orientation only.*\n')
  lines = [f'## Appearance model (paper Table 5){note}',
           'Reconstruction: the frame\'s own appearance and stickman (the paper\'s setting). '
           'Transfer: the appearance of another frame of the same person in the frame\'s pose, '
           'scored against the frame. SSIM on [0, 1] (Wang et al.: Gaussian σ 1.5), L1 on '
           '[-1, 1]; IS (torchvision Inception-v3, upstream\'s protocol: keypoint-box crops, '
           '[-1, 1], 299 bilinear, 1 split) and FID against the real crops, not comparable '
           'with TF-Inception numbers.', '',
           '| model | setting | SSIM | IS | FID | L1 |', '|---|---|---|---|---|---|']
  for name, r in results.items():
    ni = r['inception'] if r['inception'] == 'no Inception weights given' else '–'
    for setting in ('reconstruction', 'transfer'):
      m = r[setting]
      lines.append(f'| {name} | {setting} | {_f(m["ssim"], 3)} | '
                   f'{_inception_cell(m["is"], ni)} | {_inception_cell(m["fid"], ni)} | '
                   f'{_f(m["l1"], 3)} |')
    lines.append(f'| {name} | real eval frames (reference) | – | '
                 f'{_inception_cell(r["real"]["is"], ni)} | – | – |')
  for method, (df, market) in PAPER_TABLE5.items():
    for ds, (is_, ssim) in zip(TABLE5_DATASETS, (df, market)):
      mark = ' ◀' if ds == dataset else ''
      lines.append(f'| paper: {method} ({datasets.get(ds).title}){mark} | reconstruction | {ssim:.2f} | '
                   f'{is_:.2f} | | |')
  for method, per_dataset in PUBLISHED_POSE_GUIDED.items():
    for ds, (fid_, _, ssim) in zip(TABLE5_DATASETS, per_dataset):
      mark = ' ◀' if ds == dataset else ''
      lines.append(f'| published: {method} ({datasets.get(ds).title}){mark} | pose transfer '
                   f'at {datasets.get(ds).pose_guided_size} (their protocol) | {ssim:.3f} | | '
                   f'{fid_:.2f} | |')
  lines += ['', 'Published pose-guided rows (second-hand, from benchmark summaries) use their own '
            'protocol (pose transfer, not reconstruction; other resolutions; FID is fragile to '
            'the image set, resizing and file format): compare them only with numbers made that '
            'way. Their LPIPS: ' + '; '.join(
                f'{m} {_f(df[1], 4)} ({datasets.get(TABLE5_DATASETS[0]).title}), '
                f'{_f(mk[1], 4)} ({datasets.get(TABLE5_DATASETS[1]).title})'
                for m, (df, mk) in PUBLISHED_POSE_GUIDED.items())
            + '.']
  lines += ['', '### Posture in the appearance code (the RE analogue)',
            'Keypoint error (mean L2 norm of the (J, 2) error, keypoints in [0, 1] of the image '
            'size) of a fresh regressor trained on train-split appearance means and scored on '
            'the eval frames\' means; beside it the run\'s own adversary on the same means, and '
            'predicting the mean train pose (no information). A probe close to the mean-pose '
            'error means little posture in the code.', '',
            '| model | fresh probe (held out) | run\'s adversary | mean pose | train / eval '
            'frames | probe steps |', '|---|---|---|---|---|---|']
  for name, r in results.items():
    p = r['posture_probe']
    lines.append(f'| {name} | {_f(p["probe_error"], 3)} | {_f(p["adversary_error"], 3)} | '
                 f'{_f(p["mean_pose_error"], 3)} | {p["train_images"]} / {p["test_images"]} | '
                 f'{p["steps"]} |')
  for name, r in results.items():
    if 'truth' in r:
      lines += ['', appearance_truth_table(name, r['truth'])]
  lines += ['', '; '.join(f'{name}: {r["num_images"]} eval frames, Inception: {r["inception"]}'
                          for name, r in results.items())]
  return '\n'.join(lines) + '\n'


def appearance_truth_table(name: str, t: dict) -> str:
  labels = {'reconstruction': 'model: reconstruction of B', 'transfer': 'model: transfer A → B',
            'appearance_image': 'reference: A\'s image', 'stickman': 'reference: B\'s stickman',
            'target_frame': 'reference: B\'s frame (wrong person)'}
  # Results written before a column existed lack it; LPIPS only when its weights were given.
  optional = [('l1_person', 'L1, person'), ('ssim_person', 'SSIM, person'),
              ('sharpness', 'sharpness, person'), ('lpips', 'LPIPS')]
  present = [(k, c) for k, c in optional if k in t['transfer']]
  with_person = 'l1_person' in t['transfer']
  with_lpips = 'lpips' in t['transfer']
  columns = ['SSIM', 'L1'] + [c for _, c in present]
  keys = ['ssim', 'l1'] + [k for k, _ in present]
  lines = [f'### {name}: transfer against the true rendering (synthetic_people; new)',
           f'{t["num_pairs"]} eval pairs of different people. Truth: person A rendered in frame '
           'B\'s 3D pose and camera. SSIM on [0, 1] (higher is better), L1 on [-1, 1] (lower '
           'is better). Reconstruction is scored against frame B itself; every other row '
           'against the truth.', '', '| row | ' + ' | '.join(columns) + ' |',
           '|---' * (len(columns) + 1) + '|']
  if with_person:
    lines[1] += (' "L1, person": on the pixels A or B covers (the rest is room, which every '
                 'row gets nearly right).')
  if 'sharpness' in t['transfer']:
    lines[1] += (' "sharpness, person": the image-gradient energy there over the truth\'s '
                 '(1: as sharp as the truth; a blur is below 1).')
  if with_lpips:
    lines[1] += ' LPIPS: VGG16, v0.1 (lower is better).'
  for row, label in labels.items():
    lines.append(f'| {label} | ' + ' | '.join(_f(t[row][k], 3) for k in keys) + ' |')
  if 'code_effect' in t:
    e = t['code_effect']
    lines += ['', f'Code effect: swapping B\'s appearance input for A\'s moves the model\'s '
              f'output by L1 {_f(e["model"], 3)} on the person and {_f(e["model_background"], 3)} '
              f'elsewhere; A\'s and B\'s true images in that pose differ by '
              f'{_f(e["truth"], 3)} on the person and not elsewhere (near 0 on the person: '
              'the model would ignore its appearance input; near the truths\' difference: it '
              'draws each person as their own).']
  return '\n'.join(lines)


# Paper-style tables of the suites that have one; others get `generic_table`.
TABLES = {'transfer': transfer_table, 'realism': realism_table, 'diversity': diversity_table,
          'hmp': hmp_table, 'gt_transfer': gt_transfer_table, 'appearance': appearance_table}


def write(out_dir: str, results: dict, dataset: str):
  """results.json and one <suite>.md per suite (atomic writes)."""
  os.makedirs(out_dir, exist_ok=True)
  _atomic(os.path.join(out_dir, run_layout.RESULTS_FILE),
          json.dumps(results, indent=2, default=float))
  by_suite = {}
  for run_name, run in results['runs'].items():
    for suite, r in run['suites'].items():
      by_suite.setdefault(suite, {})[run_name] = r
  for suite, per_run in by_suite.items():
    table = TABLES.get(suite)
    _atomic(os.path.join(out_dir, f'{suite}.md'), table(per_run, dataset) if table
            else generic_table(per_run, dataset, suite))


def generic_table(results: dict, dataset: str, suite: str) -> str:
  """Any other suite: one row per run and (flattened) metric."""
  def flat(tree, prefix=''):
    if isinstance(tree, dict):
      for k, v in tree.items():
        yield from flat(v, f'{prefix}{k}/' if isinstance(v, dict) else f'{prefix}{k}')
    else:
      yield prefix, tree
  lines = [f'## {suite}{_dataset_note(dataset)}', '', '| model | metric | value |', '|---|---|---|']
  for name, r in results.items():
    for key, value in flat(r):
      lines.append(f'| {name} | {key} | {_f(value, 4) if isinstance(value, float) else value} |')
  return '\n'.join(lines) + '\n'


def _atomic(path: str, text: str):
  with open(path + '.tmp', 'w') as f:
    f.write(text)
  os.replace(path + '.tmp', path)
