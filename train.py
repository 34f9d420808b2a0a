"""Trains a bds_jax model. Thin entry point: flags, multi-host set-up, dispatch.

  python train.py --config=configs/behavior.py[:preset] --workdir=runs/behavior \
      [--config.model.variant=cvae ...]

Re-running the same command resumes from the latest checkpoint in --workdir. On several hosts
(Cloud TPU pod slices, multi-node GPU) pass --distributed so that jax.distributed.initialize()
discovers the cluster; see README.md.
"""

import importlib
import logging as std_logging

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from bds_jax import errors
from bds_jax import xla_cpu

config_flags.DEFINE_config_file('config', None, 'Config file (with optional :preset).',
                                lock_config=True)
flags.DEFINE_string('workdir', None, 'Directory for checkpoints, logs and figures.')
flags.DEFINE_bool('distributed', False, 'Call jax.distributed.initialize() (multi-host).')
flags.DEFINE_string('coordinator_address', None, 'host:port of process 0 (manual multi-process).')
flags.DEFINE_integer('num_processes', None, 'Number of processes (manual multi-process).')
flags.DEFINE_integer('process_id', None, 'This process id (manual multi-process).')
flags.mark_flags_as_required(['config', 'workdir'])

FLAGS = flags.FLAGS

TRAINERS = {'behavior': 'bds_jax.train.behavior', 'flow': 'bds_jax.train.flow',
            'appearance': 'bds_jax.train.appearance', 'diffusion': 'bds_jax.train.diffusion'}


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  # Libraries (orbax above all) log every save at INFO; keep theirs at WARNING, ours at INFO.
  logging.set_verbosity(logging.WARNING)
  std_logging.getLogger('bds_jax').setLevel(std_logging.INFO)
  import jax  # pylint: disable=g-import-not-at-top
  if FLAGS.config.trainer == 'appearance':
    xla_cpu.prefer_eigen_convolutions()  # before the backend starts
  if FLAGS.distributed or FLAGS.coordinator_address:
    jax.distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)
  config = FLAGS.config
  if config.trainer not in TRAINERS:
    raise app.UsageError(f'config.trainer={config.trainer!r} is not one of {sorted(TRAINERS)}.')
  std_logging.getLogger('bds_jax').info('JAX %s, %d processes, devices: %s', jax.__version__,
                                        jax.process_count(), jax.devices())
  trainer = importlib.import_module(TRAINERS[config.trainer])
  trainer.train_and_evaluate(config, FLAGS.workdir)


if __name__ == '__main__':
  errors.main_with_clear_errors(lambda: app.run(main, flags_parser=errors.parse_flags))
