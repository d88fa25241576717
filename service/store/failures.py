"""What a database error means for the record that met it: wait, retry a little, or give up on it.

* ``unreachable``: the database cannot be used at all (connection refused or lost, the
  server shutting down, the schema missing). Not the record's fault: the audit writer
  keeps the record in the spool and tries again, without limit, with backoff; feedback
  answers 503 with ``Retry-After``.
* ``transient``: this attempt failed but the next may not (deadlock, serialisation
  failure, lock or statement timeout, SQLite busy). Retried a bounded number of times.
* ``permanent``: the database refuses the record itself (a constraint, a value it
  cannot hold, a trigger raising, a row too big for an index). Retrying cannot help:
  the record is dead-lettered at once.

PostgreSQL errors are told apart by SQLSTATE class (Appendix A of its manual); SQLite's
by the sqlite3 exception type and message. What nothing matches counts as transient, so
it is retried a few times and then dead-lettered, never retried forever.
"""

from __future__ import annotations

import sqlite3
from typing import Literal

from sqlalchemy.exc import DBAPIError, StatementError

__all__ = ["Failure", "classify"]

Failure = Literal["unreachable", "transient", "permanent"]

#: SQLSTATE classes and codes.
_UNREACHABLE_CLASSES = frozenset({"08", "57", "58", "53"})  # connection, operator intervention, system, resources
_UNREACHABLE_CODES = frozenset({"42P01", "42703", "3D000"})  # undefined table / column, unknown database
_TRANSIENT_CLASSES = frozenset({"40", "55"})  # rollback (deadlock, serialization), lock not available
_TRANSIENT_CODES = frozenset({"57014"})  # statement timeout / query cancelled
_SQLITE_UNREACHABLE = (
    "unable to open",
    "disk i/o error",
    "disk is full",
    "no such table",
    "no such column",
    "readonly database",
)
_SQLITE_TRANSIENT = ("locked", "busy")


def classify(exc: BaseException) -> Failure:
    """The kind of failure ``exc`` is; see the module docstring."""
    if isinstance(exc, ConnectionError | TimeoutError | OSError):
        return "unreachable"
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return "unreachable"
        return _classify_driver_error(exc.orig)
    if isinstance(exc, StatementError):
        # Raised before the statement reached the database: a value that cannot be bound or encoded.
        cause = exc.orig
        return "unreachable" if isinstance(cause, OSError) else "permanent"
    if isinstance(exc, UnicodeError | ValueError | TypeError | OverflowError):
        return "permanent"
    return "transient"


def _classify_driver_error(orig: BaseException | None) -> Failure:
    if orig is None:
        return "transient"
    if isinstance(orig, sqlite3.Error):
        return _classify_sqlite(orig)
    sqlstate = _sqlstate(orig)
    if sqlstate is None:
        # asyncpg raises plain OSError / ConnectionError subclasses when it cannot connect.
        chained = orig.__cause__ or orig.__context__
        if isinstance(orig, OSError) or isinstance(chained, OSError | ConnectionError):
            return "unreachable"
        return "transient"
    if sqlstate in _TRANSIENT_CODES:
        return "transient"
    if sqlstate in _UNREACHABLE_CODES or sqlstate[:2] in _UNREACHABLE_CLASSES:
        return "unreachable"
    if sqlstate[:2] in _TRANSIENT_CLASSES:
        return "transient"
    return "permanent"


def _classify_sqlite(orig: sqlite3.Error) -> Failure:
    message = str(orig).lower()
    if isinstance(orig, sqlite3.IntegrityError | sqlite3.DataError | sqlite3.ProgrammingError):
        return "permanent"
    if any(part in message for part in _SQLITE_TRANSIENT):
        return "transient"
    if any(part in message for part in _SQLITE_UNREACHABLE):
        return "unreachable"
    if isinstance(orig, sqlite3.OperationalError):
        return "transient"
    return "permanent"


def _sqlstate(orig: BaseException) -> str | None:
    for candidate in (orig, orig.__cause__, orig.__context__):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(code, str) and len(code) == 5:
            return code
    return None
