"""Trains a bds_jax model. Thin entry point: flags, multi-host set-up, dispatch.

  python train.py --config=configs/behavior.py[:preset] --workdir=runs/behavior \
      [--config.model.variant=cvae ...]

Re-running the same command resumes from the latest checkpoint in --workdir. A run stopped by
SIGTERM or Ctrl-C saves a checkpoint and exits with STOPPED_EXIT_CODE (75, EX_TEMPFAIL:
stopped, resumable), so that `train.py ... && evaluate.py ...` does not evaluate a half-trained
model and a scheduler can tell a preemption from a failure (exit 1). On several hosts
(Cloud TPU pod slices, multi-node GPU) pass --distributed so that jax.distributed.initialize()
discovers the cluster; see docs/scaling.md.
"""

import logging as std_logging
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from bds_jax import errors
from bds_jax import kinds
from bds_jax import xla_cpu
from bds_jax.train import trainer_module

config_flags.DEFINE_config_file('config', None, 'Config file (with optional :preset).',
                                lock_config=True)
flags.DEFINE_string('workdir', None, 'Directory for checkpoints, logs and figures.')
flags.DEFINE_bool('distributed', False, 'Call jax.distributed.initialize() (multi-host).')
flags.DEFINE_string('coordinator_address', None, 'host:port of process 0 (manual multi-process).')
flags.DEFINE_integer('num_processes', None, 'Number of processes (manual multi-process).')
flags.DEFINE_integer('process_id', None, 'This process id (manual multi-process).')
flags.mark_flags_as_required(['config', 'workdir'])

FLAGS = flags.FLAGS
STOPPED_EXIT_CODE = 75  # sysexits.h EX_TEMPFAIL: stopped early by a signal, saved, resumable


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  # Libraries (orbax above all) log every save at INFO; keep theirs at WARNING, ours at INFO.
  logging.set_verbosity(logging.WARNING)
  std_logging.getLogger('bds_jax').setLevel(std_logging.INFO)
  import jax  # pylint: disable=g-import-not-at-top
  config = FLAGS.config
  kind = kinds.get(config.get('trainer'))  # an unknown one: a one-line error naming the kinds
  if kind.eigen_convolutions:
    xla_cpu.prefer_eigen_convolutions()  # before the backend starts
  if FLAGS.distributed or FLAGS.coordinator_address:
    jax.distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)
  std_logging.getLogger('bds_jax').info('JAX %s, %d processes, devices: %s', jax.__version__,
                                        jax.process_count(), jax.devices())
  trainer = trainer_module(kind.name)
  try:
    result = trainer.train_and_evaluate(config, FLAGS.workdir)
  except Exception:
    from bds_jax import run_config  # pylint: disable=g-import-not-at-top
    run_config.discard_untrained(FLAGS.workdir)  # a failed first start leaves no run behind
    raise
  if result.interrupted:
    print(f'Stopped at step {result.step} (checkpoint saved); run the same command again to '
          f'resume. Exit code {STOPPED_EXIT_CODE}: stopped, resumable.', file=sys.stderr)
    sys.exit(STOPPED_EXIT_CODE)


if __name__ == '__main__':
  errors.main_with_clear_errors(lambda: app.run(main, flags_parser=errors.parse_flags))
