"""VoxBento facts, each written once, that the clients, scenario, rehearsal, probes and the reference portal
share (``harness/refstack`` may import only this house and ``harness.rtc``).

- ``routes``: every URL path voxload requests, with its Locust stats name.
- ``credentials``: invite tokens, join codes, cookie names, the JWT algorithm and claim shapes.
- ``roles``: invite roles and the roles eligible to go live.
- ``languages``: language codes and names, the slug rule.
- ``listener``: what the listener page does on its own timer (the audio-delay poll).

Nothing here imports the rest of voxload. tests/test_contract_rules.py fails when one of these facts is
written again elsewhere; tests/test_differential_voxbento.py checks the values against the real VoxBento.
"""
