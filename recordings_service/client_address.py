"""The client's address: the peer's, or, when the peer is a configured trusted proxy, the
one its X-Forwarded-For names. Audit entries record it and sign-in limits count by it."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from aiohttp import web

from recordings_service.config import IPNetwork


def _trusted(address: str | None, proxies: tuple[IPNetwork, ...]) -> bool:
    if not address or not proxies:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in proxies)


def scheme(request: web.Request) -> str:
    """The scheme the browser used: behind a TLS-terminating proxy the request arrives as
    plain HTTP, and the proxy's X-Forwarded-Proto says https. Believed from anyone: a
    forged "https" only makes cookies stricter and same-origin checks refuse more."""
    forwarded = request.headers.get("X-Forwarded-Proto", "").lower()
    return "https" if request.secure or forwarded == "https" else "http"


def same_origin(origin_header: str | None, request: web.Request) -> bool:
    """Whether a browser's Origin names this site: scheme, host and port."""
    if origin_header is None:
        return False
    sent = urlsplit(origin_header)
    return sent.scheme == scheme(request) and sent.netloc == request.host


def client_address(request: web.Request, proxies: tuple[IPNetwork, ...]) -> str | None:
    """Walks X-Forwarded-For from the right (the hops nearest us, which our proxies
    appended) past trusted proxies; the first other address is the client. A value a
    client put at the left of the header is never reached unless every hop after it is
    ours."""
    peer = request.remote
    if not _trusted(peer, proxies):
        return peer
    hops = [hop.strip() for value in request.headers.getall("X-Forwarded-For", [])
            for hop in value.split(",")]
    for hop in reversed(hops):
        try:
            address = str(ipaddress.ip_address(hop))
        except ValueError:
            return peer  # a malformed hop: trust nothing the header says beyond it
        if not _trusted(address, proxies):
            return address
    return peer
