"""Alembic environment for the instance store, run programmatically.

:mod:`hqsync.store.migrate` passes an open connection in
``config.attributes["connection"]``; no ``alembic.ini`` is read at runtime.
"""

from __future__ import annotations

from alembic import context

from hqsync.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
