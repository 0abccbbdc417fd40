"""status histories of searches and model servers, as runs have

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# (table, its owner's table, the foreign key column, when the owner's current status began)
_HISTORIES = (
    ("hyper_search_events", "hyper_searches", "hyper_search_id",
     "COALESCE(ended_at, created_at)"),
    ("model_server_events", "model_servers", "model_server_id", "updated_at"),
)


def upgrade() -> None:
    for table, owner, key, since in _HISTORIES:
        op.create_table(
            table,
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column(key, sa.Integer(), nullable=False),
            sa.Column("status", sa.String(length=20), nullable=False),
            sa.Column("reason", sa.Text(), nullable=True),
            sa.Column("at", sa.DateTime(timezone=True), nullable=False),
            sa.ForeignKeyConstraint([key], [f"{owner}.id"]),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index(f"ix_{table}_{key}", table, [key])
        # Each history starts with the status its owner has now.
        op.execute(f"INSERT INTO {table} ({key}, status, reason, at) "
                   f"SELECT id, status, status_reason, {since} FROM {owner}")


def downgrade() -> None:
    for table, _owner, key, _since in _HISTORIES:
        op.drop_index(f"ix_{table}_{key}", table)
        op.drop_table(table)
