"""Observation-conditioned latent diffusion prior over a frozen behavior model's codes.

  python train.py --config=configs/diffusion.py[:preset] --config.behavior_workdir=runs/demo \
      --workdir=runs/demo/diffusion

BeLFusion's prior (stochastic-HMP spec §5): an observation encoder (GRU over the 25 observed
frames at 50 Hz, trained first as an autoencoder, then frozen) and a denoiser that predicts the
behavior code x₀ of the window that starts at the last observed pose, with the 10-step
"sqrt1e-4" schedule, best-of-K losses on the code and on the decoded motion, EMA weights, DDIM
η = 0 sampling; codes are min-max scaled with the statistics of the whole training split. One
run trains both phases: the first `optim.obs_steps` steps train the observation autoencoder,
the rest the denoiser.

The prior is conditioned on the observation only, as BeLFusion's (the `hmp` suite's row).
Action control (new) is a separate model: `--config.model.use_labels=True` (or the `labels`
preset) adds a class embedding with a null class and classifier-free guidance. Train it into
<behavior run>/diffusion_labels, where the `guidance` suite looks for it:

  python train.py --config=configs/diffusion.py:demo --config.model.use_labels=True \
      --config.behavior_workdir=runs/demo --workdir=runs/demo/diffusion_labels

Presets (after the colon):
  (none)  = h36m's model and loss on the behavior run's data, observation only.
  h36m    the spec's values: k = 50, motion weight 5, Adam 5e-4 (amsgrad), ×0.9 every 100 epochs
          of 10 000 windows, 217 epochs; autoencoder 500 epochs of 5 000 windows, lr 1e-3,
          ×0.8 every 500; EMA 0.999 every 10 steps from step 1 000.
  labels  the same, with label conditioning (any other preset: --config.model.use_labels=True).
  demo    for the README's :demo behavior run on the synthetic data (minutes on 2 CPU cores).
  smoke   tiny, for tests.
"""

import ml_collections

PRESETS = ('h36m', 'labels', 'demo', 'smoke')


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  preset = (arg or '').strip()
  if preset and preset not in PRESETS:
    raise ValueError(f'Unknown preset {preset!r} for configs/diffusion.py; choose one of '
                     f'{PRESETS} or none (configs/diffusion.py).')
  c = ml_collections.ConfigDict()
  c.trainer = 'diffusion'
  c.preset = preset
  c.seed = 6                        # BeLFusion's seed
  c.behavior_workdir = ''           # required: the trained behavior run (its --workdir)
  c.behavior_step = -1              # checkpoint step of the behavior run (-1: latest)

  c.data = ml_collections.ConfigDict()
  c.data.data_dir = ''              # '' = the behavior run's data settings
  c.data.observed = 25              # observed frames at 50 Hz (the HMP protocol's input)
  c.data.batch_size = 64
  c.data.num_threads = 2
  c.data.prefetch = 8

  c.model = ml_collections.ConfigDict()
  c.model.embed_dim = 64            # observation embedding (GRU hidden size; spec 64)
  c.model.decoder_hidden = 128      # the observation autoencoder's decoder GRU
  c.model.width = 512               # denoiser MLP width
  c.model.num_blocks = 4            # FiLM residual blocks
  c.model.num_steps = 10            # diffusion steps (spec: 10, "sqrt1e-4")
  # BeLFusion's prior sees the observation only. Stored configs carry this field, so runs
  # trained when the default was True still load (and resume) as labelled models.
  c.model.use_labels = preset == 'labels'  # class conditioning with classifier-free guidance
  c.model.num_labels = -1           # classes of the behavior run's data (-1: set from the data)
  c.model.label_dropout = 0.1       # P(null label) in training (with use_labels)
  # Training examples whose posterior codes set the min-max scaling to [-1, 1]: 0 = all of the
  # train split, one streamed pass of the encoder (BeLFusion: the whole training set). Runs
  # made before stored 4096, a random subset; their checkpoints hold the scaling they used.
  c.model.code_stats_samples = 0

  c.loss = ml_collections.ConfigDict()
  c.loss.k = 50                     # noisy copies per observation for best-of-K (spec 50)
  c.loss.latent_weight = 1.0        # best-of-K L1 on the code
  c.loss.motion_weight = 5.0        # best-of-K RMS error of the decoded motion (spec w = 5)
  c.loss.motion_steps = 0           # decoded frames in that term (0: the behavior seq_len)

  c.optim = ml_collections.ConfigDict()
  c.optim.lr = 5e-4                 # denoiser: Adam, amsgrad (spec)
  c.optim.decay_rate = 0.9          # staircase decay...
  c.optim.decay_every_steps = 15625  # ...every 100 epochs of 10 000 windows at batch 64
  c.optim.obs_lr = 1e-3             # observation autoencoder: Adam, amsgrad
  c.optim.obs_decay_rate = 0.8
  c.optim.obs_decay_every_steps = 39063  # 500 epochs of 5 000 windows at batch 64
  c.optim.obs_steps = 39063         # autoencoder steps before the denoiser trains

  c.ema = ml_collections.ConfigDict()
  c.ema.decay = 0.999
  c.ema.every_steps = 10
  c.ema.start_step = 1000           # denoiser steps before EMA starts (it copies until then)

  c.num_steps = 39063 + 33907       # autoencoder + 217 epochs of 10 000 windows at batch 64
  c.num_epochs = 0.0                # (num_steps > 0 is used)
  c.log_every_steps = 100
  c.eval_every_steps = 2000
  c.eval_batches = 4                # fixed test batches for the eval losses and sample ADE
  c.eval_samples = 10               # K of the in-training best-of-K ADE
  c.checkpoint_every_steps = 2000
  c.keep_checkpoints = 3
  c.progress_bar = True

  c.evals = ml_collections.ConfigDict()
  c.evals.eval = dict(type='batch_means', fn='eval_step', data='eval', prefix='eval/',
                      inputs=('observation', 'poses', 'label'),
                      every_steps=c.get_ref('eval_every_steps'))

  if preset == 'demo':
    c.model.width = 512
    c.model.num_blocks = 4
    c.loss.k = 10
    c.data.batch_size = 32
    c.optim.obs_steps = 800
    c.optim.obs_decay_every_steps = 400
    c.optim.lr = 1e-3
    c.optim.decay_every_steps = 1000
    c.optim.decay_rate = 0.5
    c.ema.decay = 0.995
    c.ema.every_steps = 1
    c.ema.start_step = 500
    c.num_steps = 800 + 3000
    c.log_every_steps = 50
    c.eval_every_steps = 1000
    c.checkpoint_every_steps = 500
  elif preset == 'smoke':
    c.data.batch_size = 8
    c.model.embed_dim = 16
    c.model.decoder_hidden = 16
    c.model.width = 32
    c.model.num_blocks = 1
    c.loss.k = 4
    c.optim.lr = 3e-3
    c.optim.obs_lr = 3e-3
    c.optim.obs_steps = 6
    c.optim.decay_every_steps = 1000
    c.optim.obs_decay_every_steps = 1000
    c.ema.decay = 0.9
    c.ema.every_steps = 1
    c.ema.start_step = 4
    c.num_steps = 30
    c.log_every_steps = 5
    c.eval_every_steps = 15
    c.eval_batches = 2
    c.eval_samples = 3
    c.checkpoint_every_steps = 10
    c.progress_bar = False
  return c
