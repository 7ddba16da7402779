"""Text that came from a remote server, made safe to show.

A GEO mirror (or anything on the way) chooses the file names, URLs, redirect targets, status lines and
archive member names that end up in our messages and logs. Every such string goes through
:func:`escaped` (or :func:`shown`, :func:`one_line`) before it is logged or raised, so that no byte a
server sends reaches a log file or a terminal as it is: terminal escape sequences, NUL, carriage returns
and other control characters, and non-ASCII bytes are written as Python escapes (``\\x1b``), which also
keeps every message on one line.
"""
from __future__ import annotations

import re

# Printable ASCII only: anything else is escaped.
_PLAIN_RE = re.compile(r"[\x20-\x7e]*")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def escaped(text, limit: int | None = None) -> str:
    """``text`` with every byte outside printable ASCII written as a Python escape, cut to ``limit``."""
    text = str(text)
    safe = text if _PLAIN_RE.fullmatch(text) else ascii(text)[1:-1]
    return safe if limit is None or len(safe) <= limit else safe[: limit - 3] + "..."


def shown(text, limit: int = 80) -> str:
    """A remote name quoted on one line (Python's ``ascii`` form) and cut to a readable length."""
    text = ascii(str(text))
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def one_line(exc: BaseException, limit: int = 200) -> str:
    """An exception as 'Type: message' on one line; the message may quote a server (a status line)."""
    text = escaped(" ".join(str(exc).split()), limit)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def has_control(text) -> bool:
    """True when ``text`` holds a control character (C0, DEL or C1)."""
    return bool(_CONTROL_RE.search(str(text)))


def what(dataset: str, source) -> str:
    """The subject of an error message: a dataset and the file or URL concerned (escaped)."""
    return f"dataset '{dataset}' ({escaped(source)})"
