"""Evaluation settings (sample counts, suites, seeds) for evaluate.py.

  python evaluate.py --config=configs/behavior.py[:preset] --workdir=runs/behavior \
      [--eval_config=configs/evaluate.py[:smoke]] [--eval_config.suites=transfer,hmp]
  python evaluate.py --config=configs/appearance.py[:preset] --workdir=runs/appearance \
      [--eval_config.appearance.inception_weights=inception_v3.npz]

Each section is one suite's settings. Behavior runs take the SUITES below; appearance runs
the APPEARANCE_SUITES. `suites='all'` (the default) runs every suite of the run's trainer.

Defaults are the paper's / upstream's counts (reference spec §5; stochastic-HMP spec §3);
`:demo` is sized for `make demo` (a few minutes on 2 CPU cores; the numbers are noisier than
the paper-sized defaults); `:smoke` shrinks everything for tests. Every field can be
overridden on the command line.
"""

import ml_collections

SUITES = ('transfer', 'realism', 'diversity', 'hmp', 'gt_transfer', 'guidance')
APPEARANCE_SUITES = ('appearance',)
PRESETS = ('demo', 'smoke')


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  preset = (arg or '').strip()
  if preset and preset not in PRESETS:
    raise ValueError(f'Unknown preset {preset!r} for configs/evaluate.py; choose one of '
                     f'{PRESETS} or none.')
  c = ml_collections.ConfigDict()
  c.suites = 'all'                # every suite of the run's trainer, or a comma-separated subset
                                  # (gt_transfer needs synthetic_motion)
  c.seed = 0
  c.batch_size = 256              # model inference batch
  c.flow_workdir = ''             # '' = <workdir>/flow when it holds a flow run
  c.data_dir = ''                 # TFDS data dir of the run's dataset ('' = as in its config.json)
  c.progress_bar = True

  c.transfer = ml_collections.ConfigDict()
  c.transfer.num_windows = 25000      # test transfer pairs (upstream: the first 25 024 windows)
  c.transfer.train_windows = 25000    # train-split windows for the probes
  c.transfer.probe_steps = 2000       # linear action probe / RE regressor steps (upstream ~2k)
  c.transfer.classifier_steps = 2000  # the "gt" sequence classifier (upstream: all of stage 1)

  c.realism = ml_collections.ConfigDict()
  c.realism.num_windows = 25000       # real and generated sequences per kind (upstream 25k)
  c.realism.steps = 2000              # classifier steps per kind (upstream ~2k)

  c.diversity = ml_collections.ConfigDict()
  c.diversity.num_conditionings = 6250  # upstream: every 4th of ~25k test windows
  c.diversity.num_samples = (10, 50)    # N of Table 2 (Table 4's APD uses the largest)

  c.hmp = ml_collections.ConfigDict()
  c.hmp.num_samples = 50              # K
  c.hmp.observed = 25                 # frames at 50 Hz
  c.hmp.predicted = 100
  c.hmp.stride = 25
  c.hmp.threshold = 0.5               # multimodal ground-truth radius (H36M)
  c.hmp.max_windows = 0               # 0 = every protocol window (5 168 on H36M)
  c.hmp.classifier_checkpoint = ''    # npz of the BeLFusion motion classifier, for FID

  c.gt_transfer = ml_collections.ConfigDict()
  c.gt_transfer.num_pairs = 2000      # (source, target start posture) pairs of test subjects
  c.gt_transfer.classifier_steps = 2000

  c.guidance = ml_collections.ConfigDict()  # needs <workdir>/diffusion_labels (use_labels)
  c.guidance.num_windows = 500        # HMP test windows, each asked for a random class
  c.guidance.samples_per_window = 10
  c.guidance.scales = (1.0, 2.0)      # classifier-free guidance scales
  c.guidance.classifier_steps = 2000  # the held-out sequence classifier
  c.guidance.train_windows = 4000

  c.appearance = ml_collections.ConfigDict()  # appearance runs (paper Table 5; spec §5.7)
  c.appearance.num_images = 8000      # eval-split frames, in order (upstream max_n_samples)
  c.appearance.batch_size = 8         # model and Inception batch (upstream: 8)
  c.appearance.probe_images = 8000    # train-split frames whose means train the posture probe
  c.appearance.probe_steps = 2000     # its Adam steps (batch 64)
  c.appearance.num_pairs = 500        # synthetic_people: cross-person pairs vs the true image
  c.appearance.inception_weights = '' # npz (bds_jax/models/inception.py); '' = no IS or FID
  c.appearance.lpips_weights = ''     # npz (bds_jax/models/lpips.py); '' = no LPIPS (truth rows)

  if preset == 'demo':                # `make demo`: a few minutes on 2 CPU cores
    c.suites = 'transfer,realism,diversity,hmp,gt_transfer'
    c.transfer.num_windows = 1000
    c.transfer.train_windows = 2000
    c.transfer.probe_steps = 200
    c.transfer.classifier_steps = 200
    c.realism.num_windows = 500
    c.realism.steps = 100
    c.diversity.num_conditionings = 250
    c.hmp.max_windows = 256
    c.gt_transfer.num_pairs = 500
    # 200 steps left the recognition classifier at 59% on the true renderings; 1 000: 98%.
    c.gt_transfer.classifier_steps = 1000
    # The demo's appearance run (`--eval_config.suites=appearance`; about 1.5 min at 64 px).
    c.appearance.num_images = 1000
    c.appearance.probe_images = 2000
    c.appearance.probe_steps = 500
    c.appearance.num_pairs = 500
  elif preset == 'smoke':
    c.batch_size = 32
    c.progress_bar = False
    c.transfer.num_windows = 64
    c.transfer.train_windows = 128
    c.transfer.probe_steps = 30
    c.transfer.classifier_steps = 20
    c.realism.num_windows = 64
    c.realism.steps = 20
    c.diversity.num_conditionings = 8
    c.diversity.num_samples = (3, 5)
    c.hmp.num_samples = 5
    c.hmp.max_windows = 24
    c.gt_transfer.num_pairs = 24
    c.gt_transfer.classifier_steps = 20
    c.guidance.num_windows = 6
    c.guidance.samples_per_window = 2
    c.guidance.classifier_steps = 20
    c.guidance.train_windows = 64
    c.appearance.num_images = 8
    c.appearance.batch_size = 4
    c.appearance.probe_images = 24
    c.appearance.probe_steps = 20
    c.appearance.num_pairs = 6
  return c
