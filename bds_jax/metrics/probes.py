"""Small trained probes behind Table 1 ("acc", RE, the "gt" accuracy) and Table 3 (realism).

Each probe is trained with optax inside one jitted `lax.scan` over pre-drawn minibatch indices,
so a run is deterministic given `seed` (the seed fixes both the PyTorch-style initialisation and
the minibatch order) and fast on CPU. Layers use PyTorch's default initialisation, as upstream.

Probes (reference spec §2.3, §5.2, §5.3, §5.5):

* `linear_probe_accuracy`: one Linear(D → C) on codes, softmax cross-entropy, Adam 1e-3
  (upstream `Classifier_action_beta`, the paper's "acc"). Upstream trained it on TRAIN-split
  codes during stage 1 and reported TEST accuracy, which is what this does on frozen codes.
* `posture_regression_error`: RE. Regressor codes → 512 → 256 → D (ReLU), loss = batch mean of
  the L2 norm of the error (not MSE), Adam 1e-3, batch 256. Trained on TRAIN-split codes and
  postures, reported as the mean L2 error on the TEST split. Upstream trained and reported on
  the same test embeddings, taking its number as the mean loss of one more pass during which
  the regressor kept training: `posture_regression_error_paper_same_data` reproduces that.
* `sequence_classifier_accuracy`: the "gt" classifier of raw normalised sequences:
  LSTM(D → 512), last output → Linear 128 → ReLU → Linear C; Adam 1e-4 with L2 weight decay
  1e-4 (PyTorch `Adam(weight_decay=…)` semantics: the decay is added to the gradient), batch 64.
  Upstream trained it throughout stage 1 (~300k steps) and reported test accuracy; default
  step counts here are far smaller, so pass `steps` to match.
* `realism_classifier`: GRU(D → 256), final state → Linear → 1 logit, BCE, real = 1,
  generated = 0, upstream optimiser SGD 1e-3 momentum 0.9, batch 256 (half real, half fake per
  batch: upstream's batch composition is not documented). One classifier per fake type, each
  trained (upstream never trained its "self" classifier, so that column is ~0.5 by
  construction). Reports held-out accuracy and ROC AUC on real/fake TEST sets, and the mean
  predicted P(real) on the fakes: on the held-out fakes, and, labelled paper-comparable, on the
  fakes it was trained on (upstream's Table 3 number, which is not an accuracy; 0.5 is ideal).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from scipy import stats

from bds_jax.metrics import recurrent
from bds_jax.models import layers
from bds_jax.models import lstm


# ----------------------------------------------------------------------------------------------
# Shared machinery: PyTorch-style init, minibatch schedules, the scanned training loop.
# ----------------------------------------------------------------------------------------------
def _linear_init(key, in_dim: int, out_dim: int) -> dict:
  bound = 1.0 / in_dim**0.5
  kw, kb = jax.random.split(key)
  return {'w': layers.uniform(kw, (in_dim, out_dim), bound),
          'b': layers.uniform(kb, (out_dim,), bound)}


def _linear(p, x):
  return x @ p['w'] + p['b']


def _schedule(n: int, steps: int, batch_size: int, rng: np.random.Generator) -> np.ndarray:
  """(steps, batch) indices: consecutive shuffled epochs over n samples, no repeats in a batch."""
  if steps < 1 or batch_size < 1:
    raise ValueError(f'steps ({steps}) and batch_size ({batch_size}) must be >= 1.')
  batch_size = min(batch_size, n)
  per_epoch = n // batch_size  # a batch never straddles two epochs, so it has no duplicates
  epochs = -(-steps // per_epoch)
  idx = np.stack([rng.permutation(n)[:per_epoch * batch_size].reshape(per_epoch, batch_size)
                  for _ in range(epochs)]).reshape(-1, batch_size)
  return idx[:steps].astype(np.int32)


def _fit(loss_fn, params, arrays: tuple, schedule: np.ndarray, optimizer):
  """Runs one optimiser step per row of `schedule`; returns (params, per-step losses)."""

  @jax.jit
  def run(params, arrays, schedule):
    def step(carry, idx):
      params, opt_state = carry
      loss, grads = jax.value_and_grad(loss_fn)(params, *(a[idx] for a in arrays))
      updates, opt_state = optimizer.update(grads, opt_state, params)
      return (optax.apply_updates(params, updates), opt_state), loss

    (params, _), losses = jax.lax.scan(step, (params, optimizer.init(params)), schedule)
    return params, losses

  arrays = tuple(jnp.asarray(a) for a in arrays)
  params, losses = run(params, arrays, jnp.asarray(schedule))
  return params, np.asarray(losses)


def _predict(apply_fn, params, x, batch_size: int = 1024) -> np.ndarray:
  """apply_fn over x in fixed-size (padded) batches, so it compiles once."""
  x = np.asarray(x, np.float32)
  batch_size = min(batch_size, len(x))
  run = jax.jit(apply_fn)
  out = []
  for i in range(0, len(x), batch_size):
    chunk = x[i:i + batch_size]
    pad = batch_size - len(chunk)
    if pad:
      chunk = np.concatenate([chunk, np.zeros((pad, *chunk.shape[1:]), chunk.dtype)])
    out.append(np.asarray(run(params, jnp.asarray(chunk)))[:batch_size - pad])
  return np.concatenate(out)


def _check_xy(x, y, what: str, num_classes: int | None = None):
  x = np.asarray(x, np.float32)
  y = np.asarray(y)
  if len(x) == 0 or len(x) != len(y):
    raise ValueError(f'{what}: need as many (non-zero) inputs as targets, got {x.shape} and '
                     f'{y.shape}.')
  if num_classes is not None:
    y = y.astype(np.int32).reshape(-1)
    if y.min() < 0 or y.max() >= num_classes:
      raise ValueError(f'{what}: labels must lie in [0, {num_classes}), got '
                       f'[{y.min()}, {y.max()}].')
  return x, y


def roc_auc(scores_positive, scores_negative) -> float:
  """ROC AUC = P(score of a random positive > that of a random negative), ties counting 1/2."""
  pos = np.asarray(scores_positive, np.float64).reshape(-1)
  neg = np.asarray(scores_negative, np.float64).reshape(-1)
  if not len(pos) or not len(neg):
    raise ValueError('ROC AUC needs at least one positive and one negative score.')
  ranks = stats.rankdata(np.concatenate([pos, neg]))  # average ranks handle ties
  return float((ranks[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


# ----------------------------------------------------------------------------------------------
# Linear probe ("acc").
# ----------------------------------------------------------------------------------------------
def _ce_loss(apply_fn):
  def loss(params, x, y):
    return optax.softmax_cross_entropy_with_integer_labels(apply_fn(params, x), y).mean()
  return loss


def _accuracy(apply_fn, params, x, y) -> float:
  return float(np.mean(_predict(apply_fn, params, x).argmax(-1) == y))


def linear_probe_accuracy(train_x, train_y, test_x, test_y, num_classes: int, seed: int = 0,
                          steps: int = 2000, batch_size: int = 256,
                          learning_rate: float = 1e-3,
                          optimizer: optax.GradientTransformation | None = None) -> dict:
  """Trains Linear(D → num_classes) on (train_x, train_y); scores test and train accuracy.

  Args:
    train_x, test_x: (N, D) codes (e.g. posterior means μ).
    train_y, test_y: (N,) int labels in [0, num_classes).
    num_classes: C.
    seed: fixes initialisation and minibatch order.
    steps, batch_size, learning_rate: Adam schedule (upstream: lr 1e-3).
    optimizer: overrides the Adam optimiser.

  Returns:
    {'test_accuracy', 'train_accuracy'}. For upstream's same-data reading pass the same arrays
    as train and test (upstream itself trained on train and scored on test for this probe).
  """
  train_x, train_y = _check_xy(train_x, train_y, 'linear probe train', num_classes)
  test_x, test_y = _check_xy(test_x, test_y, 'linear probe test', num_classes)
  rng = np.random.default_rng(seed)
  params = _linear_init(jax.random.PRNGKey(seed), train_x.shape[1], num_classes)
  params, _ = _fit(_ce_loss(_linear), params, (train_x, train_y),
                   _schedule(len(train_x), steps, batch_size, rng),
                   optimizer or optax.adam(learning_rate))
  return {'test_accuracy': _accuracy(_linear, params, test_x, test_y),
          'train_accuracy': _accuracy(_linear, params, train_x, train_y)}


# ----------------------------------------------------------------------------------------------
# Posture regressor (RE).
# ----------------------------------------------------------------------------------------------
def _mlp_init(key, dims) -> list:
  keys = jax.random.split(key, len(dims) - 1)
  return [_linear_init(k, a, b) for k, a, b in zip(keys, dims[:-1], dims[1:])]


def _mlp(params, x):
  for p in params[:-1]:
    x = jax.nn.relu(_linear(p, x))
  return _linear(params[-1], x)


def _l2_loss(params, x, y):
  # Mean over the batch of the Euclidean norm of the error (upstream's RE loss), not MSE.
  return jnp.mean(jnp.linalg.norm(_mlp(params, x) - y, axis=-1))


def _mean_l2(params, x, y) -> float:
  return float(np.mean(np.linalg.norm(_predict(_mlp, params, x) - y, axis=-1)))


RE_HIDDEN = (512, 256)


def posture_regression_error(train_codes, train_poses, test_codes, test_poses, seed: int = 0,
                             steps: int = 2000, batch_size: int = 256,
                             learning_rate: float = 1e-3,
                             optimizer: optax.GradientTransformation | None = None) -> dict:
  """RE: regress a posture from a code; mean L2 error on held-out codes.

  Args:
    train_codes, test_codes: (N, Z) codes, e.g. μ of source windows.
    train_poses, test_poses: (N, D) the postures to recover, e.g. the normalised source frame
      at the T of interest (upstream: X_orig[:, k], 51 z-scored dims). Errors are in their units.
    seed, steps, batch_size, learning_rate, optimizer: as `linear_probe_accuracy`.

  Returns:
    {'test_re': mean over test samples of ||pred − pose||_2, 'train_re': the same on train}.
  """
  train_codes, train_poses = _check_xy(train_codes, train_poses, 'RE train')
  test_codes, test_poses = _check_xy(test_codes, test_poses, 'RE test')
  rng = np.random.default_rng(seed)
  dims = (train_codes.shape[1], *RE_HIDDEN, train_poses.shape[1])
  params = _mlp_init(jax.random.PRNGKey(seed), dims)
  params, _ = _fit(_l2_loss, params, (train_codes, train_poses.astype(np.float32)),
                   _schedule(len(train_codes), steps, batch_size, rng),
                   optimizer or optax.adam(learning_rate))
  return {'test_re': _mean_l2(params, test_codes, test_poses),
          'train_re': _mean_l2(params, train_codes, train_poses)}


def posture_regression_error_paper_same_data(codes, poses, seed: int = 0,
                                             batch_size: int = 256,
                                             learning_rate: float = 1e-3,
                                             iterations: int = 2000) -> float:
  """Paper-comparable RE: upstream's procedure, trained and scored on the SAME data.

  Upstream (reference spec §5.2): ⌊N/256⌋ sequential, unshuffled batches per epoch (a trailing
  partial batch is dropped; with N < 256 we use one batch of all N), ⌊2000 / batches⌋ epochs of
  Adam 1e-3, then one more pass whose mean batch loss (computed before each step, as the
  regressor keeps training) is the reported value. Not a held-out error: use
  `posture_regression_error` for that.
  """
  codes, poses = _check_xy(codes, poses, 'RE (same data)')
  batch_size = min(batch_size, len(codes))
  per_epoch = len(codes) // batch_size
  epochs = max(1, iterations // per_epoch)
  one_pass = np.arange(per_epoch * batch_size, dtype=np.int32).reshape(per_epoch, batch_size)
  schedule = np.tile(one_pass, (epochs + 1, 1))
  dims = (codes.shape[1], *RE_HIDDEN, poses.shape[1])
  params = _mlp_init(jax.random.PRNGKey(seed), dims)
  _, losses = _fit(_l2_loss, params, (codes, poses.astype(np.float32)), schedule,
                   optax.adam(learning_rate))
  return float(losses[-per_epoch:].mean())


# ----------------------------------------------------------------------------------------------
# Ground-truth sequence classifier ("gt" accuracy).
# ----------------------------------------------------------------------------------------------
def _seq_classifier_init(key, in_dim: int, hidden: int, num_classes: int) -> dict:
  k = jax.random.split(key, 5)
  bound = 1.0 / hidden**0.5
  return {
      # PyTorch LSTM layout [w_ih | w_hh] (4H, I + H), one bias = b_ih + b_hh (see models.lstm).
      'lstm_w': layers.uniform(k[0], (4 * hidden, in_dim + hidden), bound),
      'lstm_b': layers.uniform(k[1], (4 * hidden,), bound) + layers.uniform(k[2], (4 * hidden,),
                                                                           bound),
      'fc1': _linear_init(k[3], hidden, 128),
      'fc2': _linear_init(k[4], 128, num_classes),
  }


def _seq_classifier(params, x):
  hidden = params['lstm_b'].shape[0] // 4
  h0 = jnp.zeros((x.shape[0], hidden), x.dtype)
  h = lstm.lstm_final_state(x, params['lstm_w'], params['lstm_b'], h0, h0)
  return _linear(params['fc2'], jax.nn.relu(_linear(params['fc1'], h)))


def sequence_classifier_accuracy(train_seqs, train_y, test_seqs, test_y, num_classes: int,
                                 seed: int = 0, steps: int = 2000, batch_size: int = 64,
                                 learning_rate: float = 1e-4, weight_decay: float = 1e-4,
                                 hidden: int = 512,
                                 optimizer: optax.GradientTransformation | None = None,
                                 extra_test_sets: dict | None = None) -> dict:
  """Trains the LSTM "gt" classifier on train sequences; scores test and train accuracy.

  Args:
    train_seqs, test_seqs: (N, T, D) raw normalised sequences (upstream: the 50 input frames).
    train_y, test_y: (N,) int labels.
    num_classes: C.
    seed, steps, batch_size: as `linear_probe_accuracy` (upstream batch 64).
    learning_rate, weight_decay: Adam with PyTorch-style L2 decay (upstream 1e-4, 1e-4).
    hidden: LSTM width (upstream 512).
    optimizer: overrides the optimiser.
    extra_test_sets: {name: (seqs, labels)} also scored by the same trained classifier (e.g.
      generated sequences whose labels are the behavior they should show).

  Returns:
    {'test_accuracy', 'train_accuracy'} and '<name>_accuracy' per extra test set.
  """
  train_seqs, train_y = _check_xy(train_seqs, train_y, 'sequence classifier train', num_classes)
  test_seqs, test_y = _check_xy(test_seqs, test_y, 'sequence classifier test', num_classes)
  if train_seqs.ndim != 3 or test_seqs.shape[1:] != train_seqs.shape[1:]:
    raise ValueError(f'Expected (N, T, D) sequences of one shape, got {train_seqs.shape} and '
                     f'{test_seqs.shape}.')
  rng = np.random.default_rng(seed)
  params = _seq_classifier_init(jax.random.PRNGKey(seed), train_seqs.shape[-1], hidden,
                                num_classes)
  # torch.optim.Adam(weight_decay=wd) adds wd * param to the gradient before the Adam moments.
  opt = optimizer or optax.chain(optax.add_decayed_weights(weight_decay),
                                 optax.adam(learning_rate))
  params, _ = _fit(_ce_loss(_seq_classifier), params, (train_seqs, train_y),
                   _schedule(len(train_seqs), steps, batch_size, rng), opt)
  out = {'test_accuracy': _accuracy(_seq_classifier, params, test_seqs, test_y),
         'train_accuracy': _accuracy(_seq_classifier, params, train_seqs, train_y)}
  for name, (x, y) in (extra_test_sets or {}).items():
    x, y = _check_xy(x, y, f'sequence classifier {name}', num_classes)
    out[f'{name}_accuracy'] = _accuracy(_seq_classifier, params, x, y)
  return out


# ----------------------------------------------------------------------------------------------
# Realism classifier (Table 3).
# ----------------------------------------------------------------------------------------------
def _realism_init(key, in_dim: int, hidden: int) -> dict:
  k1, k2 = jax.random.split(key)
  return {'gru': recurrent.init_gru_layer(k1, in_dim, hidden),
          'out': _linear_init(k2, hidden, 1)}


def _realism_logit(params, x):
  h0 = jnp.zeros((x.shape[0], params['gru']['weight_hh'].shape[1]), x.dtype)
  h = recurrent.gru_layer(params['gru'], x, h0)[:, -1]
  return _linear(params['out'], h)[:, 0]


def _bce_loss(params, x, y):
  return optax.sigmoid_binary_cross_entropy(_realism_logit(params, x), y).mean()


def realism_classifier(real_train, fake_train, real_test, fake_test, seed: int = 0,
                       steps: int = 2000, batch_size: int = 256, learning_rate: float = 1e-3,
                       momentum: float = 0.9, hidden: int = 256,
                       optimizer: optax.GradientTransformation | None = None) -> dict:
  """Trains a real-vs-generated GRU classifier for ONE fake type; scores it held-out.

  Args:
    real_train, fake_train: (N, T, D) real sequences (label 1) and generated ones (label 0) to
      train on. For the paper-comparable number pass what upstream used: ~25k real test windows
      and their generations.
    real_test, fake_test: (M, T, D) held-out real and generated sequences.
    seed: fixes initialisation and minibatch order.
    steps, batch_size: optimiser steps; each batch holds batch_size/2 real and fake sequences.
    learning_rate, momentum: SGD with momentum (upstream 1e-3, 0.9).
    hidden: GRU width (upstream 256).
    optimizer: overrides the optimiser.

  Returns:
    {'heldout_accuracy': accuracy on real_test ∪ fake_test at P(real) > 0.5,
     'heldout_auc': ROC AUC of P(real) on the held-out sets,
     'heldout_mean_p_real_fake': mean P(real) on fake_test,
     'heldout_mean_p_real_real': mean P(real) on real_test,
     'paper_mean_p_real_fake_train': mean P(real) on fake_train (upstream's Table 3 value,
       computed on the classifier's own training data),
     'train_accuracy': accuracy on real_train ∪ fake_train}.
  """
  sets = [np.asarray(a, np.float32) for a in (real_train, fake_train, real_test, fake_test)]
  shape = sets[0].shape[1:]
  if sets[0].ndim != 3 or any(s.shape[1:] != shape or len(s) == 0 for s in sets):
    raise ValueError('Real and fake train/test sets must be non-empty (N, T, D) arrays of one '
                     f'shape; got {[s.shape for s in sets]}.')
  real_tr, fake_tr, real_te, fake_te = sets
  rng = np.random.default_rng(seed)
  half = max(1, batch_size // 2)
  # Balanced batches: the real half indexes the first rows, the fake half the rest.
  schedule = np.concatenate([_schedule(len(real_tr), steps, half, rng),
                             _schedule(len(fake_tr), steps, half, rng) + len(real_tr)], axis=1)
  x = np.concatenate([real_tr, fake_tr])
  y = np.concatenate([np.ones(len(real_tr), np.float32), np.zeros(len(fake_tr), np.float32)])
  params = _realism_init(jax.random.PRNGKey(seed), shape[-1], hidden)
  opt = optimizer or optax.sgd(learning_rate, momentum=momentum)
  params, _ = _fit(_bce_loss, params, (x, y), schedule, opt)

  prob = functools.partial(_predict, lambda p, v: jax.nn.sigmoid(_realism_logit(p, v)), params)
  p_real_tr, p_fake_tr, p_real_te, p_fake_te = (prob(s) for s in sets)
  correct_te = np.concatenate([p_real_te > 0.5, p_fake_te <= 0.5])
  correct_tr = np.concatenate([p_real_tr > 0.5, p_fake_tr <= 0.5])
  return {
      'heldout_accuracy': float(correct_te.mean()),
      'heldout_auc': roc_auc(p_real_te, p_fake_te),
      'heldout_mean_p_real_fake': float(p_fake_te.mean()),
      'heldout_mean_p_real_real': float(p_real_te.mean()),
      'paper_mean_p_real_fake_train': float(p_fake_tr.mean()),
      'train_accuracy': float(correct_tr.mean()),
  }
