"""scheduled_payments (a payment on a later day), autopay_enrollments (one per account, with the consent) and
autopay_bills (one row per bill autopay took on: unique account and due date)

Revision ID: 1d7301fa5957
Revises: a3f9c2d81e57
Create Date: 2026-12-03 16:07:26.842897
"""

import sqlalchemy as sa
from alembic import op

import ivr.models

revision = '1d7301fa5957'
down_revision = 'a3f9c2d81e57'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('autopay_enrollments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('enrolled_at', ivr.models.UTCDateTime(), nullable=False),
    sa.Column('consent_channel', sa.String(length=16), nullable=False),
    sa.Column('consent_call_sid', sa.String(length=64), nullable=True),
    sa.Column('consent_language', sa.String(length=2), nullable=False),
    sa.Column('consent_words', sa.Text(), nullable=False),
    sa.Column('cancelled_at', ivr.models.UTCDateTime(), nullable=True),
    sa.Column('cancelled_by', sa.String(length=120), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_autopay_enrollments_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_autopay_enrollments')),
    sa.UniqueConstraint('account_id', name=op.f('uq_autopay_enrollments_account_id'))
    )
    op.create_table('autopay_bills',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('due_date', sa.Date(), nullable=False),
    sa.Column('enrollment_id', sa.Integer(), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('charge_at', ivr.models.UTCDateTime(), nullable=False),
    sa.Column('next_attempt_at', ivr.models.UTCDateTime(), nullable=False),
    sa.Column('claimed_until', ivr.models.UTCDateTime(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('payment_id', sa.Integer(), nullable=True),
    sa.Column('failure_code', sa.String(length=64), nullable=True),
    sa.Column('created_at', ivr.models.UTCDateTime(), nullable=False),
    sa.Column('finished_at', ivr.models.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_autopay_bills_account_id_accounts')),
    sa.ForeignKeyConstraint(['enrollment_id'], ['autopay_enrollments.id'],
                            name=op.f('fk_autopay_bills_enrollment_id_autopay_enrollments')),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], name=op.f('fk_autopay_bills_payment_id_payments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_autopay_bills')),
    sa.UniqueConstraint('account_id', 'due_date', name=op.f('uq_autopay_bills_account_id'))
    )
    with op.batch_alter_table('autopay_bills', schema=None) as batch_op:
        batch_op.create_index('ix_autopay_bills_due', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_autopay_bills_enrollment_id'), ['enrollment_id'], unique=False)

    op.create_table('scheduled_payments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('pay_on', sa.Date(), nullable=False),
    sa.Column('charge_at', ivr.models.UTCDateTime(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('next_attempt_at', ivr.models.UTCDateTime(), nullable=False),
    sa.Column('claimed_until', ivr.models.UTCDateTime(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('card_source', sa.String(length=8), nullable=False),
    sa.Column('card_brand', sa.String(length=20), nullable=True),
    sa.Column('card_last4', sa.String(length=4), nullable=True),
    sa.Column('stripe_customer', sa.String(length=64), nullable=True),
    sa.Column('stripe_payment_method', sa.String(length=64), nullable=True),
    sa.Column('language', sa.String(length=2), nullable=False),
    sa.Column('created_key', sa.String(length=120), nullable=False),
    sa.Column('created_call_sid', sa.String(length=64), nullable=True),
    sa.Column('created_at', ivr.models.UTCDateTime(), nullable=False),
    sa.Column('cancelled_at', ivr.models.UTCDateTime(), nullable=True),
    sa.Column('cancelled_by', sa.String(length=120), nullable=True),
    sa.Column('payment_id', sa.Integer(), nullable=True),
    sa.Column('failure_code', sa.String(length=64), nullable=True),
    sa.Column('finished_at', ivr.models.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_scheduled_payments_account_id_accounts')),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], name=op.f('fk_scheduled_payments_payment_id_payments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scheduled_payments')),
    sa.UniqueConstraint('created_key', name=op.f('uq_scheduled_payments_created_key'))
    )
    with op.batch_alter_table('scheduled_payments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_scheduled_payments_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_scheduled_payments_created_call_sid'), ['created_call_sid'], unique=False)
        batch_op.create_index('ix_scheduled_payments_due', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_scheduled_payments_stripe_payment_method'), ['stripe_payment_method'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('scheduled_payments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_scheduled_payments_stripe_payment_method'))
        batch_op.drop_index('ix_scheduled_payments_due')
        batch_op.drop_index(batch_op.f('ix_scheduled_payments_created_call_sid'))
        batch_op.drop_index(batch_op.f('ix_scheduled_payments_account_id'))

    op.drop_table('scheduled_payments')
    with op.batch_alter_table('autopay_bills', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_autopay_bills_enrollment_id'))
        batch_op.drop_index('ix_autopay_bills_due')

    op.drop_table('autopay_bills')
    op.drop_table('autopay_enrollments')
