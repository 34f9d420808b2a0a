"""The import graph runs one way: entry points -> train -> evaluation -> runs -> models, data,
viz, ... -> skeleton, checkpointing (docs/architecture.md).

Read from the source (function-local imports included), so an upward import cannot hide inside
a function; nor inside a string: a module that calls importlib.import_module imports every
module whose dotted name it spells as a string (bds_jax.data.sources loads the TFDS builders of
tfds_builders/ so). The builders are in the graph too, beside the data readers that load them.
"""

import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Lowest first; a module may import its own layer and the layers below it (no cycles).
LAYERS = (
    ('bds_jax.skeleton', 'bds_jax.checkpointing', 'bds_jax.sharding', 'bds_jax.metric_writer',
     'bds_jax.errors', 'bds_jax.run_lock', 'bds_jax.safe_pickle', 'bds_jax.xla_cpu',
     'bds_jax.run_layout'),
    ('bds_jax.models', 'bds_jax.data', 'bds_jax.viz', 'bds_jax.sampling', 'bds_jax.metrics',
     'bds_jax.procedural', 'bds_jax.h36m', 'bds_jax.imaging', 'bds_jax.upstream', 'tfds_builders',
     'bds_jax.motion'),
    ('bds_jax.runs', 'bds_jax.run_config', 'bds_jax.kinds', 'bds_jax.trained'),
    ('bds_jax.evaluation', 'bds_jax.convert_upstream', 'bds_jax.synthesis'),
    ('bds_jax.train',),
)
PACKAGES = ('bds_jax', 'tfds_builders')
# (a, b): a never imports b, though their layers would allow it, so that the dependency runs
# one way: synthesize's library is not the evaluation suites' client (what both need sits
# lower: bds_jax.sharding.batched, bds_jax.procedural.truth), and the data readers load the
# builders by name, so a builder that imported bds_jax.data would close a loop.
# Registries of module names that the library itself imports by name (bds_jax.data.sources
# loads each DatasetSpec's builder): the names they spell count as their imports. (kinds.py's
# trainer names are not among them: only train.py, an entry point, loads those.)
REGISTRIES = ('bds_jax.data.datasets',)
ONE_WAY = (
    ('bds_jax.synthesis', 'bds_jax.evaluation'),
    ('tfds_builders', 'bds_jax.data'),
)


def _modules() -> dict[str, str]:
  out = {}
  for package in PACKAGES:
    for d, _, files in os.walk(os.path.join(ROOT, package)):
      for f in files:
        if f.endswith('.py'):
          path = os.path.join(d, f)
          name = os.path.relpath(path, ROOT)[:-3].replace(os.sep, '.')
          out[name.removesuffix('.__init__')] = path
  return out


MODULES = _modules()


def _imports(name: str, path: str) -> set[str]:
  """Every module `name` imports (at any depth of its code), as dotted names."""
  with open(path) as f:
    tree = ast.parse(f.read(), path)
  package = name if path.endswith('__init__.py') else name.rpartition('.')[0]
  found = set()
  calls_importlib = name in REGISTRIES or any(
      isinstance(n, ast.Attribute) and n.attr == 'import_module' for n in ast.walk(tree))
  for node in ast.walk(tree):
    if (calls_importlib and isinstance(node, ast.Constant) and isinstance(node.value, str)
        and node.value in MODULES):
      found.add(node.value)
    if isinstance(node, ast.Import):
      found.update(a.name for a in node.names)
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ''
      if node.level:
        parts = package.split('.')[:len(package.split('.')) - node.level + 1]
        base = '.'.join(parts + ([node.module] if node.module else []))
      for a in node.names:  # `from package import submodule` counts as the submodule only
        sub = f'{base}.{a.name}'
        found.add(sub if sub in MODULES else base)
  return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _inside(module: str, prefix: str) -> bool:
  return module == prefix or module.startswith(prefix + '.')


def _layer(module: str) -> int | None:
  for i, prefixes in enumerate(LAYERS):
    if any(_inside(module, p) for p in prefixes):
      return i
  return None


def test_nothing_outside_train_imports_train():
  offenders = sorted(f'{m} imports {i}' for m, imps in GRAPH.items()
                     if not (m == 'bds_jax.train' or m.startswith('bds_jax.train.'))
                     for i in imps if i == 'bds_jax.train' or i.startswith('bds_jax.train.'))
  assert not offenders, offenders


def test_the_package_never_imports_configs():
  # Runs are read from their config.json; the configs/ files are for the entry points.
  offenders = sorted(m for m, imps in GRAPH.items()
                     if any(i == 'configs' or i.startswith('configs.') for i in imps))
  assert not offenders, offenders


def test_every_import_goes_down_or_sideways():
  unplaced = sorted(m for m in MODULES if m != 'bds_jax' and _layer(m) is None)
  assert not unplaced, (f'{unplaced} are in no layer: add them to LAYERS here and to the '
                        'layer table of docs/architecture.md.')
  upward = sorted(f'{m} -> {i}' for m, imps in GRAPH.items() if m != 'bds_jax'
                  for i in imps if _layer(i) is not None and _layer(i) > _layer(m))
  assert not upward, upward


def test_one_way_pairs():
  backwards = sorted(f'{m} -> {i}' for m, imps in GRAPH.items() for i in imps
                     for a, b in ONE_WAY if _inside(m, a) and _inside(i, b))
  assert not backwards, backwards


def test_importlib_loads_are_seen():
  # The data readers load every dataset's builder by the module name its spec gives.
  assert {'tfds_builders.synthetic_motion', 'tfds_builders.deepfashion'} <= GRAPH[
      'bds_jax.data.datasets']


def test_no_import_cycles():
  edges = {m: {i for i in imps if i in MODULES and i != m} for m, imps in GRAPH.items()}
  state = {}  # 1: on the current path, 2: done

  def visit(m, path):
    state[m] = 1
    for n in sorted(edges[m]):
      if state.get(n) == 1:
        pytest.fail('import cycle: ' + ' -> '.join(path[path.index(n):] + [n]))
      if n not in state:
        visit(n, path + [n])
    state[m] = 2

  for m in sorted(edges):
    if m not in state:
      visit(m, [m])
