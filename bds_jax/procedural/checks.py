"""Argument checks shared by the generator's public functions; all raise ValueError."""

import numbers


def resolve(value, names: tuple[str, ...], what: str) -> str:
  """Maps a name or an integer index into `names` to the name."""
  if isinstance(value, str):
    if value in names:
      return value
  elif isinstance(value, numbers.Integral) and not isinstance(value, bool):
    if 0 <= int(value) < len(names):
      return names[int(value)]
  raise ValueError(
      f'Unknown {what} {value!r}: expected one of {list(names)} or an index in '
      f'[0, {len(names) - 1}].')


def integer(value, what: str, minimum: int) -> int:
  """Returns `value` as an int if it is an integer >= minimum."""
  if (not isinstance(value, numbers.Integral) or isinstance(value, bool)
      or value < minimum):
    raise ValueError(f'{what} must be an integer >= {minimum}, got {value!r}.')
  return int(value)
