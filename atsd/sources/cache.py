"""The on-disk cache of accepted data: one small JSON document per kind, written atomically.

A write goes to a temporary file in the same directory, is flushed and fsynced, then renamed over
the old file (and the directory fsynced), so a power cut leaves either the old or the new document,
never half of one. A document that does not parse (a half-written file from some other writer, a
disk error) is logged once, moved aside as ``*.corrupt`` and treated as absent. Blocking: callers in
the event loop use ``asyncio.to_thread``. A cache that cannot be written (read-only directory, a CLI
user without rights to the daemon's state) degrades to memory only, with one warning.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
VERSION = 1


class Cache:
    def __init__(self, directory: Path | None):
        self.directory = directory
        self._warned = False

    def path(self, name: str) -> Path | None:
        return None if self.directory is None else self.directory / f"{name}.json"

    def load(self, name: str) -> dict[str, Any] | None:
        p = self.path(name)
        if p is None:
            return None
        try:
            raw = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("Forecast cache %s cannot be read (%s); starting without it.", p, exc.strerror)
            return None
        try:
            doc = json.loads(raw)
            if not isinstance(doc, dict) or doc.get("version") != VERSION:
                raise ValueError("not a version-1 cache document")
        except ValueError as exc:
            log.warning("Forecast cache %s is damaged (%s); moved aside and ignored.", p, exc)
            with contextlib.suppress(OSError):
                p.replace(p.with_suffix(".json.corrupt"))
            return None
        return doc

    def save(self, name: str, doc: dict[str, Any]) -> bool:
        """Write ``doc`` atomically; False (after one warning) if the cache cannot be written."""
        p = self.path(name)
        if p is None:
            return False
        data = json.dumps({**doc, "version": VERSION}, separators=(",", ":"), allow_nan=False)
        tmp: str | None = None
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=p.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, p)
            tmp = None
            _fsync_dir(p.parent)
        except OSError as exc:
            if not self._warned:
                log.warning(
                    "Forecast cache %s cannot be written (%s); keeping data in memory only.", p, exc.strerror
                )
                self._warned = True
            return False
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        return True


def _fsync_dir(d: Path) -> None:
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
