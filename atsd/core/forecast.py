"""The forecast the planner sees: series on the UTC grid, each with where it came from.

``sources/forecasts.py`` assembles it (primary source, alternate, disk cache, labelled estimate);
the planner, the web page and the CLI read it. A series value is NaN where nothing is known.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from numpy.typing import NDArray

from atsd.core.timegrid import Grid, iso_z

FloatArray = NDArray[np.float64]

# Series names used across atsd (units in the names).
PRICE = "spot_eur_per_mwh"
TEMP = "temp_c"
GHI = "ghi_w_m2"
WIND = "wind_ms"
CO2 = "co2_g_per_kwh"
WIND_POWER = "wind_power_mw"


@dataclass(frozen=True)
class Provenance:
    """Where a series came from: ``fallback`` is true whenever it is not the primary source."""

    source: str
    fetched_at: datetime | None
    resolution_min: int
    fallback: bool = False
    estimate: bool = False
    note: str = ""

    def as_json(self) -> dict[str, object]:
        return {"source": self.source, "fetched_at": iso_z(self.fetched_at) if self.fetched_at else None,
                "resolution_min": self.resolution_min, "fallback": self.fallback,
                "estimate": self.estimate, "note": self.note}


@dataclass(frozen=True)
class Forecast:
    grid: Grid
    series: dict[str, FloatArray]
    provenance: dict[str, Provenance] = field(default_factory=dict)
    # Per-slot flags: True where the value of that series is an estimate, not published data.
    estimated: dict[str, NDArray[np.bool_]] = field(default_factory=dict)

    def get(self, name: str) -> FloatArray:
        v = self.series.get(name)
        return np.full(self.grid.n, np.nan) if v is None else v

    def is_estimated(self, name: str) -> NDArray[np.bool_]:
        v = self.estimated.get(name)
        return np.zeros(self.grid.n, dtype=bool) if v is None else v

    def known_until(self, name: str) -> int:
        """Number of leading slots with a finite value of ``name``."""
        v = self.get(name)
        bad = np.flatnonzero(~np.isfinite(v))
        return int(bad[0]) if len(bad) else self.grid.n

    def window(self, i0: int, i1: int) -> Forecast:
        g = self.grid.slice(i0, i1)
        a, b = max(0, i0), max(0, i0) + g.n
        return Forecast(g, {k: v[a:b] for k, v in self.series.items()}, dict(self.provenance),
                        {k: v[a:b] for k, v in self.estimated.items()})

    def as_json(self, tz_label: str | None = None) -> dict[str, object]:
        """The document of ``atsd forecast --json`` (and the core of ``GET /api/forecast``)."""
        slots = []
        names = list(self.series)
        for i, t in enumerate(self.grid.times()):
            row: dict[str, object] = {"start": iso_z(t)}
            for name in names:
                v = float(self.series[name][i])
                row[name] = round(v, 4) if np.isfinite(v) else None
            est = [n for n in names if self.is_estimated(n)[i]]
            if est:
                row["estimated"] = est
            slots.append(row)
        return {"slot_minutes": self.grid.step_s // 60,
                "provenance": {k: p.as_json() for k, p in self.provenance.items()},
                "slots": slots}
