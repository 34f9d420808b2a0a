"""One writer per run directory: an exclusive lock file naming its holder.

Training holds `DIR/train.lock` for as long as it runs (process 0 only: the other processes of
a multi-process run write no run files of their own). The lock is an `fcntl.flock` on that
file, so the kernel releases it when the holder dies, even by `kill -9`; the file's text (host,
pid, start time) is only there to name the holder in messages. A file whose text names a
process on this host but whose flock is free was left by a process that died: it is taken
over, with a log line. A lock left by another host cannot be checked from here and is refused
with the command to clear it.

Readers (evaluation, sampling, a flow loading its behavior run) call `check_no_writer`, which
refuses to read while a writer holds the lock. Inside `reading()` (evaluate.py and
synthesize.py run in it) it also keeps a shared flock on the file until the block ends, so a
trainer started during a long evaluation is refused instead of rotating checkpoints away under
it; a library caller outside `reading()` holds nothing after the check.

The file is never deleted (deleting a flocked file lets two processes lock two different
files); releasing unlocks it and empties its text.
"""

import atexit
import contextlib
import errno
import fcntl
import json
import logging
import os
import socket
import time

from bds_jax import errors
from bds_jax import run_layout

log = logging.getLogger(__name__)

_held: dict[str, int] = {}  # lock path -> open file descriptor, for locks this process holds
_read_held: dict[str, int] = {}  # lock path -> fd of a shared (reader's) lock held in reading()
_holding_reads = [False]


class LockedError(errors.UserError):
  """The run directory is in use by another process."""


def _describe(holder: dict) -> str:
  since = holder.get('since')
  when = time.strftime(' since %Y-%m-%d %H:%M:%S', time.localtime(since)) if since else ''
  return f'process {holder.get("pid")} on host {holder.get("host")}{when}'


def _read(fd: int) -> dict:
  os.lseek(fd, 0, os.SEEK_SET)
  text = os.read(fd, 4096).decode(errors='replace').strip()
  try:
    return json.loads(text) if text else {}
  except ValueError:
    return {'host': '?', 'pid': '?'}


def _alive(pid) -> bool:
  try:
    os.kill(int(pid), 0)
  except ProcessLookupError:
    return False
  except (PermissionError, ValueError, TypeError):
    return True  # exists but not ours, or unreadable: assume alive
  return True


def acquire(workdir: str, what: str = 'training') -> str:
  """Locks `workdir` for this process; returns the lock path. Re-entrant within a process."""
  path = os.path.join(os.path.abspath(workdir), run_layout.LOCK_FILE)
  if path in _held:
    return path
  if path in _read_held:  # this process read the run and now writes it: drop its read lock
    os.close(_read_held.pop(path))
  try:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  except OSError as e:
    raise errors.UserError(f'Cannot create the lock file {path}: {e.strerror}.') from e
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except OSError as e:
    holder = _read(fd)
    os.close(fd)
    if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
      raise
    raise LockedError(
        f'{os.path.dirname(path)} is in use by {_describe(holder) if holder else "another process"}'
        f' ({holder.get("what", "training") if holder else "reading it"}). Wait for it to finish, '
        'stop it, or use another --workdir.') from None
  holder = _read(fd)
  if holder:
    here = socket.gethostname()
    if holder.get('host') not in (here, '?') and holder.get('host') is not None:
      fcntl.flock(fd, fcntl.LOCK_UN)
      os.close(fd)
      raise LockedError(
          f'{path} names {_describe(holder)}, another host, which this one cannot check. If no '
          f'process uses {os.path.dirname(path)} any more, empty the lock (: > {path}) and '
          'run again.')
    state = 'no longer running' if not _alive(holder.get('pid')) else 'not holding it'
    log.warning('Taking over the lock %s left by %s (%s).', path, _describe(holder), state)
  os.ftruncate(fd, 0)
  os.lseek(fd, 0, os.SEEK_SET)
  os.write(fd, json.dumps({'host': socket.gethostname(), 'pid': os.getpid(),
                           'since': time.time(), 'what': what}).encode())
  os.fsync(fd)
  _held[path] = fd
  return path


def release(workdir: str):
  """Releases this process's lock on `workdir` (no-op if it holds none)."""
  path = os.path.join(os.path.abspath(workdir), run_layout.LOCK_FILE)
  fd = _held.pop(path, None)
  if fd is None:
    return
  try:
    os.ftruncate(fd, 0)
  except OSError:
    pass  # a full disk cannot stop the unlock
  fcntl.flock(fd, fcntl.LOCK_UN)
  os.close(fd)


def holds(workdir: str) -> bool:
  return os.path.join(os.path.abspath(workdir), run_layout.LOCK_FILE) in _held


def check_no_writer(workdir: str):
  """Raises LockedError if another process is training in `workdir`; inside `reading()`,
  keeps a shared lock on it until the block ends."""
  path = os.path.join(os.path.abspath(workdir), run_layout.LOCK_FILE)
  hold = _holding_reads[0]
  if path in _held or path in _read_held or not (hold or os.path.exists(path)):
    return
  try:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644) if hold else os.open(path, os.O_RDONLY)
  except OSError:
    return  # unreadable lock file (or a read-only run): nothing to check against
  try:
    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
  except OSError:
    holder = _read(fd)
    os.close(fd)
    raise LockedError(
        f'{os.path.dirname(path)} is being written by {_describe(holder)} '
        f'({holder.get("what", "training")}); its checkpoints may change while they are read. '
        'Wait for it to finish (or copy a checkpoint elsewhere) and run again.') from None
  if hold:
    _read_held[path] = fd
  else:
    os.close(fd)


@contextlib.contextmanager
def reading():
  """Within the block, every run read (check_no_writer) stays share-locked: a trainer cannot
  start on it until the block ends (its acquire names the lock as held by a reader)."""
  outer = _holding_reads[0]
  _holding_reads[0] = True
  try:
    yield
  finally:
    _holding_reads[0] = outer
    if not outer:
      for path in list(_read_held):
        os.close(_read_held.pop(path))


@atexit.register
def _release_all():
  for path in list(_held):
    release(os.path.dirname(path))
