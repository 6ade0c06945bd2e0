"""Roamify: the wire client (`client.py`, `models.py`) and its provider-neutral gateway."""

from esim_gateway.providers.roamify.client import RoamifyClient, parse_roamify_error
from esim_gateway.providers.roamify.gateway import ROAMIFY_CAPABILITIES, RoamifyGateway

__all__ = ["ROAMIFY_CAPABILITIES", "RoamifyClient", "RoamifyGateway", "parse_roamify_error"]
