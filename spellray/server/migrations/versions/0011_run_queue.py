"""run_queue: runs wait in spellray's own queue, not as pending Ray jobs

Revision ID: 0011
Revises: 0010
"""
import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_queue",
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column("owner", sa.String(100), nullable=False),
        sa.Column("machine_type", sa.String(100), nullable=False),
        sa.Column("demand", sa.JSON(), nullable=False),
        sa.Column("bundles", sa.Integer(), nullable=False),
        sa.Column("job", sa.JSON(), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_run_queue_machine_type", "run_queue", ["machine_type"])


def downgrade() -> None:
    op.drop_index("ix_run_queue_machine_type", "run_queue")
    op.drop_table("run_queue")
