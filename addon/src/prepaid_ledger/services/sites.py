"""Sites: each Home Assistant of a fleet sees and posts for its own site's accounts only.

An integration token is bound to one site. Everything it names by id (an account, a meter, a
reading, an order) is looked up within that site: another site's row is "not found", exactly
as a row that does not exist, so a token learns nothing about the rest of the fleet.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prepaid_meter_contract.sites import Site as SiteView
from prepaid_meter_contract.sites import SiteInput, Sites
from sqlalchemy import Select, case, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from prepaid_ledger.errors import ConflictError, NotFoundError
from prepaid_ledger.services import audit
from prepaid_ledger.services.accounts import resolve_account_ref
from prepaid_ledger.services.validation import in_id_range
from prepaid_ledger.store.models import DEFAULT_SITE_ID, Account, Meter, Site


async def create_site(session: AsyncSession, request: SiteInput, actor: str) -> SiteView:
    """Add a site (its name unique), audited."""
    taken = await session.scalar(select(Site.id).where(Site.name == request.name))
    if taken is not None:
        raise ConflictError(
            "duplicate_site", f"a site named {request.name!r} exists (site {taken})"
        )
    site = Site(name=request.name)
    session.add(site)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise ConflictError("duplicate_site", f"a site named {request.name!r} exists") from None
    view = SiteView(id=site.id, name=site.name, created_at=site.created_at)
    audit.record(
        session,
        actor=actor,
        action="site.create",
        target=f"site:{site.id}",
        before=None,
        after=view,
    )
    return view


async def list_sites(session: AsyncSession) -> Sites:
    """Every site with its accounts and how many of them have their supply off."""
    counts = (
        select(
            Account.site_id,
            func.count().label("accounts"),
            func.sum(case((Account.supply_allowed.is_(False), 1), else_=0)).label("off"),
        )
        .where(Account.status == "open")
        .group_by(Account.site_id)
        .subquery()
    )
    rows = await session.execute(
        select(Site, counts.c.accounts, counts.c.off)
        .outerjoin(counts, counts.c.site_id == Site.id)
        .order_by(Site.id)
    )
    return Sites(
        sites=[
            SiteView(
                id=site.id,
                name=site.name,
                created_at=site.created_at,
                accounts=int(accounts or 0),
                supply_off=int(off or 0),
            )
            for site, accounts, off in rows
        ]
    )


async def require_site(session: AsyncSession, site_id: int) -> Site:
    """Return the site (404 when there is none with this id)."""
    site = await session.get(Site, site_id) if in_id_range(site_id) else None
    if site is None:
        raise NotFoundError(f"site {site_id}")
    return site


def site_accounts(site_id: int | None) -> Select[tuple[int]]:
    """Select the ids of one site's accounts (None: every account), for ``.in_(...)``."""
    ids = select(Account.id)
    return ids if site_id is None else ids.where(Account.site_id == site_id)


def of_site(account_id: ColumnElement[Any] | Any, site_id: int) -> ColumnElement[bool]:
    """Whether a row's account (ACCOUNT_ID) is SITE_ID's; unclaimed rows are site 1's.

    A payment no account claims (a mistyped number) belongs to no building: the landlord's
    own Home Assistant (site 1) puts it in front of a person, no other site sees it.
    """
    mine = account_id.in_(site_accounts(site_id))
    return or_(mine, account_id.is_(None)) if site_id == DEFAULT_SITE_ID else mine


async def check_accounts(
    session: AsyncSession, site_id: int | None, account_ids: Iterable[int | None]
) -> None:
    """Refuse (404, as if absent) when any of these accounts is another site's."""
    wanted = {a for a in account_ids if a is not None}
    if site_id is None or not wanted:
        return
    foreign = await session.scalar(
        select(Account.id)
        .where(Account.id.in_(wanted), Account.site_id != site_id)
        .order_by(Account.id)
        .limit(1)
    )
    if foreign is not None:
        raise NotFoundError(f"account {foreign}")


async def check_account_ref(session: AsyncSession, site_id: int | None, ref: object) -> None:
    """Refuse (404, as if absent) an account named by id or printed number of another site."""
    if site_id is not None:
        await check_accounts(session, site_id, [(await resolve_account_ref(session, ref)).id])


async def check_meters(
    session: AsyncSession, site_id: int | None, meter_ids: Iterable[int]
) -> None:
    """Refuse (404, as if absent) when any of these meters bills another site's account."""
    wanted = set(meter_ids)
    if site_id is None or not wanted:
        return
    foreign = await session.scalar(
        select(Meter.id)
        .join(Account, Account.id == Meter.account_id)
        .where(Meter.id.in_(wanted), Account.site_id != site_id)
        .order_by(Meter.id)
        .limit(1)
    )
    if foreign is not None:
        raise NotFoundError(f"meter {foreign}")
