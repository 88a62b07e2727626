"""The embedded reference target: a VoxBento-compatible portal and a MediaMTX-compatible relay.

Nothing under ``harness`` outside this package may import from it: the harness must drive the
reference target and a real deployment through the same public surfaces.
"""
