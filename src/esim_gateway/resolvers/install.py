"""Install instructions, install links and the provider's share link: the use cases.

Owners and operators only (`find_esim` answers NotFound to anyone else). Creating links
is rate limited per principal; bad input changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from esim_gateway.config import Settings
from esim_gateway.context import Context
from esim_gateway.domain import EsimProfile, ShareLink
from esim_gateway.errors import InvalidInput, ResourceNotFound, UnsupportedOperation
from esim_gateway.install.instructions import Guide, build_guide, supported_language
from esim_gateway.ledger.install_links import InstallLink, InstallLinkStore
from esim_gateway.ledger.repository import Ledger
from esim_gateway.ops.ratelimit import Limiter, RateLimiter, RedisRateLimiter
from esim_gateway.providers.base import ShareLinkGateway
from esim_gateway.resolvers.esims import find_esim

__all__ = [
    "DEFAULT_EXPIRY",
    "InstallServices",
    "LanguageNotSupported",
    "RateLimited",
    "create_link",
    "guide",
    "links_of",
    "revoke_link",
    "share_link",
]

DEFAULT_EXPIRY = timedelta(days=7)
MIN_EXPIRY = timedelta(minutes=5)
MAX_EXPIRY = timedelta(days=90)


class LanguageNotSupported(Exception):
    def __init__(self, language: str) -> None:
        super().__init__(language)
        self.language = language


class RateLimited(Exception):
    def __init__(self, retry_after: float) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


@dataclass(slots=True)
class InstallServices:
    """Built with the app's services (`Services.install`)."""

    links: InstallLinkStore
    #: install links created per principal
    creation_limiter: Limiter
    #: install page views per client IP
    page_limiter: Limiter

    @classmethod
    def create(cls, settings: Settings, ledger: Ledger) -> InstallServices:
        """Buckets in Redis when the gateway's rate limits are (shared by every replica)."""
        per_hour = settings.install_links_per_hour
        per_minute = settings.install_page_views_per_minute

        def limiter(rate: float, burst: int, name: str) -> Limiter:
            if settings.rate_limit_redis_url:
                return RedisRateLimiter(
                    settings.rate_limit_redis_url, rate, burst, prefix=f"esim-gw:{name}:"
                )
            return RateLimiter(rate, burst)

        return cls(
            links=ledger.install_links,
            creation_limiter=limiter(per_hour / 3600.0, per_hour, "install-links"),
            page_limiter=limiter(per_minute / 60.0, per_minute, "install-page"),
        )

    async def aclose(self) -> None:
        await self.creation_limiter.aclose()
        await self.page_limiter.aclose()


def without_credentials(profile: EsimProfile) -> EsimProfile:
    return replace(
        profile,
        lpa=None,
        smdp_address=None,
        activation_code=None,
        ios_install_url=None,
        android_install_url=None,
    )


def guide(context: Context, profile: EsimProfile, owner: str | None, language: str) -> Guide:
    """Instructions in `language`; a caller who may not see the credentials gets the
    steps without them (and so without the methods that need them)."""
    chosen = supported_language(language)
    if chosen is None:
        raise LanguageNotSupported(language)
    if not context.principal.may_see_credentials(owner):
        profile = without_credentials(profile)
    return build_guide(profile, chosen)


async def share_link(context: Context, profile: EsimProfile) -> ShareLink:
    gateway = context.providers.get(profile.provider)
    if not isinstance(gateway, ShareLinkGateway):
        raise UnsupportedOperation(profile.provider.value, "shareLink")
    return await context.providers.read(profile.provider, lambda: gateway.share_link(profile.iccid))


def _now() -> datetime:
    return datetime.now(UTC)


async def create_link(
    context: Context, iccid: str, expires_in: int | None
) -> tuple[InstallLink, str]:
    """A new link to the install page of one of the caller's eSIMs, and its token."""
    seconds = int(DEFAULT_EXPIRY.total_seconds()) if expires_in is None else expires_in
    if not MIN_EXPIRY.total_seconds() <= seconds <= MAX_EXPIRY.total_seconds():
        raise InvalidInput(
            "expiresIn",
            f"expiresIn is in seconds, from {int(MIN_EXPIRY.total_seconds())}"
            f" to {int(MAX_EXPIRY.total_seconds())} (90 days).",
        )
    profile, record = await find_esim(context, iccid)
    install = context.services.install
    wait = await install.creation_limiter.take(f"principal:{context.principal.id}")
    if wait > 0:
        raise RateLimited(wait)
    now = _now()
    return await install.links.create(
        provider=profile.provider,
        iccid=profile.iccid,
        owner=record.owner,
        created_by=context.principal.id,
        expires_at=now + timedelta(seconds=seconds),
        now=now,
    )


async def links_of(context: Context, profile: EsimProfile, owner: str | None) -> list[InstallLink]:
    """The eSIM's install links (owner and operators; nobody else sees any)."""
    if not context.principal.may_see_credentials(owner):
        return []
    links = await context.services.install.links.for_iccid(profile.iccid)
    return [link for link in links if link.provider is profile.provider]


async def revoke_link(context: Context, link_id: str) -> InstallLink:
    store = context.services.install.links
    link = await store.get(link_id.strip()) if link_id.strip() else None
    if link is None or not context.principal.can_see(link.owner):
        raise ResourceNotFound("No install link with this id.")
    revoked = await store.revoke(link.id, _now())
    if revoked is None:  # deleted meanwhile
        raise ResourceNotFound("No install link with this id.")
    return revoked
