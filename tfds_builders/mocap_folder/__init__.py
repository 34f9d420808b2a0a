"""TFDS builder `mocap_folder`: a user's own folder of BVH / joint files (docs/own_mocap.md)."""

from tfds_builders.mocap_folder.mocap_folder_dataset_builder import Builder
from tfds_builders.mocap_folder.mocap_folder_dataset_builder import check_prepared

__all__ = ['Builder', 'check_prepared']
