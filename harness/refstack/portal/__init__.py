"""Reference portal: a FastAPI app reproducing VoxBento HEAD as ../shared/voxbento-contract.md describes it."""
