"""Flow prior (stage 2): a normalizing flow over the codes of a trained behavior model.

  python train.py --config=configs/flow.py[:preset] --config.behavior_workdir=runs/behavior \
      --workdir=runs/behavior/flow

The behavior model is frozen; the flow trains on fresh posterior samples mu + sigma * eps of
its train windows. Presets (after the colon):
  (none)    the paper's description: 15 blocks, 2 linear layers of width 1024 per coupling net.
  upstream  the released code: 15 blocks, 4 layers of width 2048 (~630M parameters for 1024-d
            codes: ~10 GB of parameters + Adam state in fp32).
  demo      small flow for the README quick start's demo behavior model (~1 min on 2 cores).
  smoke     tiny, for tests.
Optimiser per the code: Adam lr 2.88e-5 (= 4.5e-7 x batch 64), betas (0.5, 0.9), 5 epochs; the
paper says lr 6.5e-6 (--config.optim.lr=6.5e-6). Reference spec §3.
"""

import ml_collections

PRESETS = ('upstream', 'demo', 'smoke')


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  preset = (arg or '').strip()
  if preset and preset not in PRESETS:
    raise ValueError(f'Unknown preset {preset!r} for configs/flow.py; choose one of {PRESETS} '
                     'or none (configs/flow.py).')
  c = ml_collections.ConfigDict()
  c.trainer = 'flow'
  c.preset = preset
  c.seed = 0
  c.behavior_workdir = ''           # required: the trained behavior run (its --workdir)
  c.behavior_step = -1              # checkpoint step of the behavior run (-1: latest)

  c.data = ml_collections.ConfigDict()
  c.data.data_dir = ''              # '' = the behavior run's data settings
  c.data.batch_size = 64
  c.data.num_threads = 2
  c.data.prefetch = 8

  c.flow = ml_collections.ConfigDict()
  c.flow.num_blocks = 15
  c.flow.hidden_width = 1024        # paper: D = 1024; upstream code: 2048
  c.flow.num_layers = 2             # linear layers per s/t net; paper 2, upstream code 4
  c.flow.permutation_seed = 0       # fixed random channel permutations
  c.flow.compute_dtype = 'float32'  # or 'bfloat16': bf16 matmuls, float32 params/optimizer
  c.flow.actnorm_init_samples = 512  # posterior codes for the data-dependent ActNorm init

  c.optim = ml_collections.ConfigDict()
  c.optim.lr = 2.88e-5
  c.optim.b1 = 0.5
  c.optim.b2 = 0.9

  c.num_epochs = 5.0
  c.num_steps = 0                   # > 0 overrides num_epochs
  c.log_every_steps = 100
  c.eval_every_steps = 1000
  c.eval_batches = 8                # test batches for NLL and the KS diagnostic
  c.ks_alpha = 0.05                 # significance level of the per-dimension KS test
  c.checkpoint_every_steps = 1000
  c.keep_checkpoints = 3
  c.gif_every_steps = 0
  c.final_gif = True
  c.sample_loop_behaviors = 4       # behaviors chained in the sample-loop video
  c.video_format = 'gif'            # gif | mp4
  c.progress_bar = True

  # Evaluators: bds_jax/evaluation/<type>.py, run every `every_steps` (0: not periodically) and,
  # if `final`, after the last step (bds_jax/evaluation/common.py). The fields above set them.
  c.evals = ml_collections.ConfigDict()
  c.evals.eval = dict(type='batch_means', fn='eval_step', data='eval', prefix='eval/',
                      every_steps=c.get_ref('eval_every_steps'))  # NLL, log-det, log-prob
  c.evals.gaussianity = dict(type='ks_test', fn='eval_step', data='eval', prefix='eval/',
                             codes=('flow', 'posterior'), alpha=c.get_ref('ks_alpha'),
                             every_steps=c.get_ref('eval_every_steps'))
  c.evals.samples = dict(type='sample_figures', data='eval', prefix='',
                         seed=c.get_ref('seed') + 5,
                         loop_behaviors=c.get_ref('sample_loop_behaviors'),
                         video_format=c.get_ref('video_format'),
                         every_steps=c.get_ref('gif_every_steps'), final=c.get_ref('final_gif'))

  if preset == 'upstream':
    c.flow.hidden_width = 2048
    c.flow.num_layers = 4
  elif preset == 'demo':
    c.flow.num_blocks = 6
    c.flow.hidden_width = 256
    c.num_steps = 1500
    c.optim.lr = 2e-4
    c.log_every_steps = 50
    c.eval_every_steps = 500
    c.checkpoint_every_steps = 500
  elif preset == 'smoke':
    c.data.batch_size = 8
    c.flow.num_blocks = 2
    c.flow.hidden_width = 16
    c.flow.actnorm_init_samples = 32
    c.optim.lr = 1e-3
    c.num_steps = 20
    c.log_every_steps = 5
    c.eval_every_steps = 10
    c.eval_batches = 2
    c.checkpoint_every_steps = 10
    c.sample_loop_behaviors = 2
    c.progress_bar = False
  return c
