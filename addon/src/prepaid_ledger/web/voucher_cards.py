"""Minting vouchers from the landlord page, answered with their printable cards.

The ledger keeps only a hash of each code, so the answer that mints a batch is the one chance to
print the cards or export them: ``POST /ui/vouchers/mint`` takes the landlord page's ordinary
HTML form (value in major units, like every money field on the page) and answers an A4 page of
cards, each with its code, serial and a QR code, plus the batch as a CSV file embedded in the
page (there is no second route that could serve it). With a public base URL the QR code is the
address ``/pay/voucher?code=...``, which opens the scanning phone's pay page with the code filled
in; without one it is the digits alone.

A form cannot carry the API's ``X-Requested-With`` header, so this route checks where the form
came from itself, as the logout form does: ``Sec-Fetch-Site`` must be same-origin (or none) and,
outside ingress, ``Origin`` must be ours; a session cookie (SameSite=Strict) or Home Assistant's
ingress is required as for every landlord page. A form the page marked with a ``?request=`` id is
minted once: sending it again (reload, back and forward) answers which batch it made instead of
minting a second one.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections import OrderedDict
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from typing import Final
from urllib.parse import quote
from zoneinfo import ZoneInfo

import qrcode  # type: ignore[import-untyped]
from aiohttp import web
from prepaid_meter_contract.vouchers import MintedBatch, VoucherBatchRequest
from prepaid_meter_contract.wire import MAX_MINOR

from prepaid_ledger.api.auth import browser_principal, cross_site_reason, trusted_ingress
from prepaid_ledger.api.context import db_of, settings_of, state_of
from prepaid_ledger.config import Settings
from prepaid_ledger.domain.money import from_minor, parse_currency
from prepaid_ledger.errors import ConflictError, InputError, NotFoundError
from prepaid_ledger.services import vouchers
from prepaid_ledger.services.pay_links import voucher_scan_url
from prepaid_ledger.services.validation import parse_model
from prepaid_ledger.web.i18n import DEFAULT, N_, Speaker, Words, negotiate, speaker
from prepaid_ledger.web.templates import render
from prepaid_ledger.web.tenant_page import parse_amount

routes = web.RouteTableDef()

#: Longest text any field of the mint form may carry (the note's own limit is the contract's).
MAX_FIELD: Final = 500
#: Form ids remembered against a second mint (in memory: a restart forgets them).
_REMEMBERED: Final = 1000
#: The title of a page that refused to mint (translated where it is shown).
NOT_MINTED: Final = N_("Not minted")
_CSP: Final = (
    "default-src 'none'; style-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors {ancestors}"
)


class _Sent:
    """Batches minted per form id, oldest first; None while that form is being minted."""

    def __init__(self) -> None:
        self.batches: OrderedDict[str, int | None] = OrderedDict()

    def claim(self, request_id: str) -> int | bool | None:
        """Reserve REQUEST_ID; True when new, else the batch it minted (None: still minting)."""
        if request_id in self.batches:
            return self.batches[request_id]
        self.batches[request_id] = None
        while len(self.batches) > _REMEMBERED:
            self.batches.popitem(last=False)
        return True

    def done(self, request_id: str, batch_id: int | None) -> None:
        """Record the batch a form minted, or forget the form when it minted nothing."""
        if batch_id is None:
            self.batches.pop(request_id, None)
        else:
            self.batches[request_id] = batch_id


_SENT = _Sent()


def _html(text: str, request: web.Request, status: int = 200) -> web.Response:
    settings = settings_of(request)
    ancestors = "'self'" if trusted_ingress(request, settings.ingress_proxy) else "'none'"
    return web.Response(
        text=text,
        status=status,
        content_type="text/html",
        headers={
            "Content-Security-Policy": _CSP.format(ancestors=ancestors),
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
        },
    )


def _problem(request: web.Request, status: int, title: str, message: Words) -> web.Response:
    """Answer a page that says why nothing was minted, with the way back to the landlord page.

    Both are said in the reader's language; a reason from the ledger stays as it is written.
    """
    reader = speaker(negotiate(request))
    page = render(
        "voucher_problem.html",
        reader=reader,
        title=reader.gettext(title),
        message=reader.say(message),
        back_url="../../",
    )
    return _html(page, request, status)


def _not_minted(reason: str) -> Words:
    """Say that nothing was minted: REASON is the ledger's own (English) explanation."""
    return Words(N_("Nothing was minted: %(reason)s."), {"reason": reason})


