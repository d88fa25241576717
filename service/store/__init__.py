"""The feedback and audit store: SQLAlchemy (async) on SQLite or PostgreSQL, Alembic migrations, reports.

Nothing is imported here on purpose: :mod:`service.settings` imports
:mod:`service.store.settings`, and the runtime modules import the settings back.
Wire the store into an app with :func:`service.store.install.open_store`.
"""

__all__: list[str] = []
