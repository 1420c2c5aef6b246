"""Forecast sources: one fetcher per API, the disk cache and the fallback chain.

Every fetcher is an async function that takes an ``httpx.AsyncClient`` and returns a
:class:`RawSeries` (or a dict of them) at the API's own resolution, or raises :class:`SourceError`.
No httpx exception ever leaves this package: :mod:`atsd.sources.http` translates them in one place.
``forecasts.py`` puts the series on the planner's grid with provenance (see its docstring for the
API the daemon uses).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray


class ErrorKind(StrEnum):
    """Why a fetch failed; decides whether a retry can help."""

    TIMEOUT = "timeout"  # retryable
    NETWORK = "network"  # retryable: DNS, refused, reset
    SERVER = "server"  # retryable: HTTP 5xx
    RATE_LIMIT = "rate_limit"  # not retried now: wait for retry_after_s
    AUTH = "auth"  # not retried: the token or key is wrong
    HTTP = "http"  # not retried: other 4xx
    PARSE = "parse"  # not retried: truncated XML, HTML error page, bad JSON
    NO_DATA = "no_data"  # the API answered, but has nothing for the window
    INVALID = "invalid"  # data failed the sanity checks

    @property
    def retryable(self) -> bool:
        return self in (ErrorKind.TIMEOUT, ErrorKind.NETWORK, ErrorKind.SERVER)


class SourceError(Exception):
    """A fetcher failed; ``str()`` is a sentence for the log that names the source and what to do."""

    def __init__(self, source: str, kind: ErrorKind, message: str, retry_after_s: float | None = None):
        self.source = source
        self.kind = kind
        self.retry_after_s = retry_after_s
        super().__init__(f"{source}: {message}")


@dataclass(frozen=True)
class RawSeries:
    """Values at the source's own resolution.

    ``epoch_s`` are UTC period starts (integer seconds), sorted and unique. With ``instant`` false each
    value holds for ``step_s`` from its start (prices, mean radiation); with ``instant`` true it is a
    sample at that moment (temperature, wind speed) and is interpolated.
    """

    source: str
    epoch_s: NDArray[np.int64]
    values: NDArray[np.float64]
    step_s: int
    fetched_at: datetime
    instant: bool = False

    def __post_init__(self) -> None:
        if len(self.epoch_s) != len(self.values):
            raise ValueError("epoch_s and values must have the same length")

    @property
    def n(self) -> int:
        return len(self.values)


def make_series(
    source: str, pairs: dict[int, float], step_s: int, fetched_at: datetime, instant: bool = False
) -> RawSeries:
    """A :class:`RawSeries` from ``{epoch_s: value}`` (sorted here)."""
    keys = sorted(pairs)
    return RawSeries(
        source,
        np.array(keys, dtype=np.int64),
        np.array([pairs[k] for k in keys], dtype=np.float64),
        step_s,
        fetched_at,
        instant,
    )


__all__ = ["ErrorKind", "RawSeries", "SourceError", "make_series"]
