"""hyperparameter searches, and their trials' link to them

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hyper_searches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("ray_submission_id", sa.String(length=200), nullable=True),
        sa.Column("archived", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_hyper_searches_status", "hyper_searches", ["status"])
    # Adding a foreign key makes SQLite copy the table: keep its AUTOINCREMENT (a run
    # number is never handed out twice) in the copy.
    with op.batch_alter_table("runs", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.add_column(sa.Column("hyper_search_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_runs_hyper_search", "hyper_searches",
                                 ["hyper_search_id"], ["id"])
        batch.create_index("ix_runs_hyper_search_id", ["hyper_search_id"])


def downgrade() -> None:
    with op.batch_alter_table("runs", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_index("ix_runs_hyper_search_id")
        batch.drop_constraint("fk_runs_hyper_search", type_="foreignkey")
        batch.drop_column("hyper_search_id")
    op.drop_index("ix_hyper_searches_status", "hyper_searches")
    op.drop_table("hyper_searches")
