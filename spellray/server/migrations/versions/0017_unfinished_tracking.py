"""unfinished_tracking: ended runs whose undelivered metrics and MLflow end are still to do

Revision ID: 0017
Revises: 0016
"""
import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "unfinished_tracking",
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column("tried_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_unfinished_tracking_tried_at", "unfinished_tracking", ["tried_at"])


def downgrade() -> None:
    op.drop_index("ix_unfinished_tracking_tried_at", "unfinished_tracking")
    op.drop_table("unfinished_tracking")
