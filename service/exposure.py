"""Who can reach the server, and whether it may start that way: fail closed.

The server runs code that clients post (``/agents/validate``, ``/agents/coverage``,
``/agents/review``, ``/agents/refine``, ``/agent`` with ``user_tests``). Bound to a
loopback address only this machine reaches it; bound to any other address (``0.0.0.0``
and ``::`` included) anyone on the network does, so it must demand an API key — or be
started with ``--insecure``, which accepts the risk by name and says so in ``/health``.

Kept free of heavy imports: the command line checks this before it loads anything.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass

__all__ = ["Exposure", "InsecureServerError", "check_exposure", "is_loopback", "warn_if_insecure"]

logger = logging.getLogger(__name__)

_LOOPBACK_NAMES = frozenset({"localhost", "localhost."})


class InsecureServerError(ValueError):
    """A public address without an API key, and no ``--insecure``; the message says how to fix it."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (127.0.0.0/8, ``::1``, localhost).

    Any other name counts as public: what it resolves to can change, so it fails closed.
    """
    name = host.strip().strip("[]").lower()
    if name in _LOOPBACK_NAMES:
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


@dataclass(frozen=True, kw_only=True)
class Exposure:
    """How the server is exposed, as ``/health`` reports it.

    Attributes:
        host: The address the server listens on.
        auth: What a client needs: ``"api key"``, ``"none (loopback only)"`` or
            ``"none (insecure, public address)"``.
        insecure: True when anyone who can reach the address can run code here.
    """

    host: str
    auth: str
    insecure: bool


def check_exposure(host: str, *, api_key_set: bool, insecure: bool = False) -> Exposure:
    """Return how serving on ``host`` exposes the server; refuse an open public server.

    Raises :class:`InsecureServerError` for a public ``host`` without an API key unless
    ``insecure`` accepts the risk.
    """
    if api_key_set:
        return Exposure(host=host, auth="api key", insecure=False)
    if is_loopback(host):
        return Exposure(host=host, auth="none (loopback only)", insecure=False)
    if insecure:
        return Exposure(host=host, auth="none (insecure, public address)", insecure=True)
    raise InsecureServerError(
        f"refusing to serve on {host!r} without an API key: anyone who can reach that address "
        "could run code on this machine. Set STARCODER_API_KEY (clients then send it as "
        "'X-API-Key'), serve on 127.0.0.1, or pass --insecure to accept the risk."
    )


def warn_if_insecure(exposure: Exposure) -> None:
    """Log a loud warning when ``exposure`` lets anyone who reaches the server run code."""
    if exposure.insecure:
        logger.warning(
            "INSECURE: serving on %s with no API key (--insecure). Anyone who can reach this "
            "address can run code on this machine. Set STARCODER_API_KEY to close it.",
            exposure.host,
        )
