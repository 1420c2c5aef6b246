"""HTTP GET with a timeout, retries (exponential backoff with jitter) and error translation.

This is the one place where httpx exceptions and HTTP status codes become :class:`SourceError`.
Retries cover timeouts, connection errors and 5xx; a 429 is never retried here (the caller records
the ban, ENTSO-E bans for 10 minutes), nor are 401/403 (a wrong token does not fix itself).
Retries log at DEBUG only: the caller logs one line per failure episode.
URLs are never put into messages, because ENTSO-E carries its token in the query string.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import httpx

from atsd.sources import ErrorKind, SourceError

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
StatusHook = Callable[[int, str], None]


_SECRET_PARAM = re.compile(r"(securityToken|token|api_key|apikey)=[^&\s\"']+", re.IGNORECASE)


class RedactSecrets(logging.Filter):
    """httpx logs every request URL at INFO; ENTSO-E carries its token in the query: hide it."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        if _SECRET_PARAM.search(msg):
            record.msg, record.args = _SECRET_PARAM.sub(r"\1=***", msg), None
        return True


def redact_http_logs() -> None:
    """Install :class:`RedactSecrets` on the ``httpx`` logger once (idempotent)."""
    lg = logging.getLogger("httpx")
    if not any(isinstance(f, RedactSecrets) for f in lg.filters):
        lg.addFilter(RedactSecrets())


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` tries in all; the k-th wait is ``min(cap_s, base_s * 2**k)`` times a jitter of 0.5..1."""

    attempts: int = 3
    base_s: float = 2.0
    cap_s: float = 30.0

    def delay_s(self, k: int, rng: random.Random) -> float:
        return min(self.cap_s, self.base_s * 2.0**k) * rng.uniform(0.5, 1.0)


def retry_after_s(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (the delta-seconds form; an HTTP date gives None)."""
    if not value:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        return None


async def get_text(
    client: httpx.AsyncClient,
    source: str,
    url: str,
    *,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    timeout_s: float = 10.0,
    policy: RetryPolicy = RetryPolicy(),
    sleep: Sleep | None = None,
    rng: random.Random | None = None,
    on_status: StatusHook | None = None,
    auth_hint: str = "",
) -> str:
    """The body of a 200 answer, or :class:`SourceError` after the retries.

    ``on_status(status, body)`` sees every non-200 answer first and may raise a more specific error
    (ENTSO-E explains a 400 in an acknowledgement document).
    """
    redact_http_logs()
    rng = rng or random.Random()
    last: SourceError | None = None
    for attempt in range(max(1, policy.attempts)):
        if attempt:
            delay = policy.delay_s(attempt - 1, rng)
            log.debug("%s: retry %d in %.1f s after: %s", source, attempt, delay, last)
            await (sleep or asyncio.sleep)(delay)
        try:
            resp = await client.get(url, params=params, headers=headers, timeout=timeout_s)
        except httpx.TimeoutException as exc:
            last = SourceError(source, ErrorKind.TIMEOUT, f"no answer within {timeout_s:g} s")
            last.__cause__ = exc
            continue
        except httpx.HTTPError as exc:
            last = SourceError(source, ErrorKind.NETWORK, f"connection failed ({type(exc).__name__})")
            last.__cause__ = exc
            continue
        status = resp.status_code
        if status == 200:
            try:
                return resp.text
            except (UnicodeDecodeError, LookupError) as exc:
                raise SourceError(source, ErrorKind.PARSE, "answer is not text") from exc
        body = resp.text[:2000]
        if on_status is not None:
            on_status(status, body)
        if status == 429:
            raise SourceError(
                source,
                ErrorKind.RATE_LIMIT,
                "429 Too Many Requests: rate limited",
                retry_after_s(resp.headers.get("Retry-After")),
            )
        if status in (401, 403):
            raise SourceError(source, ErrorKind.AUTH, f"{status} {resp.reason_phrase}{auth_hint}")
        if status >= 500:
            last = SourceError(
                source, ErrorKind.SERVER, f"{status} {resp.reason_phrase}: the service is down"
            )
            continue
        raise SourceError(source, ErrorKind.HTTP, f"{status} {resp.reason_phrase}")
    assert last is not None
    raise last
