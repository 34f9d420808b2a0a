"""The dataset registry (bds_jax.data.datasets): every decision by dataset is a lookup of its
DatasetSpec, so a dataset registered from outside the library is read and judged like the
built-in ones (docs/architecture.md, "A new dataset")."""

import importlib
import os

import pytest

from bds_jax import errors
from bds_jax.data import datasets
from bds_jax.data import hmp as hmp_data
from bds_jax.data import images
from bds_jax.data import sources

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_every_spec_names_a_builder_and_a_layout_where_it_needs_one():
  for spec in datasets.SPECS.values():
    module = importlib.import_module(spec.builder)
    assert hasattr(module, 'Builder'), spec.name
    assert os.path.isdir(os.path.join(ROOT, *spec.builder.split('.'))), spec.name
    if spec.image_dataset:
      assert datasets.get(spec.image_dataset).is_images, spec.name
  assert datasets.image_datasets() == ['deepfashion', 'human36m_frames', 'market1501',
                                       'synthetic_people']
  assert [s.name for s in datasets.SPECS.values() if s.hmp_protocol] == ['human36m']


def test_a_dataset_registered_from_the_tests(data_dir):
  # The synthetic motion builder under another name, without its generator's truth.
  toy = datasets.DatasetSpec('toy_motion', 'tfds_builders.synthetic_motion', 'toy motion',
                             label_feature='behavior')
  datasets.register(toy)
  try:
    builder = sources.get_builder('toy_motion', data_dir, 'small')
    seqs = sources.load_split(builder, 'toy_motion', 'test')
    assert seqs.name == 'toy_motion' and len(seqs) and len(seqs.label_names) == 10
    assert not datasets.follows_hmp_protocol('toy_motion')
    assert len(hmp_data.h36m_protocol_sequences(seqs)) == len(seqs)  # nothing dropped
    with pytest.raises(errors.ConfigError, match=r"'toy_motion' is not an image dataset; "
                                                 r"choose one of \['deepfashion'"):
      images.check_dataset('toy_motion')
  finally:
    del datasets.SPECS['toy_motion']
  with pytest.raises(errors.ConfigError, match=r"data.name='toy_motion' is not a known dataset; "
                                               r"choose one of \['deepfashion'"):
    sources.get_builder('toy_motion', data_dir)
  with pytest.raises(errors.ConfigError, match=r"Its video frames are the image dataset "
                                               r"'human36m_frames'"):
    images.check_dataset('human36m')
