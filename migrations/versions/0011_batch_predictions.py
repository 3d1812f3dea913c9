"""batch predictions: a job's kind, and the finished chunks of a batch prediction

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(
            sa.Column(
                "kind",
                sa.Enum("train", "batch_predict", name="jobkind", native_enum=False, length=16),
                server_default="train",
                nullable=False,
            )
        )
    op.create_table(
        "batch_chunks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "job_id",
            sa.String(length=32),
            sa.ForeignKey("jobs.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("chunk", sa.Integer(), nullable=False),
        sa.Column("first_row", sa.Integer(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=500), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("bad_count", sa.Integer(), nullable=False),
        sa.Column("bad_rows", sa.JSON(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("job_id", "chunk"),
    )
    op.create_index("ix_batch_chunks_job_id", "batch_chunks", ["job_id"])


def downgrade() -> None:
    op.drop_index("ix_batch_chunks_job_id", table_name="batch_chunks")
    op.drop_table("batch_chunks")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("kind")
