"""The root of the service's own exceptions: :class:`MsccError`.

Every exception class defined under ``service/`` derives from it (a test walks the
modules), so "the service refused or failed, and says why" is one ``except`` clause away
from a bug, which is never caught by it. A class that is also a ``ValueError`` or
``RuntimeError`` keeps that base: pydantic validators and existing callers catch it so.
``cds_hooks`` keeps its own tree (``cds_hooks.errors.CDSHooksError``): it is a reusable
package that never imports the service.
"""

from __future__ import annotations

__all__ = ["MsccError"]


class MsccError(Exception):
    """An error the service raises on purpose, with a message written for the person who meets it."""
