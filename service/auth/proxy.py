"""Proxy trust, decided in one place: only a request whose TCP peer is in NEMAWASHI_TRUSTED_PROXIES has its
X-Forwarded-For believed (for rate limits and logs) and may name its asker through the SSO header.

uvicorn's own proxy handling is switched off (`serve` runs it with proxy_headers=False): by default it trusts
X-Forwarded-For from loopback, so any local client could pose as another address or person.
"""

from __future__ import annotations

import ipaddress

from starlette.types import ASGIApp, Receive, Scope, Send

VIA_TRUSTED_PROXY = "nemawashi.via_trusted_proxy"  # scope key: True when the peer is a configured proxy


def is_trusted(peer: str, proxies: list[str]) -> bool:
    """True when the address is one of the proxies (addresses or CIDR ranges)."""
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    for proxy in proxies:
        try:
            if address in ipaddress.ip_network(proxy.strip(), strict=False):
                return True
        except ValueError:
            continue
    return False


def came_through_trusted_proxy(scope: Scope, proxies: list[str]) -> bool:
    """What the middleware decided for this request (or, without it, whether the peer itself is a proxy)."""
    if VIA_TRUSTED_PROXY in scope:
        return bool(scope[VIA_TRUSTED_PROXY])
    client = scope.get("client")
    return client is not None and is_trusted(str(client[0]), proxies)


def forwarded_client(header: str, proxies: list[str]) -> str | None:
    """The nearest address in X-Forwarded-For that is not one of our proxies (the right-most untrusted hop)."""
    hops = [hop.strip() for hop in header.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop, proxies):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return None
    return None


class TrustedProxyMiddleware:
    """Marks each request as coming through a trusted proxy or not, and only then takes the client address
    from X-Forwarded-For; every later part (rate limit, asker identity) reads that decision."""

    def __init__(self, app: ASGIApp, *, proxies: list[str]) -> None:
        self.app = app
        self.proxies = proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            client = scope.get("client")
            trusted = client is not None and is_trusted(str(client[0]), self.proxies)
            scope[VIA_TRUSTED_PROXY] = trusted
            if trusted:
                header = dict(scope.get("headers") or []).get(b"x-forwarded-for", b"").decode("latin-1")
                if address := forwarded_client(header, self.proxies):
                    scope["client"] = (address, 0)
        await self.app(scope, receive, send)
