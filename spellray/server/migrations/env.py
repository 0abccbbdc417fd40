"""Alembic environment: runs migrations against the URL the server configured."""

from alembic import context

from spellray.server.db import Base, make_engine

# All pending migrations in one transaction, on SQLite as on Postgres: a server killed
# half-way leaves the schema as it was (db._sqlite_whole_transactions says why SQLite needs
# help for that).
engine = make_engine(context.config.get_main_option("sqlalchemy.url"), whole_transactions=True)
try:
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata,
                          render_as_batch=True, transactional_ddl=True)
        with context.begin_transaction():
            context.run_migrations()
finally:
    engine.dispose()
