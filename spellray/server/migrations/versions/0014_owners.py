"""owners: teams and their members, and an owner (a user's or a team's name) on every
owned thing; rows made before get the first admin's name

Revision ID: 0014
Revises: 0013
"""
import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# Each owned thing's table (a workflow is a run of kind workflow).
OWNED = ("runs", "hyper_searches", "models", "model_servers", "workspaces", "links")
FIRST_ADMIN = "(SELECT name FROM users WHERE role = 'admin' ORDER BY id LIMIT 1)"


def upgrade() -> None:
    op.create_table(
        "teams",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(63), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "team_members",
        sa.Column("team_id", sa.Integer(), sa.ForeignKey("teams.id"), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_team_members_user_id", "team_members", ["user_id"])
    # Uploads have no table of their own: one row per top-level upload name.
    op.create_table(
        "upload_owners",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("owner", sa.String(63), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    for table in OWNED:
        op.add_column(table, sa.Column("owner", sa.String(63), nullable=True))
        op.create_index(f"ix_{table}_owner", table, ["owner"])
        op.execute(f"UPDATE {table} SET owner = {FIRST_ADMIN}")  # noqa: S608 (constants)
    # Uploads already in storage have no row: one with none is the first admin's
    # (server/ownership.py), as this migration makes everything else.


def downgrade() -> None:
    for table in OWNED:
        op.drop_index(f"ix_{table}_owner", table)
        op.drop_column(table, "owner")
    op.drop_table("upload_owners")
    op.drop_index("ix_team_members_user_id", "team_members")
    op.drop_table("team_members")
    op.drop_table("teams")
