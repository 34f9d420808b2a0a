"""Stochastic human-motion-prediction metrics of the DLow / BeLFusion protocol.

Exact definitions (stochastic-hmp-benchmark spec §2–3). Per test window there are K predicted
futures Ŷ_k (T_p, 3J) and the true future Y (T_p, 3J): root-relative joint positions in metres
with the root dropped (J = 16 on Human3.6M, so 48-D poses; see `bds_jax.data.hmp`). A distance
is the L2 norm of the *whole flattened pose vector* (all 3J values at once), NOT MPJPE: per-joint
errors are combined as a root of summed squares, not averaged over joints.

  APD   = mean over the K(K−1)/2 unordered pairs of ||vec(Ŷ_k) − vec(Ŷ_l)||, the norm over all
          T_p·3J values; 0 when K = 1.
  ADE   = min_k (1/T_p) Σ_t ||Ŷ_{k,t} − Y_t||.
  FDE   = min_k ||Ŷ_{k,T_p} − Y_{T_p}||  (its own argmin, independent of ADE's).
  MMADE = (1/|M_i|) Σ_{Y' ∈ M_i} min_k (1/T_p) Σ_t ||Ŷ_{k,t} − Y'_t||: best-of-K ADE against
          each multimodal ground-truth future, then *averaged* over the set. MMFDE likewise.
  M_i   = { Y_j : ||c_i − c_j|| < τ } with c the last observed pose (3J-D), strictly less than,
          over all test windows, including i itself (τ = 0.5 on H36M, 0.4 on AMASS).
  APDE  = mean over windows with mmAPD_i ≠ 0 of |APD_i − mmAPD_i|, where mmAPD_i is the APD
          formula applied to the futures of M_i (0 when |M_i| = 1; BeLFusion ships these values
          as mmapd_GT.csv, `multimodal_apd` regenerates them).
  CMD   = Σ_c (n_c / N) Σ_{t=1}^{T_p−1} (T_p − t) |M^c_t − M̄^c|, where m_t of a window is the
          mean over its K samples and J joints of the per-joint 3-D displacement between
          predicted frames t−1 and t (the jump from the last observed frame is not counted),
          M^c_t the mean of m_t over the n_c windows of class c, and M̄^c a fixed per-class
          reference (`H36M_CMD_REFERENCE`, `AMASS_CMD_REFERENCE`).

Every per-window value is averaged uniformly over windows. Both upstream repos compute the same
quantities (DLow in float64, BeLFusion in float32); we use float32 explicit differences for the
heavy parts and float64 for the multimodal-GT threshold test, where a rounding flip would change
the set. The functions are split so a caller can stream predictions window-chunk by
window-chunk (all 5,168 × 50 × 100 × 48 H36M predictions are ~5 GB in float32):
`window_metrics` per chunk, concatenate, then `summarize`.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from scipy.spatial import distance

from bds_jax.h36m import actions
from bds_jax.metrics import diversity

H36M_THRESHOLD = 0.5
AMASS_THRESHOLD = 0.4

# Mean per-frame, per-joint GT displacement (m/frame) of each class, computed by BeLFusion on the
# test GT windows at stride 10 (spec §3.7). Keys are our canonical action names (BeLFusion's
# "Photo" and "WalkDog" are TakingPhoto and WalkingDog), in our class-id order.
H36M_CMD_REFERENCE = {
    'Directions': 0.004533339312024582,
    'Discussion': 0.005071772030221925,
    'Eating': 0.003968115058494981,
    'Greeting': 0.00592599384929542,
    'Phoning': 0.003590651675618232,
    'Posing': 0.004194935839372698,
    'Purchases': 0.005625120976387903,
    'Sitting': 0.0024796492124910586,
    'SittingDown': 0.0035406092427418797,
    'Smoking': 0.003602172245980421,
    'TakingPhoto': 0.004347639393585013,
    'Waiting': 0.004222595821256223,
    'Walking': 0.007537553520400006,
    'WalkingDog': 0.007066049169369122,
    'WalkTogether': 0.006754175094952483,
}
AMASS_CMD_REFERENCE = {
    'DFaust': 0.004860274970204714,
    'DanceDB': 0.00815901767307159,
    'GRAB': 0.001774023530090276,
    'HUMAN4D': 0.004391708416532331,
    'SOMA': 0.007596136106898701,
    'SSM': 0.00575787090703614,
    'Transitions': 0.008530069935655568,
}


def h36m_cmd_reference(label_names=actions.ACTIONS) -> np.ndarray:
  """The H36M CMD references aligned with a dataset's class ids (any known action spelling)."""
  return np.array([H36M_CMD_REFERENCE[actions.parse_action_name(n, 'label_names')[0]]
                   for n in label_names], np.float64)


