"""workflows (a manager run and its children) and scoped tokens

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Adding a foreign key makes SQLite copy the table: keep its AUTOINCREMENT.
    with op.batch_alter_table("runs", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.add_column(sa.Column("workflow_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_runs_workflow", "runs", ["workflow_id"], ["id"])
        batch.create_index("ix_runs_workflow_id", ["workflow_id"])
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("kind", sa.String(length=20), nullable=False,
                                   server_default="admin"))
        batch.add_column(sa.Column("scopes", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("workflow_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("hyper_search_id", sa.Integer(), nullable=True))
    # Existing tokens keep what they could do: a run's reports its run, a search's drives it.
    op.execute("UPDATE tokens SET kind = 'admin', scopes = 'admin' "
               "WHERE run_id IS NULL AND name NOT LIKE 'search %'")
    op.execute("UPDATE tokens SET kind = 'run', "
               "scopes = 'runs:read runs:report metrics:write resources:read' "
               "WHERE run_id IS NOT NULL")
    op.execute("UPDATE tokens SET kind = 'search', scopes = 'search:drive', "
               "hyper_search_id = CAST(substr(name, 8) AS INTEGER) WHERE name LIKE 'search %'")
    op.create_table(
        "workflow_repos",
        sa.Column("workflow_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("code_sha256", sa.String(length=64), nullable=True),
        sa.Column("git_url", sa.Text(), nullable=True),
        sa.Column("git_ref", sa.Text(), nullable=True),
        sa.Column("git_commit", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["workflow_id"], ["runs.id"]),
        sa.PrimaryKeyConstraint("workflow_id", "label"),
    )


def downgrade() -> None:
    op.drop_table("workflow_repos")
    with op.batch_alter_table("tokens") as batch:
        for column in ("hyper_search_id", "workflow_id", "scopes", "kind"):
            batch.drop_column(column)
    with op.batch_alter_table("runs", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_index("ix_runs_workflow_id")
        batch.drop_constraint("fk_runs_workflow", type_="foreignkey")
        batch.drop_column("workflow_id")
