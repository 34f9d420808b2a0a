"""TFDS builder of the synthetic_people image dataset."""

from tfds_builders.synthetic_people.synthetic_people_dataset_builder import Builder

__all__ = ['Builder']
