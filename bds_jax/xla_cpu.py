"""XLA:CPU's convolution kernels for the convolution-heavy appearance model.

On CPU, jaxlib 0.10.2 hands every convolution to YNNPACK. At the appearance model's shapes
that path is slow: 3x3 convolutions with 32 channels at 256² ran at ~58 GFLOP/s and their
weight gradients at ~25, against ~130 and ~110 with XLA's own (Eigen) kernels. Naming the
library-fusion types explicitly (`--xla_cpu_experimental_ynn_fusion_type=dot`) keeps
convolutions out of YNNPACK: the appearance train step at the paper's shapes went from 38.2 s
to 29.6 s on a 2-core machine (docs/speed.md). The behavior model, all matrix products, was
5-15% slower with it, so only the appearance entry points (train, evaluate, synthesize video,
the benchmark) ask for it.

The flag is experimental: XLA rejects unknown flags and stops the process, so it is set only
for the jaxlib versions it was measured on, only if the user's XLA_FLAGS do not already choose
(`BDS_JAX_XLA_CPU_DEFAULTS=1` opts out), and only before JAX has started a backend, because
XLA reads XLA_FLAGS once. It changes nothing on GPU or TPU.
"""

import logging
import os

FLAG = '--xla_cpu_experimental_ynn_fusion_type=dot'
TESTED_JAXLIB = ('0.10.2',)
OPT_OUT = 'BDS_JAX_XLA_CPU_DEFAULTS'

log = logging.getLogger(__name__)


def prefer_eigen_convolutions() -> bool:
  """Sets FLAG in XLA_FLAGS when it is safe to (see the module docstring); True if set now
  or already there."""
  flags = os.environ.get('XLA_FLAGS', '')
  if FLAG in flags.split():
    return True
  if os.environ.get(OPT_OUT) or 'xla_cpu_experimental_ynn_fusion_type' in flags:
    return False
  import jaxlib  # pylint: disable=g-import-not-at-top
  if jaxlib.__version__ not in TESTED_JAXLIB:
    log.info('jaxlib %s: not setting %s (measured on %s only).', jaxlib.__version__, FLAG,
             ', '.join(TESTED_JAXLIB))
    return False
  from jax._src import xla_bridge  # pylint: disable=g-import-not-at-top
  if xla_bridge.backends_are_initialized():
    log.warning('JAX has started its backend already; %s not set (convolutions on CPU may be '
                'slower).', FLAG)
    return False
  os.environ['XLA_FLAGS'] = f'{flags} {FLAG}'.strip()
  log.info('XLA:CPU convolutions on XLA\'s own kernels (%s; %s=1 opts out).', FLAG, OPT_OUT)
  return True
