"""Training evaluator: are codes standard normal? A per-dimension KS test against N(0, 1).

  config.evals.gaussianity = dict(type='ks_test', fn='eval_step', codes=('flow', 'posterior'))

For each name in `codes`, the trainer's `fn` returns `<name>_codes` (B, Z) per batch of the
fixed set `data`; yields `<name>_ks_pass_fraction` (the fraction of dimensions whose codes pass
the test at level `alpha`) and `<name>_ks_mean_p` (`bds_jax.metrics.gaussianity`). For the flow:
its Gaussianized test codes T(z), and the raw posterior codes z for contrast.
"""

import numpy as np

from bds_jax.metrics import gaussianity


def run(ctx, *, codes=('flow', 'posterior'), alpha: float = 0.05, fn: str = 'eval_step',
        data: str = 'eval'):
  outs = ctx.outputs(fn, data)
  for name in codes:
    x = np.concatenate([o[f'{name}_codes'] for o in outs])
    for key, value in gaussianity.ks_normal(x, alpha).items():
      yield f'{name}_{key}', value
