"""voxload: load and capacity harness for VoxBento."""

__version__ = "0.1.0"
