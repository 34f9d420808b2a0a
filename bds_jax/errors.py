"""Errors that are the user's to fix (a bad config, missing data, a busy or damaged run).

The entry points print these as one line and exit non-zero, without a traceback (set
BDS_DEBUG=1 to see it); anything else keeps its traceback, since it is a bug.
"""

import errno
import logging
import os
import sys

DEBUG_ENV = 'BDS_DEBUG'


class UserError(Exception):
  """An expected error whose message says what to do."""


class ConfigError(UserError, ValueError):
  """A config value that cannot work, or one that differs from the run's."""


class InputError(UserError, ValueError):
  """Bad input: an index out of range, a malformed pose file, a damaged run file."""


def is_user_error(e: BaseException) -> bool:
  """Whether `e` is an expected error (above, a missing file, a full disk, no permission)."""
  if isinstance(e, (UserError, FileNotFoundError, PermissionError)):
    return True
  return disk_full(e)


def disk_full(e: BaseException) -> bool:
  """Whether `e`, or an error it was raised from, is a full disk or quota (also when a library
  such as TensorStore re-raised it as text)."""
  while e is not None:
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
      return True
    if 'No space left on device' in str(e) or 'Disk quota exceeded' in str(e):
      return True
    e = e.__cause__ or e.__context__
  return False


def message(e: BaseException) -> str:
  """The error's text, unwrapped from the KeyError/AttributeError layers config_dict adds."""
  while e.args and isinstance(e.args[0], BaseException):
    e = e.args[0]
  text = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
  return text.strip()


def _first_line(e: BaseException) -> str:
  lines = message(e).splitlines()
  return lines[0] if lines else type(e).__name__


def debug() -> bool:
  return os.environ.get(DEBUG_ENV, '') not in ('', '0')


def _fail(text: str, code: int = 1):
  print(f'Error: {text}\n(Set {DEBUG_ENV}=1 for the traceback.)', file=sys.stderr)
  sys.exit(code)


def parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing (for `app.run(main, flags_parser=...)`); a bad flag, preset or config
  field is one line instead of three tracebacks."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  try:
    return flags.FLAGS(argv)
  except Exception as e:  # pylint: disable=broad-except
    if debug():
      raise
    text = message(e)
    if 'Traceback (most recent call last)' in text:  # config_flags quotes the config's error
      head, _, tail = text.partition('Traceback (most recent call last)')
      text = f'{head.strip()} {tail.strip().splitlines()[-1]}'
    elif isinstance(e, (KeyError, AttributeError)):
      text = f'no config field {text}'
    _fail(f'bad command line: {" ".join(text.split())}', 2)


class _QuietDiskFull:
  """A logging filter that drops the records of a full disk (orbax's background threads and
  asyncio's unretrieved futures each log the same error with a traceback); the main thread's
  one line says it once."""

  def filter(self, record) -> bool:
    exc = record.exc_info[1] if record.exc_info else None
    if exc is not None and disk_full(exc):
      return False
    text = record.getMessage()
    return not ('No space left on device' in text or 'Disk quota exceeded' in text)


# Loggers that report errors of background work: absl (orbax logs through it) and asyncio.
_BACKGROUND_LOGGERS = ('absl', 'asyncio')


def main_with_clear_errors(run):
  """Calls run() (an entry point's app.run); expected errors exit non-zero with one message."""
  if not debug():
    for name in _BACKGROUND_LOGGERS:
      logger = logging.getLogger(name)
      if not any(isinstance(f, _QuietDiskFull) for f in logger.filters):
        logger.addFilter(_QuietDiskFull())
  try:
    run()
  except KeyboardInterrupt:
    if debug():
      raise
    _fail('interrupted (a second Ctrl-C stops without saving).', 130)
  except Exception as e:  # pylint: disable=broad-except
    if debug() or not is_user_error(e):
      raise
    if disk_full(e) and not isinstance(e, UserError):
      _fail(f'the disk is full ({_first_line(e)}). The finished checkpoints are intact: free '
            'some space and run the same command again to resume.')
    _fail(message(e))
