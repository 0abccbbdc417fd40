"""users, and tokens that belong to them (created, last used, expires, revoked)

Revision ID: 0013
Revises: 0012
"""
from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    users = op.create_table(
        "users",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(63), nullable=False, unique=True),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sqlite_autoincrement=True,
    )
    # Plain ADD COLUMNs (see 0008): the ORM holds the foreign key to users.
    op.add_column("tokens", sa.Column("user_id", sa.Integer(), nullable=True))
    op.add_column("tokens", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("tokens", sa.Column("last_used_at", sa.DateTime(timezone=True),
                                      nullable=True))
    op.add_column("tokens", sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_tokens_user_id", "tokens", ["user_id"])
    # The admin user, and today's admin token (SPELLRAY_HOME/token) is theirs: a server
    # that upgrades keeps working with the same token.
    op.bulk_insert(users, [{"name": "admin", "role": "admin", "password_hash": None,
                            "created_at": datetime.now(timezone.utc)}])
    op.execute("UPDATE tokens SET user_id = (SELECT id FROM users WHERE name = 'admin') "
               "WHERE kind = 'admin'")


def downgrade() -> None:
    op.drop_index("ix_tokens_user_id", "tokens")
    for column in ("revoked_at", "last_used_at", "expires_at", "user_id"):
        op.drop_column("tokens", column)
    op.drop_table("users")