def _field(form: Mapping[str, object], name: str) -> str:
    value = form.get(name)
    if not isinstance(value, str):
        return ""
    if len(value) > MAX_FIELD:
        raise InputError("invalid_field", f"{name} is too long", name)
    return value.strip()


def _end_of_day(text: str, timezone: str) -> str:
    """Return when a card dated TEXT (YYYY-MM-DD) stops working: that day's end, local time."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise InputError(
            "invalid_field", "expires must be a date such as 2030-12-31", "expires"
        ) from None
    if len(text) != 10:
        raise InputError("invalid_field", "expires must be a date such as 2030-12-31", "expires")
    if day >= date(9999, 12, 31):
        raise InputError("invalid_field", "expires must be a date before 9999-12-31", "expires")
    local = datetime.combine(day + timedelta(days=1), time(0), ZoneInfo(timezone))
    return local.isoformat()


def batch_request(form: Mapping[str, object], settings: Settings) -> VoucherBatchRequest:
    """Read the mint form into the API's request, or refuse naming the field at fault."""
    currency = parse_currency(_field(form, "currency").upper() or settings.default_currency)
    try:
        value_minor = parse_amount(_field(form, "value"), currency, 1, MAX_MINOR)
    except InputError as err:
        raise InputError(err.code, f"value: {err.message}", "value") from None
    count = _field(form, "count")
    if not (count.isascii() and count.isdigit()) or len(count) > 6:
        raise InputError("invalid_field", "count must be a whole number from 1 to 1000", "count")
    wanted: dict[str, object] = {
        "value_minor": value_minor,
        "currency": currency,
        "count": int(count),
    }
    expires = _field(form, "expires")
    if expires:
        wanted["expires_at"] = _end_of_day(expires, settings.default_timezone)
    account = _field(form, "account")
    if account:
        if not (account.isascii() and account.isdigit()) or len(account) > 18:
            raise InputError("invalid_field", "account must be one of the accounts", "account")
        wanted["account_id"] = int(account)
    note = _field(form, "note")
    if note:
        wanted["note"] = note
    return parse_model(VoucherBatchRequest, wanted)


def _local_day(moment: datetime | None, timezone: str, reader: Speaker) -> str:
    if moment is None:
        return ""
    # The batch ends at midnight after its last day: print that last day.
    return reader.day((moment.astimezone(ZoneInfo(timezone)) - timedelta(microseconds=1)).date())


def cards_csv(minted: MintedBatch, public_base_url: str | None = None) -> str:
    """Return the batch for a shop's till: serial, code (grouped: never read as a number) ..."""
    batch = minted.batch
    value = f"{from_minor(batch.value_minor, batch.currency):f}"
    expires = batch.expires_at.isoformat() if batch.expires_at else ""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["serial", "code", "value", "currency", "expires_at", "batch", "url"])
    for card in minted.codes:
        url = voucher_scan_url(public_base_url, _digits(card.code)) or ""
        writer.writerow([card.serial, card.code, value, batch.currency, expires, batch.id, url])
    return out.getvalue()


def qr_path(text: str) -> tuple[int, str]:
    """Return a QR code of TEXT as its side in modules and one SVG path of its dark modules.

    The template draws it inline (``<svg><path d=...>``) through autoescaping, so no markup
    built here is ever trusted as HTML.
    """
    code = qrcode.QRCode(border=2, error_correction=qrcode.constants.ERROR_CORRECT_M)
    code.add_data(text)
    code.make(fit=True)
    matrix: list[list[bool]] = code.get_matrix()
    steps = [
        f"M{x},{y}h1v1h-1z" for y, line in enumerate(matrix) for x, dark in enumerate(line) if dark
    ]
    return len(matrix), "".join(steps)


def _digits(code: str) -> str:
    return code.replace(" ", "")


