"""Class purity of nearest neighbours: does a space group windows by behavior?

`share_with_class(queries, query_labels, keys, key_labels, k)` is the mean fraction of each
query's k nearest keys (Euclidean) that carry the query's label; keys of the query's own group
(its sequence: overlapping windows of one sequence are trivially alike) are skipped.
`knn_purity(x, labels, k, groups)` is the same with the points as their own keys. Chance is the
label distribution's sum of squared shares.
"""

import numpy as np


def share_with_class(queries, query_labels, keys, key_labels, k: int, query_groups=None,
                     key_groups=None, chunk: int = 512) -> float:
  """Mean share of each query's k nearest keys (other groups only) with the query's label.

  query_groups: (N,) or (N, G): the group(s) whose keys a query skips; key_groups: (M,).
  """
  queries, keys = np.asarray(queries, np.float64), np.asarray(keys, np.float64)
  query_labels, key_labels = np.asarray(query_labels), np.asarray(key_labels)
  if queries.ndim != 2 or keys.ndim != 2 or queries.shape[1] != keys.shape[1]:
    raise ValueError(f'Expected (N, D) queries and (M, D) keys, got {queries.shape} and '
                     f'{keys.shape}.')
  if len(queries) != len(query_labels) or len(keys) != len(key_labels):
    raise ValueError('One label per query and per key is needed.')
  if k < 1:
    raise ValueError(f'k={k} must be at least 1.')
  if len(queries) == 0:
    raise ValueError('No queries.')
  key_sq = np.sum(keys**2, axis=1)
  shares = []
  for a in range(0, len(queries), chunk):
    q = queries[a:a + chunk]
    d = np.sum(q**2, axis=1)[:, None] - 2 * q @ keys.T + key_sq[None]
    if query_groups is not None:
      qg = np.asarray(query_groups)[a:a + chunk]
      qg = qg[:, :, None] if qg.ndim == 2 else qg[:, None, None]  # (n, G, 1)
      d[np.any(qg == np.asarray(key_groups)[None, None], axis=1)] = np.inf
    order = np.argsort(d, axis=1)[:, :k]
    valid = np.take_along_axis(np.isfinite(d), order, axis=1)
    if not valid.any(axis=1).all():
      raise ValueError('A query has no key outside its own group(s).')
    same = (key_labels[order] == query_labels[a:a + chunk, None]) & valid
    shares.append(same.sum(axis=1) / valid.sum(axis=1))  # fewer than k keys: those there are
  return float(np.mean(np.concatenate(shares)))


def knn_purity(x, labels, k: int, groups=None) -> float:
  """Mean share of each point's k nearest other points (other groups) with its label."""
  x = np.asarray(x)
  groups = np.arange(len(x)) if groups is None else np.asarray(groups)
  return share_with_class(x, labels, x, labels, k, groups, groups)


def chance(labels) -> float:
  """The purity of a space that ignores the labels: sum of squared label shares."""
  _, counts = np.unique(np.asarray(labels), return_counts=True)
  p = counts / counts.sum()
  return float(np.sum(p**2))
