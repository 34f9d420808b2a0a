"""Markdown tables of evaluation results, with the paper's reported numbers beside ours.

Each suite's renderer is `table(results, dataset)` in its evaluator's module
(bds_jax/evaluation/<suite>.py); this module holds the paper's and published numbers they
print, their shared formatting, `write` (results.json and one <suite>.md per suite) and the
generic table of a suite without a renderer. The paper's numbers
(../shared/spec/paper-reported-numbers.md) are on Human3.6M; on another dataset they are
printed for orientation only, and the tables say so.
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


def fmt(x, digits=2):
  if x is None or (isinstance(x, float) and math.isnan(x)):
    return '–'
  return f'{x:.{digits}f}'


def dataset_note(dataset: str) -> str:
  if datasets.get(dataset).paper_tables:
    return ''
  return (f'\n*Our numbers are on `{dataset}`; the paper\'s are on Human3.6M and are shown '
          'for orientation only.*\n')


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
    table = _table_of(suite)
    _atomic(os.path.join(out_dir, f'{suite}.md'), table(per_run, dataset) if table
            else generic_table(per_run, dataset, suite))


def _table_of(suite: str):
  """The suite's paper-style renderer: `table(results, dataset)` beside its evaluator
  (bds_jax/evaluation/<suite>.py), or None (then `generic_table`)."""
  from bds_jax.evaluation import common  # pylint: disable=g-import-not-at-top
  try:  # evaluators import this module for its helpers: look them up when writing
    return getattr(common.get(suite), 'table', None)
  except ValueError:
    return None


def generic_table(results: dict, dataset: str, suite: str) -> str:
  """Any other suite: one row per run and (flattened) metric."""
  def flat(tree, prefix=''):
    if isinstance(tree, dict):
      for k, v in tree.items():
        yield from flat(v, f'{prefix}{k}/' if isinstance(v, dict) else f'{prefix}{k}')
    else:
      yield prefix, tree
  lines = [f'## {suite}{dataset_note(dataset)}', '', '| model | metric | value |', '|---|---|---|']
  for name, r in results.items():
    for key, value in flat(r):
      lines.append(f'| {name} | {key} | {fmt(value, 4) if isinstance(value, float) else value} |')
  return '\n'.join(lines) + '\n'


def _atomic(path: str, text: str):
  with open(path + '.tmp', 'w') as f:
    f.write(text)
  os.replace(path + '.tmp', path)
