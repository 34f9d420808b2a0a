"""Evaluates trained bds_jax models (the paper's tables and the stochastic-HMP benchmark).

  python evaluate.py --config=configs/behavior.py --workdir=runs/behavior

The evaluation suites (paper Tables 1-4, the DLow/BeLFusion stochastic motion-prediction
protocol and ground-truth transfer on the synthetic dataset) are not implemented yet; until they
are, this command says so and exits with status 2 instead of printing numbers it did not compute.
"""

import sys

from absl import app
from absl import flags
from ml_collections import config_flags

config_flags.DEFINE_config_file('config', None, 'Config file (with optional :preset).',
                                lock_config=True)
flags.DEFINE_string('workdir', None, 'Training run directory to evaluate.')


def main(argv):
  del argv
  print('evaluate.py: the evaluation suites are not implemented yet (planned: paper Tables 1-4, '
        'stochastic human motion prediction, ground-truth transfer). Training writes eval/* '
        'reconstruction metrics to <workdir>/metrics.jsonl meanwhile.', file=sys.stderr)
  sys.exit(2)


if __name__ == '__main__':
  app.run(main)
