"""SimplifyTrip: the wire client and its provider-neutral gateway."""

from esim_gateway.providers.simplifytrip.client import (
    SimplifyTripClient,
    parse_simplifytrip_error,
)
from esim_gateway.providers.simplifytrip.gateway import (
    SIMPLIFYTRIP_CAPABILITIES,
    SimplifyTripGateway,
)

__all__ = [
    "SIMPLIFYTRIP_CAPABILITIES",
    "SimplifyTripClient",
    "SimplifyTripGateway",
    "parse_simplifytrip_error",
]
