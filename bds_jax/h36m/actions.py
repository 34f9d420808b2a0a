"""The 15 Human3.6M actions, their class ids, and the file-name spellings of each format.

Class id = upstream action ID - 2 (reference-behavior-driven-synthesis.md §1.1): upstream numbers
the actions 2..16 and excludes ID 1 (`_ALL`).

The three raw formats spell actions differently, and the official release is not even uniform
across subjects (h36m-formats-and-upstream-checkpoints.md §2): "Photo 1" and "TakingPhoto" are the
same action, so are "WalkDog" and "WalkingDog 1", and the exp-map release writes "walkingdog_2".
`parse_action_name` maps every known spelling to (canonical action, sub-action).
"""

import re

# Canonical names, in upstream ID order (ID = index + 2).
ACTIONS = (
    'Directions', 'Discussion', 'Eating', 'Greeting', 'Phoning', 'Posing', 'Purchases',
    'Sitting', 'SittingDown', 'Smoking', 'TakingPhoto', 'Waiting', 'Walking', 'WalkingDog',
    'WalkTogether')
NUM_ACTIONS = len(ACTIONS)
ACTION_TO_ID = {name: i for i, name in enumerate(ACTIONS)}
UPSTREAM_ACTION_ID_OFFSET = 2

# The actions the paper holds out of training in its generalisation experiment (the upstream
# code never actually removed them from its train list, see reference spec §1.4).
WALKING_ACTIONS = ('Walking', 'WalkingDog', 'WalkTogether')
SITTING_ACTIONS = ('Sitting', 'SittingDown', 'Purchases')

# Spellings keyed by their normalised form (lower case, no spaces or underscores). Only names seen
# in the three releases are listed: a guess for anything else would risk mislabelling a sequence.
_ALIASES = {name.lower(): name for name in ACTIONS}
_ALIASES.update({
    'photo': 'TakingPhoto',  # Official release, e.g. S1 "Photo 1.cdf"; VideoPose3D npz keys.
    'walkdog': 'WalkingDog',  # Official release, e.g. S1 "WalkDog.cdf"; VideoPose3D npz keys.
    'walkingtogether': 'WalkTogether',  # Exp-map release.
})

# Action names that exist in the releases but are deliberately not part of the dataset: `_ALL`
# (upstream ID 1) concatenates other sequences.
_EXCLUDED = frozenset({'all'})

# "<name>", "<name> <k>" or "<name>_<k>"; the sub-action is the trailing number, if any.
_NAME_RE = re.compile(r'^(?P<name>.*?)(?:[ _]+(?P<sub>\d+))?$')


def _split(stem: str) -> tuple[str, str]:
  match = _NAME_RE.match(stem.strip())
  return match.group('name'), match.group('sub') or ''


def _normalise(name: str) -> str:
  return re.sub(r'[\s_]+', '', name).lower()


def is_excluded_action_name(stem: str) -> bool:
  """True for action names that are known but excluded on purpose (`_ALL`)."""
  return _normalise(_split(stem)[0]) in _EXCLUDED


def parse_action_name(stem: str, source: str) -> tuple[str, str]:
  """Parses a file name (or npz key) into (canonical action, sub-action).

  Args:
    stem: the file name without directory and extension, or an npz action key, e.g. "Photo 1",
      "TakingPhoto", "WalkDog", "walkingdog_2".
    source: the file the name comes from, for the error message.

  Returns:
    (canonical action name from `ACTIONS`, sub-action as spelled: '' when the name has no number,
    otherwise the digits, e.g. '1').

  Raises:
    ValueError: the name is not a known spelling of one of the 15 actions.
  """
  name, sub = _split(stem)
  action = _ALIASES.get(_normalise(name))
  if action is None:
    raise ValueError(
        f'{source}: unknown Human3.6M action name {stem!r}. Known spellings (case, spaces and '
        f'underscores ignored, optional trailing sub-action number): {sorted(_ALIASES)}.')
  return action, sub


def action_id(action: str) -> int:
  """Class id 0..14 of a canonical action name."""
  if action not in ACTION_TO_ID:
    raise ValueError(f'{action!r} is not a canonical Human3.6M action; expected one of {ACTIONS}.')
  return ACTION_TO_ID[action]
