"""Helpers shared by the training tests: signals sent from inside a run, logged scalars."""

import os
import signal as signal_lib

from bds_jax import metric_writer


def signal_at(step: int, sig=signal_lib.SIGTERM, times: int = 1):
  """A trainer hook that sends this process `sig` (`times` times) after step `step`."""
  def hook(s, metrics):
    del metrics
    if s == step:
      for _ in range(times):
        os.kill(os.getpid(), sig)
  return hook


def logged(workdir, key: str) -> list[tuple[int, float]]:
  """(step, value) of every metrics.jsonl row of `workdir` that logs `key`."""
  rows = metric_writer.read_jsonl(os.path.join(workdir, 'metrics.jsonl'))
  return [(r['step'], r[key]) for r in rows if key in r]
