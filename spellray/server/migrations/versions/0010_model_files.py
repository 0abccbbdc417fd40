"""models.files: `spell model create --file PATH[:MOUNT_PATH]`; model servers' answer deadline
moves from options.request_timeout_ms (now Spell's batch wait) to options.answer_timeout_ms

Revision ID: 0010
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _move_option(old: str, new: str) -> None:
    """Rename one key of every model server's options (JSON), keeping what it meant."""
    bind = op.get_bind()
    servers = sa.table("model_servers", sa.column("id", sa.Integer),
                       sa.column("options", sa.JSON))
    for row in bind.execute(sa.select(servers.c.id, servers.c.options)).all():
        options = dict(row.options or {})
        if old in options:
            options[new] = options.pop(old)
            bind.execute(servers.update().where(servers.c.id == row.id).values(options=options))


def upgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.add_column(sa.Column("files", sa.JSON(), nullable=True))
    _move_option("request_timeout_ms", "answer_timeout_ms")


def downgrade() -> None:
    _move_option("request_timeout_ms", "batch_wait_ms_dropped")  # no such option before
    _move_option("answer_timeout_ms", "request_timeout_ms")
    with op.batch_alter_table("models") as batch:
        batch.drop_column("files")
