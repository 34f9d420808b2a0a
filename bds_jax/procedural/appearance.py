"""What the synthetic people look like: skin, hair, clothes, their textures and build.

Every subject has its own designed combination (APPEARANCES), and each wears one texture
(stripes, checks, ...) on the shirt or the trousers that sticks to the body as it moves. A model
that transfers appearance wrongly therefore produces visibly wrong clothes, not just a slightly
off colour.

`random_outfit(seed)` draws a look of the same kind from a seed (colours, patterns, sleeves,
shorts, hair, girth), so a dataset can dress each sequence differently: with only the designed
looks, a subject's bone lengths name their clothes, and an appearance model learns to paint
them from the stickman alone instead of reading its appearance code. `look(subject,
outfit_seed)` is the look a dataset example wears.

Textures are functions of body-attached coordinates: `s`, metres along the body part's axis
(up the torso from the pelvis, or down a limb from its proximal joint), and `a`, metres of arc
around that axis.
"""

import dataclasses

import numpy as np

from bds_jax.procedural import checks
from bds_jax.procedural import subjects

PATTERNS = ('plain', 'stripes', 'vstripes', 'checks', 'diagonal')
PERIOD = 0.12  # metres: one dark and one light band (about 7 px at the default camera)


@dataclasses.dataclass(frozen=True)
class Appearance:
  """One subject's look; colours are RGB in [0, 1].

  Attributes:
    skin, hair, shoes: colours.
    shirt, shirt_accent, shirt_pattern: base colour, second colour and pattern (PATTERNS).
    trousers, trousers_accent, trousers_pattern: the same for the trousers.
    long_sleeves: sleeves to the wrists, else to mid upper arm.
    shorts: trousers end above the knee, else at the ankles.
    long_hair: hair down to the shoulders at the back.
    girth: body thickness relative to the average build.
  """
  skin: tuple
  hair: tuple
  shoes: tuple
  shirt: tuple
  shirt_accent: tuple
  shirt_pattern: str
  trousers: tuple
  trousers_accent: tuple
  trousers_pattern: str
  long_sleeves: bool
  shorts: bool
  long_hair: bool
  girth: float


APPEARANCES = {
    # Red shirt with white hoops, blue jeans.
    'S1': Appearance(skin=(0.92, 0.74, 0.62), hair=(0.22, 0.13, 0.07), shoes=(0.92, 0.92, 0.9),
                     shirt=(0.80, 0.12, 0.12), shirt_accent=(0.95, 0.95, 0.93),
                     shirt_pattern='stripes', trousers=(0.18, 0.27, 0.52),
                     trousers_accent=(0.18, 0.27, 0.52), trousers_pattern='plain',
                     long_sleeves=False, shorts=False, long_hair=False, girth=1.0),
    # Yellow shirt, green-black checked trousers, long black hair, slight build.
    'S5': Appearance(skin=(0.76, 0.55, 0.40), hair=(0.06, 0.05, 0.05), shoes=(0.35, 0.2, 0.1),
                     shirt=(0.96, 0.80, 0.20), shirt_accent=(0.96, 0.80, 0.20),
                     shirt_pattern='plain', trousers=(0.12, 0.45, 0.25),
                     trousers_accent=(0.04, 0.08, 0.06), trousers_pattern='checks',
                     long_sleeves=True, shorts=False, long_hair=True, girth=0.9),
    # Navy shirt with white checks, khaki trousers, blond.
    'S6': Appearance(skin=(0.96, 0.80, 0.70), hair=(0.86, 0.70, 0.36), shoes=(0.08, 0.08, 0.08),
                     shirt=(0.10, 0.14, 0.42), shirt_accent=(0.90, 0.90, 0.95),
                     shirt_pattern='checks', trousers=(0.74, 0.64, 0.44),
                     trousers_accent=(0.74, 0.64, 0.44), trousers_pattern='plain',
                     long_sleeves=True, shorts=False, long_hair=False, girth=1.05),
    # White shirt with vertical blue stripes, grey shorts.
    'S7': Appearance(skin=(0.42, 0.28, 0.18), hair=(0.05, 0.04, 0.04), shoes=(0.80, 0.10, 0.10),
                     shirt=(0.95, 0.95, 0.95), shirt_accent=(0.15, 0.35, 0.80),
                     shirt_pattern='vstripes', trousers=(0.45, 0.45, 0.47),
                     trousers_accent=(0.45, 0.45, 0.47), trousers_pattern='plain',
                     long_sleeves=False, shorts=True, long_hair=False, girth=1.0),
    # Green shirt, brown trousers with light pinstripes, red hair, broad.
    'S8': Appearance(skin=(0.86, 0.66, 0.52), hair=(0.55, 0.22, 0.08), shoes=(0.15, 0.1, 0.08),
                     shirt=(0.20, 0.62, 0.30), shirt_accent=(0.20, 0.62, 0.30),
                     shirt_pattern='plain', trousers=(0.36, 0.22, 0.12),
                     trousers_accent=(0.90, 0.80, 0.62), trousers_pattern='vstripes',
                     long_sleeves=True, shorts=False, long_hair=False, girth=1.12),
    # Test subject: sky-blue shirt with diagonal dark stripes, beige trousers, grey hair.
    'S9': Appearance(skin=(0.68, 0.48, 0.34), hair=(0.62, 0.62, 0.62), shoes=(0.1, 0.1, 0.3),
                     shirt=(0.50, 0.74, 0.92), shirt_accent=(0.10, 0.18, 0.45),
                     shirt_pattern='diagonal', trousers=(0.86, 0.80, 0.66),
                     trousers_accent=(0.86, 0.80, 0.66), trousers_pattern='plain',
                     long_sleeves=False, shorts=False, long_hair=False, girth=1.0),
    # Test subject: purple shirt, red-black checked trousers, long brown hair.
    'S11': Appearance(skin=(0.94, 0.77, 0.65), hair=(0.40, 0.24, 0.12), shoes=(0.9, 0.9, 0.9),
                      shirt=(0.52, 0.26, 0.62), shirt_accent=(0.52, 0.26, 0.62),
                      shirt_pattern='plain', trousers=(0.78, 0.10, 0.12),
                      trousers_accent=(0.08, 0.05, 0.05), trousers_pattern='checks',
                      long_sleeves=True, shorts=False, long_hair=True, girth=1.0),
}
assert set(APPEARANCES) == set(subjects.SUBJECTS)
assert all(a.shirt_pattern in PATTERNS and a.trousers_pattern in PATTERNS
           and 'plain' in (a.shirt_pattern, a.trousers_pattern)
           and (a.shirt_pattern, a.trousers_pattern) != ('plain', 'plain')
           for a in APPEARANCES.values())


