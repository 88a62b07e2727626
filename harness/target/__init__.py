"""Targets the harness starts itself from someone else's code: the real VoxBento portal (``voxbento``)."""
