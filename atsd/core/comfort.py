"""The comfort band per slot: minimum, target and maximum indoor temperature, with night setbacks.

Setback windows are in local time (a comfort schedule is a thing people say in local time); the
result is a plain array per slot on the UTC grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from atsd.config import WEEKDAYS, ComfortConfig
from atsd.core.timegrid import Grid

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class ComfortBand:
    min_c: FloatArray
    target_c: FloatArray
    max_c: FloatArray

    @classmethod
    def flat(cls, n: int, min_c: float, target_c: float, max_c: float) -> ComfortBand:
        return cls(np.full(n, min_c), np.full(n, target_c), np.full(n, max_c))


def comfort_band(grid: Grid, cfg: ComfortConfig, tz: ZoneInfo) -> ComfortBand:
    lo = np.full(grid.n, cfg.min_c)
    tg = np.full(grid.n, cfg.target_c)
    hi = np.full(grid.n, cfg.max_c)
    if cfg.setback:
        for i, t in enumerate(grid.times()):
            lt = t.astimezone(tz)
            h = lt.hour + lt.minute / 60.0
            for sb in cfg.setback:
                s = sb.start.hour + sb.start.minute / 60.0
                e = sb.end.hour + sb.end.minute / 60.0
                inside = (s <= h < e) if s <= e else (h >= s or h < e)
                # a window that wraps midnight belongs to the day it started on
                day = lt.weekday() if (s <= e or h >= s) else (lt.weekday() - 1) % 7
                if inside and WEEKDAYS[day] in sb.days:
                    tg[i] = sb.target_c
                    if sb.min_c is not None:
                        lo[i] = sb.min_c
    return ComfortBand(lo, np.maximum(tg, lo), hi)
