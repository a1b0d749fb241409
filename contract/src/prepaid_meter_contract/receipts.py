"""Receipts: what a succeeded top-up's receipt says, frozen when the money was credited.

Every credited order gets one receipt whose ``number`` is unique and gap-free per ledger
(1, 2, 3, ... in the order the credits committed; a credit that rolled back used none), so a
landlord can show an auditor that no receipt is missing. The facts printed (the payer's name
and room, the balance after) are copied when it is issued: renaming an account later does not
change a receipt already handed out.
"""

from __future__ import annotations

from prepaid_meter_contract.vocabulary import PaymentMethod
from prepaid_meter_contract.wire import Minor, Timestamp, WireModel


class Receipt(WireModel):
    """``GET /api/v1/topups/{id}/receipt``; also inside the order and its ``topup.updated``."""

    #: Gap-free per ledger, from 1.
    number: int
    order_id: int
    issued_at: Timestamp
    account_id: int
    #: The account's number (digits and check digit) when it was issued; None if it had none.
    account_number: str | None = None
    account_name: str
    #: The account's meters' names when it was issued, comma-separated; None without a meter.
    room: str | None = None
    #: What the payer paid, in minor units of ``currency``.
    amount_minor: Minor
    #: Credit given on top of the amount (promotions); 0 until the ledger has promotions.
    bonus_minor: Minor = 0
    currency: str
    currency_exponent: int
    method: PaymentMethod
    #: The account's balance right after this credit (negative while still in debt).
    balance_after_minor: Minor
