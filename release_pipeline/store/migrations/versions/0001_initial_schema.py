"""initial schema

Revision ID: 0001
Revises: (none)
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("path", sa.String(length=1000), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_agents")),
    )
    op.create_table(
        "versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent", sa.String(length=200), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("parent_number", sa.Integer(), nullable=True),
        sa.Column("git_sha", sa.String(length=64), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("intent", sa.Text(), nullable=False),
        sa.Column("source_ref", sa.Text(), nullable=False),
        sa.Column("branch", sa.String(length=300), nullable=False),
        sa.Column("diff", sa.Text(), nullable=False),
        sa.Column("changed_files", sa.JSON(), nullable=False),
        sa.Column("spec_id", sa.Integer(), nullable=True),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["agent"], ["agents.name"], name=op.f("fk_versions_agent_agents")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_versions")),
        sa.UniqueConstraint("agent", "number", name=op.f("uq_versions_agent")),
    )
    with op.batch_alter_table("versions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_versions_agent"), ["agent"], unique=False)

    op.create_table(
        "gate_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent", sa.String(length=200), nullable=False),
        sa.Column("candidate_version_id", sa.Integer(), nullable=False),
        sa.Column("base_version_id", sa.Integer(), nullable=False),
        sa.Column("decision", sa.String(length=20), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("markdown", sa.Text(), nullable=False),
        sa.Column("policy_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["agent"], ["agents.name"], name=op.f("fk_gate_reports_agent_agents")),
        sa.ForeignKeyConstraint(
            ["base_version_id"], ["versions.id"], name=op.f("fk_gate_reports_base_version_id_versions")
        ),
        sa.ForeignKeyConstraint(
            ["candidate_version_id"], ["versions.id"], name=op.f("fk_gate_reports_candidate_version_id_versions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gate_reports")),
    )
    with op.batch_alter_table("gate_reports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_gate_reports_agent"), ["agent"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_gate_reports_candidate_version_id"), ["candidate_version_id"], unique=False
        )

    op.create_table(
        "head_moves",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent", sa.String(length=200), nullable=False),
        sa.Column("from_version_id", sa.Integer(), nullable=True),
        sa.Column("to_version_id", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["agent"], ["agents.name"], name=op.f("fk_head_moves_agent_agents")),
        sa.ForeignKeyConstraint(
            ["from_version_id"], ["versions.id"], name=op.f("fk_head_moves_from_version_id_versions")
        ),
        sa.ForeignKeyConstraint(["to_version_id"], ["versions.id"], name=op.f("fk_head_moves_to_version_id_versions")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_head_moves")),
    )
    with op.batch_alter_table("head_moves", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_head_moves_agent"), ["agent"], unique=False)

    op.create_table(
        "heads",
        sa.Column("agent", sa.String(length=200), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["agent"], ["agents.name"], name=op.f("fk_heads_agent_agents")),
        sa.ForeignKeyConstraint(["version_id"], ["versions.id"], name=op.f("fk_heads_version_id_versions")),
        sa.PrimaryKeyConstraint("agent", name=op.f("pk_heads")),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("split", sa.String(length=50), nullable=False),
        sa.Column("repeats", sa.Integer(), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("purpose", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("task_ids", sa.JSON(), nullable=False),
        sa.Column("suite", sa.String(length=300), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["version_id"], ["versions.id"], name=op.f("fk_runs_version_id_versions")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
    )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_runs_version_id"), ["version_id"], unique=False)

    op.create_table(
        "specs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent", sa.String(length=200), nullable=False),
        sa.Column("version_number", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("markdown", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["agent"], ["agents.name"], name=op.f("fk_specs_agent_agents")),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_specs_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_specs")),
    )
    with op.batch_alter_table("specs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_specs_agent"), ["agent"], unique=False)

    op.create_table(
        "trials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.String(length=300), nullable=False),
        sa.Column("repeat", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("output", sa.JSON(), nullable=True),
        sa.Column("trace", sa.JSON(), nullable=False),
        sa.Column("feedback", sa.Text(), nullable=False),
        sa.Column("reason", sa.String(length=50), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("tokens", sa.Integer(), nullable=False),
        sa.Column("cost", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_trials_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trials")),
        sa.UniqueConstraint("run_id", "task_id", "repeat", "attempt", name=op.f("uq_trials_run_id")),
    )
    with op.batch_alter_table("trials", schema=None) as batch_op:
        batch_op.create_index("ix_trials_run_task", ["run_id", "task_id"], unique=False)

    op.create_table(
        "symptoms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("trial_id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.String(length=300), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("severity", sa.String(length=10), nullable=False),
        sa.Column("critic", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_symptoms_run_id_runs")),
        sa.ForeignKeyConstraint(["trial_id"], ["trials.id"], name=op.f("fk_symptoms_trial_id_trials")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_symptoms")),
    )
    with op.batch_alter_table("symptoms", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_symptoms_run_id"), ["run_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("symptoms", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_symptoms_run_id"))

    op.drop_table("symptoms")
    with op.batch_alter_table("trials", schema=None) as batch_op:
        batch_op.drop_index("ix_trials_run_task")

    op.drop_table("trials")
    with op.batch_alter_table("specs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_specs_agent"))

    op.drop_table("specs")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_runs_version_id"))

    op.drop_table("runs")
    op.drop_table("heads")
    with op.batch_alter_table("head_moves", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_head_moves_agent"))

    op.drop_table("head_moves")
    with op.batch_alter_table("gate_reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_gate_reports_candidate_version_id"))
        batch_op.drop_index(batch_op.f("ix_gate_reports_agent"))

    op.drop_table("gate_reports")
    with op.batch_alter_table("versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_versions_agent"))

    op.drop_table("versions")
    op.drop_table("agents")