def render_cards(
    minted: MintedBatch,
    timezone: str,
    public_base_url: str | None = None,
    reader: Speaker | None = None,
) -> str:
    """Render the printable cards page (QR codes are CPU work: call it from a thread)."""
    words = reader or speaker(DEFAULT)
    batch = minted.batch
    cards = [
        {
            "serial": card.serial,
            "groups": card.code.split(" "),
            "qr": qr_path(
                voucher_scan_url(public_base_url, _digits(card.code)) or _digits(card.code)
            ),
        }
        for card in minted.codes
    ]
    return render(
        "voucher_cards.html",
        reader=words,
        batch_id=batch.id,
        count=batch.count,
        value=words.money(batch.value_minor, batch.currency),
        expires=_local_day(batch.expires_at, timezone, words),
        timezone=timezone,
        account_id=batch.account_id,
        note=batch.note or "",
        cards=cards,
        scan=voucher_scan_url(public_base_url, "") is not None,
        csv_url="data:text/csv;charset=utf-8," + quote(cards_csv(minted, public_base_url)),
        csv_name=f"vouchers-batch-{batch.id}.csv",
        back_url="../../",
        stylesheet="../voucher_cards.css",
    )


def _foreign_form(request: web.Request, settings: Settings) -> str | None:
    """Return why a form did not come from the landlord page, or None.

    The browser rules are the logout form's (``cross_site_reason``). Minting also refuses,
    outside ingress, a form with neither Sec-Fetch-Site nor an Origin: only a browser on the
    landlord page may mint cards.
    """
    through_ingress = trusted_ingress(request, settings.ingress_proxy)
    # Through ingress the Host is the add-on's, not the page's: no Origin to compare there.
    reason = cross_site_reason(request, settings, check_origin=not through_ingress)
    told = "Sec-Fetch-Site" in request.headers or "Origin" in request.headers
    if reason is None and not told and not through_ingress:
        reason = "the form must be sent by a browser from the landlord page"
    return reason


@routes.post("/ui/vouchers/mint")
async def mint_from_form(request: web.Request) -> web.StreamResponse:
    """Mint a batch from the landlord page's form and answer its printable cards, this once."""
    settings = settings_of(request)
    principal = await browser_principal(request, settings)
    if principal is None:
        raise web.HTTPSeeOther("../../login")
    reason = _foreign_form(request, settings)
    if reason is not None:
        return _problem(request, 403, NOT_MINTED, _not_minted(reason))
    try:
        form = await request.post()
    except ValueError:  # UnicodeDecodeError included: the body is not UTF-8 form data
        return _problem(request, 400, NOT_MINTED, Words(N_("The form could not be read.")))
    try:
        wanted = batch_request(form, settings)
    except InputError as err:
        return _problem(request, 422, NOT_MINTED, _not_minted(err.message))
    # The page puts the id in the form's address (no hidden field); a bare form may send it.
    request_id = (request.query.get("request") or _field(form, "request"))[:100]
    if request_id:
        claimed = _SENT.claim(request_id)
        if claimed is not True:
            which = (
                Words(N_("batch #%(batch)s"), {"batch": claimed})
                if claimed is not None
                else Words(N_("a batch"))
            )
            return _problem(
                request,
                409,
                N_("Already minted"),
                Words(
                    N_(
                        "This form was already sent and minted %(which)s; its codes were shown "
                        "only once. If those cards are lost, void the batch on the landlord page "
                        "and mint a new one."
                    ),
                    {"which": which},
                ),
            )
    ledger_id = state_of(request.app).ledger_id
    try:
        minted = await db_of(request).write(
            lambda s: vouchers.mint(s, wanted, ledger_id, principal.actor)
        )
    except (InputError, NotFoundError, ConflictError) as err:
        if request_id:
            _SENT.done(request_id, None)
        status = 404 if isinstance(err, NotFoundError) else 422
        return _problem(request, status, NOT_MINTED, _not_minted(err.message))
    except BaseException:
        if request_id:
            _SENT.done(request_id, None)
        raise
    if request_id:
        _SENT.done(request_id, minted.batch.id)
    page = await asyncio.to_thread(
        render_cards,
        minted,
        settings.default_timezone,
        settings.public_base_url,
        speaker(negotiate(request)),
    )
    return _html(page, request)