def appearance(subject) -> Appearance:
  """The look of `subject` (a name in SUBJECTS or an index into it)."""
  return APPEARANCES[checks.resolve(subject, subjects.SUBJECTS, 'subject')]


# Skin and hair tones the random outfits choose from.
_SKINS = ((0.96, 0.80, 0.70), (0.92, 0.74, 0.62), (0.86, 0.66, 0.52), (0.76, 0.55, 0.40),
          (0.62, 0.43, 0.30), (0.42, 0.28, 0.18), (0.30, 0.20, 0.13))
_HAIRS = ((0.06, 0.05, 0.05), (0.22, 0.13, 0.07), (0.40, 0.24, 0.12), (0.55, 0.22, 0.08),
          (0.86, 0.70, 0.36), (0.62, 0.62, 0.62))


def _hsv(h: float, s: float, v: float) -> tuple:
  """RGB of hue h in [0, 1), saturation s, value v."""
  k = (np.array([5.0, 3.0, 1.0]) + 6.0 * h) % 6.0
  rgb = v - v * s * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)
  return tuple(float(round(c, 4)) for c in rgb)


def _garment(rng: np.random.Generator, patterned: bool) -> tuple:
  """(base, accent, pattern) of one garment; the accent contrasts in brightness."""
  value = float(rng.uniform(0.25, 0.95))
  base = _hsv(rng.uniform(), rng.uniform(0.0, 0.9) if rng.uniform() < 0.85 else 0.0, value)
  if not patterned:
    return base, base, 'plain'
  accent_value = float(rng.uniform(0.05, 0.3)) if value > 0.55 else float(rng.uniform(0.8, 1.0))
  accent = _hsv(rng.uniform(), rng.uniform(0.0, 0.8), accent_value)
  return base, accent, str(rng.choice(PATTERNS[1:]))


def random_outfit(seed: int) -> Appearance:
  """A look drawn from `seed` (a non-negative int): the same seed, the same look."""
  if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
    raise ValueError(f'outfit seed {seed!r}: expected a non-negative int.')
  rng = np.random.default_rng([int(seed), 0x0F17])
  # Like the designed looks: at most one garment is patterned (most outfits have one).
  which = rng.choice(3, p=(0.45, 0.45, 0.1))  # shirt, trousers, neither
  shirt = _garment(rng, which == 0)
  trousers = _garment(rng, which == 1)
  return Appearance(
      skin=_SKINS[rng.integers(len(_SKINS))], hair=_HAIRS[rng.integers(len(_HAIRS))],
      shoes=_hsv(rng.uniform(), rng.uniform(0.0, 0.6), rng.uniform(0.05, 0.95)),
      shirt=shirt[0], shirt_accent=shirt[1], shirt_pattern=shirt[2],
      trousers=trousers[0], trousers_accent=trousers[1], trousers_pattern=trousers[2],
      long_sleeves=bool(rng.uniform() < 0.5), shorts=bool(rng.uniform() < 0.25),
      long_hair=bool(rng.uniform() < 0.3), girth=float(round(rng.uniform(0.9, 1.12), 3)))


def look(subject, outfit_seed: int = -1) -> Appearance:
  """What an example wears: `subject`'s designed look when outfit_seed < 0, else
  random_outfit(outfit_seed) (the subject's body, someone else's clothes)."""
  designed = appearance(subject)  # checks the name even when the outfit replaces the look
  if isinstance(outfit_seed, (int, np.integer)) and not isinstance(outfit_seed, bool) \
      and outfit_seed < 0:
    return designed
  return random_outfit(outfit_seed)


def pattern(kind: str, s: np.ndarray, a: np.ndarray) -> np.ndarray:
  """Bool mask of the accent colour for pattern `kind` at body coordinates s, a (metres)."""
  if kind == 'plain':
    return np.zeros(np.shape(s), bool)
  u, v = s / PERIOD, a / PERIOD
  if kind == 'stripes':
    return (u % 1.0) < 0.5
  if kind == 'vstripes':
    return (v % 1.0) < 0.35  # narrower accent: pinstripes read as stripes, not checks
  if kind == 'checks':
    return (np.floor(u) + np.floor(v)) % 2 == 0
  if kind == 'diagonal':
    return ((u + v) % 1.0) < 0.5
  raise ValueError(f'Unknown pattern {kind!r}: expected one of {PATTERNS}.')


def cloth(look: Appearance, garment: str, s: np.ndarray, a: np.ndarray) -> np.ndarray:
  """(N, 3) colours of `garment` ('shirt' or 'trousers') at body coordinates s, a."""
  base = np.array(getattr(look, garment))
  accent = np.array(getattr(look, f'{garment}_accent'))
  mask = pattern(getattr(look, f'{garment}_pattern'), s, a)
  return np.where(mask[:, None], accent, base)
