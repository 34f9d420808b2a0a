"""Reading the authors' PyTorch checkpoints (see pth.py, mapping.py)."""
