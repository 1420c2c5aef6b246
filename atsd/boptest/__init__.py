"""BOPTEST as a plant: the client, the plant behind atsd's seams and the ``bench boptest`` runs.

- :mod:`.client`: the REST client (test ids or the single-test-case API) and :class:`BoptestError`.
- :mod:`.cases`: per test case, the point names and the mode table.
- :mod:`.plant`: simulation clock, forecast source, sensors and actuator on one running test.
- :mod:`.bench`: calibration from the warm-up, the atsd and baseline runs, the KPI table.

Nothing in ``atsd.core`` imports this package. See ``docs/boptest.md``.
"""

from atsd.boptest.client import Api, BoptestClient, BoptestError

__all__ = ["Api", "BoptestClient", "BoptestError"]
