"""text_pay_offers: pay by text (an offer per PAY, charged once on YES; one text payment per bill)

Revision ID: 96d8dc59245d
Revises: 6af2f876e20d
Create Date: 2026-12-03 16:06:39.129035
"""

import sqlalchemy as sa
from alembic import op

import ivr.models

revision = '96d8dc59245d'
down_revision = '6af2f876e20d'
branch_labels = None
depends_on = None

# A bill's offers being charged or paid: at most one per (account, due date).
HOLDING = sa.text("status IN ('charging', 'paid')")


def upgrade() -> None:
    op.create_table(
        'text_pay_offers',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('due_date', sa.Date(), nullable=True),
        sa.Column('amount_cents', sa.BigInteger(), nullable=False),
        sa.Column('saved_card_id', sa.Integer(), nullable=True),
        sa.Column('stripe_payment_method', sa.String(length=64), nullable=False),
        sa.Column('card_brand', sa.String(length=20), nullable=True),
        sa.Column('card_last4', sa.String(length=4), nullable=True),
        sa.Column('from_number', sa.String(length=20), nullable=False),
        sa.Column('language', sa.String(length=2), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('created_at', ivr.models.UTCDateTime(), nullable=False),
        sa.Column('expires_at', ivr.models.UTCDateTime(), nullable=False),
        sa.Column('claimed_at', ivr.models.UTCDateTime(), nullable=True),
        sa.Column('payment_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_text_pay_offers_account_id_accounts')),
        sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], name=op.f('fk_text_pay_offers_payment_id_payments')),
        sa.ForeignKeyConstraint(['saved_card_id'], ['saved_cards.id'],
                                name=op.f('fk_text_pay_offers_saved_card_id_saved_cards'), ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_text_pay_offers')),
        sa.UniqueConstraint('payment_id', name=op.f('uq_text_pay_offers_payment_id')),
    )
    with op.batch_alter_table('text_pay_offers', schema=None) as batch_op:
        batch_op.create_index('ix_text_pay_offers_from_number_created_at', ['from_number', 'created_at'], unique=False)
        batch_op.create_index('uq_text_pay_offers_one_payment_per_bill', ['account_id', 'due_date'], unique=True,
                              sqlite_where=HOLDING, postgresql_where=HOLDING)


def downgrade() -> None:
    with op.batch_alter_table('text_pay_offers', schema=None) as batch_op:
        batch_op.drop_index('uq_text_pay_offers_one_payment_per_bill', sqlite_where=HOLDING, postgresql_where=HOLDING)
        batch_op.drop_index('ix_text_pay_offers_from_number_created_at')
    op.drop_table('text_pay_offers')
