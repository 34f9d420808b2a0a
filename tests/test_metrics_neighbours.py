"""k-NN class purity: known answers, groups skipped, chance."""

import numpy as np
import pytest

from bds_jax.metrics import neighbours


def test_purity_of_separated_and_mixed_classes():
  rng = np.random.default_rng(0)
  labels = np.repeat([0, 1, 2], 40)
  centres = np.array([[0, 0], [10, 0], [0, 10]], float)
  separated = centres[labels] + rng.normal(0, 0.5, (120, 2))
  assert neighbours.knn_purity(separated, labels, 5) == 1.0
  mixed = rng.normal(0, 1, (120, 2))  # the labels say nothing about where a point is
  assert abs(neighbours.knn_purity(mixed, labels, 5) - neighbours.chance(labels)) < 0.12
  assert neighbours.chance(labels) == pytest.approx(1 / 3)


def test_own_group_is_skipped():
  # Pairs of identical points in one group, of different classes from the nearest other point.
  x = np.array([[0.0], [0.0], [1.0], [1.0]])
  labels = np.array([0, 0, 1, 1])
  assert neighbours.knn_purity(x, labels, 1) == 1.0  # its twin is nearest
  assert neighbours.knn_purity(x, labels, 1, groups=[0, 0, 1, 1]) == 0.0
  # A query may skip two groups (the source's and the target's sequences).
  share = neighbours.share_with_class(np.array([[0.0]]), [1], x, labels, 1,
                                      np.array([[0, 5]]), np.array([0, 0, 1, 1]))
  assert share == 1.0


def test_bad_shapes_are_refused():
  with pytest.raises(ValueError, match='queries'):
    neighbours.share_with_class(np.zeros((3, 2)), [0, 0, 0], np.zeros((3, 4)), [0, 0, 0], 1)
  with pytest.raises(ValueError, match='outside its own group'):
    neighbours.knn_purity(np.zeros((2, 1)), [0, 1], 1, groups=[0, 0])
