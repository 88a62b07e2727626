"""The Locust process: the only house that imports locust and gevent (tests/test_architecture.py).

- ``plugin``: the CLI flags and event hooks ``scenarios/conference.py`` registers.
- ``run``: one run's lifecycle (provision, start, handovers, stop, judge, write).
- ``users``: thin participants (admin, coordinator, interpreter, listener); how they act is in clients/ and media/.
- ``provision``, ``handover``: the event a scenario needs on the target; booth handovers as ordered.
- ``shape``, ``ramp_shapes``: Locust load shapes from the scenario (steady or stepped ramps).
- ``distributed``: master and workers.
"""
