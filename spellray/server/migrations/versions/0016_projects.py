"""projects (`spell project`, `spell run -p`) and archived runs (`spell archive`)

Revision ID: 0016
Revises: 0015
"""
import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("owner", sa.String(63), nullable=False),
        sa.Column("mlflow_experiment_id", sa.String(64), nullable=True),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_projects_owner", "projects", ["owner"])
    # No foreign key on runs.project_id: SQLite cannot add one to an existing table in place.
    op.add_column("runs", sa.Column("project_id", sa.Integer(), nullable=True))
    op.create_index("ix_runs_project_id", "runs", ["project_id"])
    op.add_column("runs", sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("runs", "archived_at")
    op.drop_index("ix_runs_project_id", "runs")
    op.drop_column("runs", "project_id")
    op.drop_index("ix_projects_owner", "projects")
    op.drop_table("projects")
