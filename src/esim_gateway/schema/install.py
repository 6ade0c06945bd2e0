"""Install instructions, install links and the provider's share link, as schema types.

`Esim.installation` and `Esim.providerShareLink` are resolved here; `InstallLinkMutations`
is merged into the root Mutation type.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, Protocol

import strawberry
from strawberry.types import Info

from esim_gateway import errors
from esim_gateway.context import Context
from esim_gateway.domain import EsimProfile
from esim_gateway.install import instructions as guide_data
from esim_gateway.ledger.install_links import InstallLink as LinkRecord
from esim_gateway.resolvers import install as install_resolvers
from esim_gateway.schema.enums import Provider
from esim_gateway.schema.errors import (
    Error,
    NotFoundError,
    ProviderError,
    UnsupportedOperationError,
    ValidationError,
    provider_error_from,
)

GInfo = Info[Context, None]

__all__ = [
    "InstallLinkMutations",
    "InstallationResult",
    "ProviderShareLinkResult",
    "resolve_install_links",
    "resolve_installation",
    "resolve_provider_share_link",
]


@strawberry.enum(description="A phone platform.")
class DevicePlatform(enum.Enum):
    IOS = "IOS"
    ANDROID = "ANDROID"


@strawberry.enum(description="How an eSIM gets onto a phone.")
class InstallMethodKind(enum.Enum):
    ONE_TAP = strawberry.enum_value("ONE_TAP", description="A link the phone opens (iOS 17.4+).")
    QR_CODE = "QR_CODE"
    MANUAL = "MANUAL"


@strawberry.enum(description="What a step's value is (show it in monospace, with a copy button).")
class InstallValueKind(enum.Enum):
    SMDP_ADDRESS = "SMDP_ADDRESS"
    ACTIVATION_CODE = "ACTIVATION_CODE"
    LPA = strawberry.enum_value("LPA", description="The whole LPA:1$... activation string.")
    APN = "APN"


@strawberry.type(description="One instruction; `value` is what to enter, when there is one.")
class InstallStep:
    text: str
    value: str | None
    value_kind: InstallValueKind | None

    @classmethod
    def of(cls, step: guide_data.Step) -> InstallStep:
        return cls(
            text=step.text,
            value=step.value,
            value_kind=InstallValueKind(step.value_kind.value) if step.value_kind else None,
        )


def _steps(steps: tuple[guide_data.Step, ...]) -> list[InstallStep]:
    return [InstallStep.of(step) for step in steps]


@strawberry.type(description="One way to install, as ordered steps.")
class InstallMethod:
    kind: InstallMethodKind
    title: str
    url: str | None = strawberry.field(description="The one-tap install link (ONE_TAP only).")
    steps: list[InstallStep]


@strawberry.type(description="The ways to install on one platform, best first.")
class PlatformInstructions:
    platform: DevicePlatform
    title: str
    methods: list[InstallMethod]

    @classmethod
    def of(cls, guide: guide_data.PlatformGuide) -> PlatformInstructions:
        return cls(
            platform=DevicePlatform(guide.platform.value),
            title=guide.title,
            methods=[
                InstallMethod(
                    kind=InstallMethodKind(m.kind.value),
                    title=m.title,
                    url=m.url,
                    steps=_steps(m.steps),
                )
                for m in guide.methods
            ],
        )


@strawberry.type(description="The SM-DP+ address and activation code, shown separately.")
class ManualInstallCodes:
    title: str
    smdp_address: str
    activation_code: str
    steps: list[InstallStep]


@strawberry.type(
    description="Network settings as the provider states them (null where it says nothing)."
)
class NetworkSettings:
    title: str
    apn: str | None
    apn_automatic: bool | None
    data_roaming_required: bool | None = strawberry.field(
        description="Whether Data Roaming must be on for this eSIM."
    )
    hotspot_allowed: bool | None
    steps: list[InstallStep]


@strawberry.type(description="Everything a traveller needs to install the eSIM, in a language.")
class Installation:
    language: str
    ios: PlatformInstructions
    android: PlatformInstructions
    manual: ManualInstallCodes | None = strawberry.field(
        description="Null when the provider gave no SM-DP+ address and activation code."
    )
    network: NetworkSettings

    @classmethod
    def of(cls, guide: guide_data.Guide) -> Installation:
        network = guide.network
        manual = guide.manual
        return cls(
            language=guide.language,
            ios=PlatformInstructions.of(guide.ios),
            android=PlatformInstructions.of(guide.android),
            manual=ManualInstallCodes(
                title=manual.title,
                smdp_address=manual.smdp_address,
                activation_code=manual.activation_code,
                steps=_steps(manual.steps),
            )
            if manual is not None
            else None,
            network=NetworkSettings(
                title=network.title,
                apn=network.apn,
                apn_automatic=network.apn_automatic,
                data_roaming_required=network.data_roaming,
                hotspot_allowed=network.hotspot,
                steps=_steps(network.steps),
            ),
        )


@strawberry.type(description="Instructions are not available in this language.")
class UnsupportedLanguageError(Error):
    language: str
    supported_languages: list[str]


InstallationResult = Annotated[
    Installation | UnsupportedLanguageError, strawberry.union("InstallationResult")
]


@strawberry.type(
    description="The provider's own hosted install page (Roamify). Whoever has `url` (and"
    " `accessCode`) can install the eSIM: share it with its traveller only."
)
class ProviderShareLink:
    provider: Provider
    url: str
    whatsapp_url: str | None
    access_code: str | None
    created_at: datetime | None


ProviderShareLinkResult = Annotated[
    ProviderShareLink | UnsupportedOperationError | ProviderError,
    strawberry.union("ProviderShareLinkResult"),
]


class _EsimRoot(Protocol):
    profile: EsimProfile
    owner: str | None


def resolve_installation(
    root: _EsimRoot,
    info: GInfo,
    language: Annotated[
        str, strawberry.argument(description="A BCP 47 tag: en, vi, vi-VN...")
    ] = "en",
) -> InstallationResult:
    try:
        guide = install_resolvers.guide(info.context, root.profile, root.owner, language)
    except install_resolvers.LanguageNotSupported as exc:
        return UnsupportedLanguageError(
            message=f"Install instructions are available in: "
            f"{', '.join(guide_data.SUPPORTED_LANGUAGES)}.",
            language=exc.language[:35],
            supported_languages=list(guide_data.SUPPORTED_LANGUAGES),
        )
    return Installation.of(guide)


async def resolve_provider_share_link(
    root: _EsimRoot, info: GInfo
) -> ProviderShareLinkResult | None:
    if not info.context.principal.may_see_credentials(root.owner):
        return None
    try:
        link = await install_resolvers.share_link(info.context, root.profile)
    except errors.ProviderFailure as exc:
        return provider_error_from(exc)
    except errors.UnsupportedOperation as exc:
        return UnsupportedOperationError(
            message=f"{exc.provider} has no share link of its own; use createInstallLink.",
            provider=Provider(exc.provider),
            operation=exc.operation,
        )
    return ProviderShareLink(
        provider=Provider(link.provider.value),
        url=link.url,
        whatsapp_url=link.whatsapp_url,
        access_code=link.access_code,
        created_at=link.created_at,
    )


@strawberry.type(description="A link to the gateway's install page for one eSIM.")
class InstallLink:
    id: strawberry.ID
    iccid: str
    provider: Provider
    url: str | None = strawberry.field(
        description="The page's URL with its token: given once, in createInstallLink's answer"
        " (only a hash of the token is kept)."
    )
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, link: LinkRecord, url: str | None = None) -> InstallLink:
        return cls(
            id=strawberry.ID(link.id),
            iccid=link.iccid,
            provider=Provider(link.provider.value),
            url=url,
            created_at=link.created_at,
            expires_at=link.expires_at,
            revoked_at=link.revoked_at,
        )


async def resolve_install_links(root: _EsimRoot, info: GInfo) -> list[InstallLink]:
    links = await install_resolvers.links_of(info.context, root.profile, root.owner)
    return [InstallLink.of(link) for link in links]


@strawberry.type(description="Too many requests: try again after `retryAfterSeconds`.")
class RateLimitedError(Error):
    retry_after_seconds: int


CreateInstallLinkResult = Annotated[
    InstallLink | ValidationError | NotFoundError | RateLimitedError,
    strawberry.union("CreateInstallLinkResult"),
]
RevokeInstallLinkResult = Annotated[
    InstallLink | NotFoundError, strawberry.union("RevokeInstallLinkResult")
]


def _base_url(context: Context) -> str:
    if context.settings.public_url:
        return context.settings.public_url
    if context.request is None:
        raise errors.InvalidInput(None, "No public URL is configured (ESIM_GATEWAY_PUBLIC_URL).")
    return str(context.request.base_url).rstrip("/")


@strawberry.type
class InstallLinkMutations:
    @strawberry.mutation(
        description="A link to a page that installs this eSIM: no login, phone-friendly,"
        " expiring after `expiresIn` seconds (default 7 days, at most 90), revocable."
        " The eSIM's owner or an operator only."
    )
    async def create_install_link(
        self, info: GInfo, iccid: str, expires_in: int | None = None
    ) -> CreateInstallLinkResult:
        try:
            link, token = await install_resolvers.create_link(info.context, iccid, expires_in)
        except install_resolvers.RateLimited as exc:
            return RateLimitedError(
                message="Too many install links created; try again later.",
                retry_after_seconds=max(1, int(exc.retry_after + 0.999)),
            )
        return InstallLink.of(link, f"{_base_url(info.context)}/install/{token}")

    @strawberry.mutation(description="Revoke an install link: its page answers 410 from now on.")
    async def revoke_install_link(self, info: GInfo, id: strawberry.ID) -> RevokeInstallLinkResult:
        return InstallLink.of(await install_resolvers.revoke_link(info.context, str(id)))
