"""TFDS builder of Market-1501 (upstream's prepared index.p archive)."""

from tfds_builders.market1501.market1501_dataset_builder import Builder

__all__ = ['Builder']
