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
    # Plain ADD COLUMNs, no table copy: SQLite cannot drop `runs` to copy it while other
    # tables' rows point at it (foreign keys are on). The workflow's row is a run's, so
    # the ORM's foreign key is enough; SQLite could not add the constraint in place anyway.
    op.add_column("runs", sa.Column("workflow_id", sa.Integer(), nullable=True))
    op.create_index("ix_runs_workflow_id", "runs", ["workflow_id"])
    op.add_column("tokens", sa.Column("kind", sa.String(length=20), nullable=False,
                                      server_default="admin"))
    op.add_column("tokens", sa.Column("scopes", sa.Text(), nullable=False, server_default=""))
    op.add_column("tokens", sa.Column("workflow_id", sa.Integer(), nullable=True))
    op.add_column("tokens", sa.Column("hyper_search_id", sa.Integer(), nullable=True))
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
    for column in ("hyper_search_id", "workflow_id", "scopes", "kind"):
        op.drop_column("tokens", column)
    op.drop_index("ix_runs_workflow_id", "runs")
    op.drop_column("runs", "workflow_id")
