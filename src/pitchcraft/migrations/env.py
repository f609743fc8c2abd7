"""Alembic environment: always run with a connection handed over by pitchcraft.core.migrate."""

from __future__ import annotations

from alembic import context

from pitchcraft.migrations.schema import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `pitchcraft migrate`, which supplies the connection")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
