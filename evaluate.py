"""Evaluates trained runs: the paper's tables and the stochastic-HMP benchmark.

  python evaluate.py --config=configs/behavior.py[:preset] --workdir=runs/behavior \
      [--eval_config=configs/evaluate.py[:smoke]] [--eval_config.suites=transfer,hmp] \
      [--baseline_workdirs=runs/cae,runs/cvae,runs/no_adv] [--out_dir=DIR]
  python evaluate.py --config=configs/appearance.py[:preset] --workdir=runs/appearance \
      [--eval_config.appearance.inception_weights=inception_v3.npz]

--config must be the config the run was trained with (preset and overrides included); it is
checked against the run's config.json. The flow prior in <workdir>/flow is used when present.
Writes <out_dir or workdir/eval>/results.json and one Markdown table per suite, with the
paper's reported numbers beside ours. Suites: transfer (Table 1), realism (Table 3),
diversity (Tables 2, 4), hmp (stochastic human motion prediction), gt_transfer (synthetic
data: transfer scored against the true re-enactment); for an appearance run (its config.json
says which), appearance (Table 5, the posture probe, and on synthetic_people transfer scored
against the true image).
"""

import logging as std_logging
import os

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from bds_jax import errors
from bds_jax import kinds
from bds_jax import run_layout
from bds_jax import run_lock
from bds_jax import xla_cpu

ROOT = os.path.dirname(os.path.abspath(__file__))

config_flags.DEFINE_config_file('config', None, 'Config the run was trained with.',
                                lock_config=True)
config_flags.DEFINE_config_file('eval_config', os.path.join(ROOT, 'configs', 'evaluate.py'),
                                'Evaluation settings (with optional :smoke).', lock_config=True)
flags.DEFINE_string('workdir', None, 'Training run directory to evaluate.')
flags.DEFINE_list('baseline_workdirs', [], 'Other runs (variants) evaluated alongside.')
flags.DEFINE_string('out_dir', None, 'Where results go (default: <workdir>/eval).')
flags.DEFINE_bool('report', True, 'Rewrite <workdir>/index.html (the run\'s HTML report) '
                  'when the results go to <workdir>/eval.')
flags.mark_flags_as_required(['config', 'workdir'])
FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  logging.set_verbosity(logging.WARNING)
  std_logging.getLogger('bds_jax').setLevel(std_logging.INFO)
  if kinds.eigen_convolutions(FLAGS.config.get('trainer')):
    xla_cpu.prefer_eigen_convolutions()  # before the backend starts
  from bds_jax.evaluation import runner  # pylint: disable=g-import-not-at-top
  out_dir = FLAGS.out_dir or os.path.join(FLAGS.workdir, run_layout.EVAL_DIR)
  with run_lock.reading():  # a trainer cannot start on the runs read until this ends
    runner.evaluate(FLAGS.config, FLAGS.eval_config, FLAGS.workdir, FLAGS.baseline_workdirs,
                    out_dir)
  print(f'Results: {os.path.join(out_dir, run_layout.RESULTS_FILE)} and the *.md tables beside '
        'it.')
  if FLAGS.report and not FLAGS.out_dir:
    from bds_jax.viz import report_page  # pylint: disable=g-import-not-at-top
    print(f'Report: {report_page.write(FLAGS.workdir)}')


if __name__ == '__main__':
  errors.main_with_clear_errors(lambda: app.run(main, flags_parser=errors.parse_flags))
