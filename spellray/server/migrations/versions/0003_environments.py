"""environments and idempotent runs

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("environment_digest", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("identity", sa.String(length=64), nullable=True))
        batch.create_index("ix_runs_identity", ["identity"])
    op.create_table(
        "idempotency_claims",
        sa.Column("identity", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("runs.id"), nullable=False),
        sa.PrimaryKeyConstraint("identity"),
    )


def downgrade() -> None:
    op.drop_table("idempotency_claims")
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_identity")
        batch.drop_column("identity")
        batch.drop_column("environment_digest")
