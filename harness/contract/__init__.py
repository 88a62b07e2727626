"""VoxBento's facts (``../shared/voxbento-contract.md``) that more than one house needs: the clients, the scenario
checker and the reference target import them from here, so each is written once. Only facts the differential and
conformance suites check against the real VoxBento belong here. Imports nothing else of the harness.
"""
