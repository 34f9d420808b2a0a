"""TFDS builder of DeepFashion (upstream's prepared index.p archive)."""

from tfds_builders.deepfashion.deepfashion_dataset_builder import Builder

__all__ = ['Builder']