def _flatten(x, lead: int, what: str):
  """(*lead dims, T, ...) -> (*lead dims, T, D) float32."""
  x = jnp.asarray(x, jnp.float32)
  if x.ndim < lead + 2:
    raise ValueError(f'{what}: expected at least {lead + 2} dims (…, T, D), got {x.shape}.')
  return x.reshape(*x.shape[:lead + 1], -1)


# ----------------------------------------------------------------------------------------------
# Per-window metrics (APD, ADE, FDE and the CMD motion), vmapped over a chunk of windows.
# ----------------------------------------------------------------------------------------------
def _norm(x, axis=-1):
  return jnp.sqrt(jnp.sum(x * x, axis=axis))


def _one_window(samples, future):
  """samples (K, T, D), future (T, D) -> apd, ade, fde, motion (T−1,)."""
  k, t, d = samples.shape
  flat = samples.reshape(k, t * d)
  apd = diversity.off_diagonal_mean(diversity.pairwise_distances(flat))
  ade, fde = diversity.best_of_errors(samples, future)
  joints = samples.reshape(k, t, d // 3, 3)
  motion = _norm(joints[:, 1:] - joints[:, :-1]).mean(axis=(0, 2))  # (T−1,)
  return apd, ade, fde, motion


@functools.partial(jax.jit, static_argnames=('batch_size',))
def _windows(samples, futures, batch_size):
  return jax.lax.map(lambda a: _one_window(*a), (samples, futures), batch_size=batch_size)


# ----------------------------------------------------------------------------------------------
# Multimodal ground truth.
# ----------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class MultimodalGT:
  """The multimodal GT sets M_i, stored as compressed rows of window indices.

  Attributes:
    offsets: (N + 1,) M_i's members are indices[offsets[i]:offsets[i + 1]].
    indices: window indices j (ascending within each row); always contains i itself.
    futures: (N, T_p, D) the futures the indices point into.
    threshold: τ used to build the sets.
  """
  offsets: np.ndarray
  indices: np.ndarray
  futures: np.ndarray
  threshold: float

  def __len__(self) -> int:
    return len(self.offsets) - 1

  @property
  def sizes(self) -> np.ndarray:
    return np.diff(self.offsets)

  @functools.cached_property
  def device_futures(self) -> jax.Array:
    # Cached so that chunked callers copy the futures to the device once, not per chunk.
    return jnp.asarray(self.futures)

  def members(self, i: int) -> np.ndarray:
    return self.indices[self.offsets[i]:self.offsets[i + 1]]

  def __getitem__(self, i: int) -> np.ndarray:
    """The futures of M_i, (|M_i|, T_p, D)."""
    return self.futures[self.members(i)]


def multimodal_ground_truth(last_observed, futures, threshold: float = H36M_THRESHOLD,
                            chunk: int = 1024) -> MultimodalGT:
  """Builds M_i = {future_j : ||c_i − c_j|| < threshold} over all windows (self included).

  Args:
    last_observed: (N, D) or (N, J, 3) the last observed pose of every test window, root
      relative with the root dropped (48-D on H36M), metres.
    futures: (N, T_p, D) or (N, T_p, J, 3) the true futures, in the same order.
    threshold: τ; strictly-less-than comparison (0.5 H36M, 0.4 AMASS).
    chunk: rows of the N × N distance matrix computed at a time (bounds memory).

  Returns:
    A `MultimodalGT`.
  """
  c = np.asarray(last_observed, np.float64)
  c = c.reshape(len(c), -1)
  f = np.asarray(futures, np.float32)
  if f.ndim < 3 or len(f) != len(c):
    raise ValueError(f'Expected futures (N, T_p, D) for N = {len(c)} windows, got {f.shape}.')
  f = f.reshape(*f.shape[:2], -1)
  rows = []
  for start in range(0, len(c), chunk):
    # Float64 explicit differences (cdist), like DLow's pdist: the strict `<` is sensitive to
    # rounding for pairs right at the threshold.
    dist = distance.cdist(c[start:start + chunk], c)
    rows.extend(np.flatnonzero(row < threshold) for row in dist)
  sizes = np.array([len(r) for r in rows], np.int64)
  offsets = np.concatenate([[0], np.cumsum(sizes)])
  indices = np.concatenate(rows) if rows else np.zeros(0, np.int64)
  return MultimodalGT(offsets, indices.astype(np.int64), f, float(threshold))


SET_BLOCK = 1024  # GT futures of one set scored together (bounds memory: T·K·SET_BLOCK floats)


@jax.jit
def _set_errors(samples, futures, members, count):
  """Sums of best-of-K ADE and FDE of one window's samples (K, T, D) against the GT futures
  futures[members[:count]] (members padded to a power of two).

  The K x M distances at every frame come from one matmul (centred on the samples' mean, which
  keeps float32's cancellation small); they only choose each GT future's best sample, whose
  errors are then computed directly, as `diversity.best_of_errors` does. So the scores are the
  direct formula's, and the work is a matmul instead of a K·M·T·D difference tensor (the 1 MB
  gather per pair of the earlier kernel made large sets, Human3.6M's, the suite's slowest part).
  """
  f = futures[members]                                   # (M, T, D)
  c = jnp.mean(samples, axis=0)
  s0, f0 = samples - c, f - c
  gram = jnp.einsum('ktd,mtd->tkm', s0, f0, precision=jax.lax.Precision.HIGHEST)
  d2 = (jnp.sum(s0 * s0, -1).T[:, :, None] + jnp.sum(f0 * f0, -1).T[:, None, :] - 2.0 * gram)
  d = jnp.sqrt(jnp.maximum(d2, 0.0))                     # (T, K, M)
  best_ade = jnp.argmin(d.mean(0), axis=0)               # (M,)
  best_fde = jnp.argmin(d[-1], axis=0)
  ade = jnp.linalg.norm(samples[best_ade] - f, axis=-1).mean(-1)
  fde = jnp.linalg.norm(samples[best_fde, -1] - f[:, -1], axis=-1)
  valid = jnp.arange(members.shape[0]) < count
  return jnp.sum(jnp.where(valid, ade, 0.0)), jnp.sum(jnp.where(valid, fde, 0.0))


def multimodal_errors(samples, window_ids, mmgt: MultimodalGT) -> dict:
  """MMADE and MMFDE of a chunk of windows.

  Each window's set is scored in blocks of at most SET_BLOCK GT futures, padded to a power of
  two (few distinct shapes for the jitted kernel, at most 2x the work), one kernel call per
  block; the results stay on the device until the chunk is done.

  Args:
    samples: (B, K, T_p, D) or (B, K, T_p, J, 3) predictions of windows `window_ids`.
    window_ids: (B,) indices of these windows in `mmgt`.
    mmgt: the multimodal GT of the whole test set.

  Returns:
    {'mmade': (B,), 'mmfde': (B,)} numpy arrays.
  """
  s = _flatten(samples, 2, 'samples')
  ids = np.asarray(window_ids, np.int64).reshape(-1)
  if len(ids) != s.shape[0]:
    raise ValueError(f'{len(ids)} window ids for {s.shape[0]} windows of samples.')
  if s.shape[-1] != mmgt.futures.shape[-1] or s.shape[2] != mmgt.futures.shape[1]:
    raise ValueError(f'samples (…, {s.shape[2]}, {s.shape[-1]}) do not match the multimodal GT '
                     f'futures (…, {mmgt.futures.shape[1]}, {mmgt.futures.shape[-1]}).')
  futures = mmgt.device_futures
  sums = []
  for b, i in enumerate(ids):
    members = mmgt.members(i)
    for start in range(0, len(members), SET_BLOCK):
      block = members[start:start + SET_BLOCK]
      padded = np.zeros(max(8, 1 << (len(block) - 1).bit_length()), np.int32)
      padded[:len(block)] = block
      sums.append((b, _set_errors(s[b], futures, padded, np.int32(len(block)))))
  ade, fde = np.zeros(len(ids)), np.zeros(len(ids))
  for (b, _), (a, f) in zip(sums, jax.device_get([x for _, x in sums])):
    ade[b] += float(a)
    fde[b] += float(f)
  sizes = mmgt.sizes[ids]
  return {'mmade': ade / sizes, 'mmfde': fde / sizes}


def multimodal_apd(mmgt: MultimodalGT) -> np.ndarray:
  """mmAPD_i: the APD formula over the futures of M_i (0 when |M_i| = 1), float64, (N,).

  This regenerates BeLFusion's mmapd_GT.csv reference values (spec §3.6).
  """
  out = np.zeros(len(mmgt), np.float64)
  flat = mmgt.futures.reshape(len(mmgt.futures), -1).astype(np.float64)
  for i in range(len(mmgt)):
    members = mmgt.members(i)
    if len(members) > 1:
      out[i] = distance.pdist(flat[members]).mean()
  return out


# ----------------------------------------------------------------------------------------------
# Chunk-level entry point and final aggregation.
# ----------------------------------------------------------------------------------------------
def window_metrics(samples, futures, window_ids=None, mmgt: MultimodalGT | None = None,
                   batch_size: int = 8) -> dict:
  """Per-window metrics of a chunk of windows.

  Args:
    samples: (B, K, T_p, D) or (B, K, T_p, J, 3) predictions, root-relative metres (J = D / 3).
    futures: (B, T_p, D) or (B, T_p, J, 3) their true futures.
    window_ids: (B,) indices into `mmgt`; needed only with `mmgt`.
    mmgt: the multimodal GT of the whole test set; when given, MMADE and MMFDE are computed.
    batch_size: windows evaluated together in the kernel (bounds memory: K²·T_p·D each).

  Returns:
    A dict of numpy arrays: 'apd', 'ade', 'fde' (B,), 'motion' (B, T_p − 1) for CMD, and with
    `mmgt` also 'mmade', 'mmfde' (B,).
  """
  s = _flatten(samples, 2, 'samples')
  g = _flatten(futures, 1, 'futures')
  if g.shape != (s.shape[0], s.shape[2], s.shape[3]):
    raise ValueError(f'futures {g.shape} do not match samples {s.shape} (after flattening).')
  if s.shape[-1] % 3:
    raise ValueError(f'Pose vectors must hold xyz triples; got {s.shape[-1]} dims.')
  apd, ade, fde, motion = _windows(s, g, max(1, min(batch_size, s.shape[0])))
  out = {'apd': apd, 'ade': ade, 'fde': fde, 'motion': motion}
  out = {k: np.asarray(v, np.float64) for k, v in out.items()}
  if mmgt is not None:
    if window_ids is None:
      raise ValueError('window_ids are needed to look up the multimodal GT sets.')
    out.update(multimodal_errors(s, window_ids, mmgt))
  return out


def apd(samples) -> float:
  """APD of one window's (K, T_p, ...) predictions."""
  s = np.asarray(samples)
  return float(window_metrics(s[None], np.zeros_like(s[:1]))['apd'][0])


def ade(samples, future) -> float:
  """Best-of-K ADE of one window's (K, T_p, ...) predictions against its (T_p, ...) future."""
  return float(window_metrics(np.asarray(samples)[None], np.asarray(future)[None])['ade'][0])


def fde(samples, future) -> float:
  """Best-of-K FDE of one window's (K, T_p, ...) predictions against its (T_p, ...) future."""
  return float(window_metrics(np.asarray(samples)[None], np.asarray(future)[None])['fde'][0])


def apde(apd_values, mm_apd) -> float:
  """Mean of |APD_i − mmAPD_i| over the windows whose mmAPD_i is not 0 (BeLFusion's APDE)."""
  a = np.asarray(apd_values, np.float64)
  m = np.asarray(mm_apd, np.float64)
  if a.shape != m.shape:
    raise ValueError(f'APD values {a.shape} and mmAPD values {m.shape} must align per window.')
  keep = m != 0
  if not keep.any():
    raise ValueError('APDE is undefined: every mmAPD reference is 0 (no multimodal windows).')
  return float(np.mean(np.abs(a[keep] - m[keep])))


def cmd(motion, labels, reference) -> dict:
  """Cumulative motion distribution distance (BeLFusion's CMD).

  Args:
    motion: (N, T_p − 1) per-window mean predicted displacement m_t ('motion' of
      `window_metrics`).
    labels: (N,) int class of each window (H36M: action id; AMASS: test dataset).
    reference: (C,) M̄^c per class id, e.g. `h36m_cmd_reference(label_names)`.

  Returns:
    {'cmd': the class-frequency weighted sum, 'per_class': (C,) CMD_c, NaN for absent classes}.
  """
  m = np.asarray(motion, np.float64)
  y = np.asarray(labels, np.int64).reshape(-1)
  ref = np.asarray(reference, np.float64).reshape(-1)
  if m.ndim != 2 or len(m) != len(y):
    raise ValueError(f'Expected motion (N, T_p − 1) and labels (N,), got {m.shape}, {y.shape}.')
  if y.min() < 0 or y.max() >= len(ref):
    raise ValueError(f'Labels must index the {len(ref)} reference classes; got range '
                     f'[{y.min()}, {y.max()}].')
  t_p = m.shape[1] + 1
  weights = t_p - np.arange(1, t_p)  # T_p − 1, …, 1
  per_class = np.full(len(ref), np.nan)
  total = 0.0
  for c in range(len(ref)):
    mask = y == c
    if mask.any():
      per_class[c] = np.sum(weights * np.abs(m[mask].mean(axis=0) - ref[c]))
      total += per_class[c] * mask.sum() / len(y)
  return {'cmd': float(total), 'per_class': per_class}


def summarize(per_window: dict, labels=None, cmd_reference=None, mm_apd=None) -> dict:
  """Final scores from the concatenated per-window metrics of all test windows.

  Args:
    per_window: `window_metrics` outputs of every chunk, concatenated along windows.
    labels: (N,) class ids, for CMD (with `cmd_reference`).
    cmd_reference: (C,) per-class references, for CMD.
    mm_apd: (N,) mmAPD references in window order, for APDE.

  Returns:
    {'APD', 'ADE', 'FDE', and where available 'MMADE', 'MMFDE', 'CMD', 'APDE'}: floats.
  """
  names = {'apd': 'APD', 'ade': 'ADE', 'fde': 'FDE', 'mmade': 'MMADE', 'mmfde': 'MMFDE'}
  out = {names[k]: float(np.mean(v)) for k, v in per_window.items() if k in names}
  if labels is not None and cmd_reference is not None:
    out['CMD'] = cmd(per_window['motion'], labels, cmd_reference)['cmd']
  if mm_apd is not None:
    out['APDE'] = apde(per_window['apd'], mm_apd)
  return out
