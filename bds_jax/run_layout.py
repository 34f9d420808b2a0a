"""The names of a run directory's files and folders, in one place.

Every module that writes or reads a run takes the names from here (the bottom layer, so the
loop, the metric writer, the report page and synthesize all can), and `bds_jax.runs.Run`
turns them into paths. A run directory holds:

  config.json          the complete config the run was created with (written once)
  config_history.jsonl the fields changed on resume since, with the step they changed at
  train.lock           the writer's lock: host and pid of the training process (run_lock.py)
  normalization.json   the train split's per-dimension mean and std (behavior runs)
  adversary_chance.json  appearance runs: the adversary's chance level (its default clamp)
  code_stats.json      diffusion runs: a copy of the code scaling their checkpoints hold
  checkpoints/<step>/  orbax checkpoints: the whole train state and the data-iterator position
  checkpoints_quarantined/  checkpoints that could not be restored, moved aside on resume
                       (`bds_jax.checkpointing.QUARANTINE_SUFFIX`)
  flow/                a flow prior trained on this run's codes (itself a run directory)
  diffusion/           an observation-conditioned diffusion prior over them (likewise; the
                       `hmp` suite's, observation only by default)
  diffusion_labels/    a diffusion prior also conditioned on the class (the `guidance` suite's)
  metrics.jsonl, tensorboard/, final_metrics.json   written while training
  figures/, samples/, reenactment/   the training-time figure evaluators' default folders
  eval/                evaluate.py's results.json and one Markdown table per suite
  synthesis/           synthesize.py's videos and stills, listed in manifest.json
  index.html, report/  the HTML report (bds_jax/viz/report_page.py) and its generated images
"""

CONFIG_FILE = 'config.json'
CONFIG_HISTORY_FILE = 'config_history.jsonl'
LOCK_FILE = 'train.lock'
NORMALIZATION_FILE = 'normalization.json'
ADVERSARY_CHANCE_FILE = 'adversary_chance.json'
CODE_STATS_FILE = 'code_stats.json'
# Files derived from the data at creation, refitted when a run without checkpoints restarts.
DERIVED_FILES = (NORMALIZATION_FILE, ADVERSARY_CHANCE_FILE, CODE_STATS_FILE)
CHECKPOINT_DIR = 'checkpoints'

FLOW_DIR = 'flow'
DIFFUSION_DIR = 'diffusion'
DIFFUSION_LABELS_DIR = 'diffusion_labels'

METRICS_FILE = 'metrics.jsonl'
TENSORBOARD_DIR = 'tensorboard'
FINAL_METRICS_FILE = 'final_metrics.json'
FIGURES_DIR = 'figures'          # appearance_figure
SAMPLES_DIR = 'samples'          # sample_figures
REENACTMENT_DIR = 'reenactment'  # reenactment_figure

EVAL_DIR = 'eval'
RESULTS_FILE = 'results.json'    # in EVAL_DIR, or evaluate.py's --out_dir

SYNTHESIS_DIR = 'synthesis'
MANIFEST_FILE = 'manifest.json'  # in SYNTHESIS_DIR

REPORT_FILE = 'index.html'
REPORT_ASSETS_DIR = 'report'
