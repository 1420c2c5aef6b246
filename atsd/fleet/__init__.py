"""The optional fleet service: watches houses over the MQTT broker, aggregates, dispatches demand response.

``view`` is the pure picture built from what houses publish (time is an argument); ``link`` is the
broker connection; ``app`` the page and JSON API; ``service`` wires them for ``atsd fleet``
(``cli``). ``simhouse`` is a light simulated house for tests and the scale benchmark. Nothing here
is needed for a house to heat: the contract is in :mod:`atsd.messages` and ``docs/fleet.md``.
"""
