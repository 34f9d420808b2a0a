"""Training evaluator: a step function's scalar metrics, averaged over a fixed evaluation set.

  config.evals.eval = dict(type='batch_means', fn='eval_step', data='eval', every_steps=...)

Runs the trainer's `fn` (e.g. reconstruction, KL and regressor loss of the behavior model; the
flow's NLL, log-det and log-probability) on every full batch of the fixed set `data` and yields
the mean of each scalar output, in name order. Batches are equal-sized, so this is the mean
over the set's windows. `inputs` names the arrays of `data` the function reads (the behavior
model's windows are 'poses'; the appearance model's pairs have several).
"""


def run(ctx, *, fn: str = 'eval_step', data: str = 'eval', inputs=('poses',)):
  outs = ctx.outputs(fn, data, tuple(inputs))
  if not outs:
    raise ValueError(f'The evaluation set {data!r} holds less than one batch of '
                     f'{ctx.batch_size} windows.')
  for key, value in outs[0].items():
    if getattr(value, 'ndim', 0) == 0:
      yield key, sum(float(o[key]) for o in outs) / len(outs)
