"""The SSRF guard: is a webhook URL, and every address its host resolves to, safe to call?

Subscribers choose webhook URLs, so a URL must never make the notifier reach the platform's own network
(databases, cloud metadata at 169.254.169.254, admin ports). `check_webhook_url` rejects what can be judged from
the URL alone; `resolve_public` resolves the host once and refuses it when any of its addresses is not public.
The sender then connects to one of exactly those addresses (the notifier's webhook transport pins them, so a DNS
answer that changes between the check and the connection changes nothing), and never follows redirects.
`check_webhook_destination` does both for the API when an endpoint is registered.

Production runs with `allow_private=False`: https only, public addresses only. `allow_private=True` is for local
development and tests (a receiver on localhost): it admits plain http and private or loopback addresses.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable
from urllib.parse import unquote, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_MAX_URL_CHARS = 2048

# Shorthand IPv4 forms that resolvers (inet_aton) accept but that are no host name: 2130706433, 0x7f.1, 127.1,
# 0177.0.0.1. A DNS name never ends with an all-numeric label, so these are refused outright.
_NUMERIC_HOST = re.compile(r"^(?:0x[0-9a-f]*|\d+)(?:\.(?:0x[0-9a-f]*|\d+)){0,3}\.?$", re.IGNORECASE)

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# IPv4 special-purpose blocks that older Pythons' `is_global` misses (IANA special-purpose address registry).
_SPECIAL_IPV4 = (
    (ipaddress.IPv4Network("192.0.0.0/24"), "an IETF protocol assignment"),
    (ipaddress.IPv4Network("192.88.99.0/24"), "a 6to4 relay anycast address"),  # deprecated (RFC 7526)
)

# host, port -> the addresses it resolves to, as text (an IPv6 one may carry its %zone)
Resolver = Callable[[str, int], Awaitable[list[str]]]


class UnsafeUrlError(ValueError):
    """A webhook URL the notifier refuses to call."""


def check_webhook_url(url: str, *, allow_private: bool) -> None:
    """Raise `UnsafeUrlError` saying what is wrong with `url`, or return if it may be called."""
    if len(url) > _MAX_URL_CHARS:
        raise UnsafeUrlError(f"webhook URL is {len(url)} characters long: at most {_MAX_URL_CHARS} are accepted")
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise UnsafeUrlError(f"webhook URL {url!r} contains spaces or control characters: percent-encode them")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is what validates it
    except ValueError as error:
        raise UnsafeUrlError(f"webhook URL {url!r} cannot be parsed: {error}") from None
    scheme = parts.scheme.lower()
    allowed_schemes = ("https", "http") if allow_private else ("https",)
    if scheme not in allowed_schemes:
        hint = "" if allow_private or scheme != "http" else " (plain http is accepted only in development)"
        raise UnsafeUrlError(f"webhook URL {url!r} must use https, not {scheme or 'no scheme'!r}{hint}")
    if "@" in parts.netloc:
        raise UnsafeUrlError(
            f"webhook URL {url!r} contains a user name or password: remove it; requests are authenticated by their "
            "signature"
        )
    host = unquote(parts.hostname or "").rstrip(".")
    if not host:
        raise UnsafeUrlError(f"webhook URL {url!r} has no host name")
    address = _ip_literal(host)
    if address is None:
        if _NUMERIC_HOST.match(host):
            raise UnsafeUrlError(
                f"webhook URL host {host!r} is an IPv4 address in shorthand or numeric form: "
                "use a host name or a dotted-decimal address such as 203.0.113.7"
            )
        if not allow_private and (host.lower() == "localhost" or host.lower().endswith(".localhost")):
            raise UnsafeUrlError(f"webhook URL host {host!r} is the local machine: use a public host name")
        return
    reason = _why_not_public(address)
    if reason is not None and not allow_private:
        raise UnsafeUrlError(f"webhook URL host {host} is {reason}: only public addresses may receive webhooks")


async def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's resolver (getaddrinfo), without blocking the event loop."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def resolve_public(
    host: str, port: int, *, allow_private: bool, resolver: Resolver = system_resolver
) -> list[IPAddress]:
    """The addresses `host` resolves to now, in the resolver's order and without repeats: connect to these only.

    Raises `UnsafeUrlError` when any of them is not public (unless `allow_private`): a name that answers with a
    public and a private address is refused, not filtered, since its owner controls which one is used. Raises
    `OSError` when the name does not resolve.
    """
    answers = await resolver(host, port)
    addresses: list[IPAddress] = []
    for answer in answers:
        address = ipaddress.ip_address(answer)
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise OSError(f"{host} resolves to no address")
    if not allow_private:
        for address in addresses:
            reason = _why_not_public(address)
            if reason is not None:
                raise UnsafeUrlError(f"{host} resolves to {address}, {reason}: only public addresses receive webhooks")
    return addresses


async def check_webhook_destination(
    url: str, *, allow_private: bool, resolver: Resolver = system_resolver
) -> list[IPAddress]:
    """`check_webhook_url`, then `resolve_public` on its host (skipped when private targets are allowed).

    Raises `UnsafeUrlError` for a URL or an address that may not be called, `OSError` when the host does not resolve.
    """
    check_webhook_url(url, allow_private=allow_private)
    if allow_private:
        return []
    parts = urlsplit(url)
    host = unquote(parts.hostname or "").rstrip(".")
    return await resolve_public(host, parts.port or 443, allow_private=False, resolver=resolver)


def is_public_address(address: IPAddress) -> bool:
    """True for an address on the public internet; apply it to every address the webhook's host resolves to."""
    return _why_not_public(address) is None


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _why_not_public(address: IPAddress) -> str | None:
    if isinstance(address, ipaddress.IPv6Address):
        # IPv6 forms that carry an IPv4 address reach that IPv4 address: judge it instead.
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            reason = _why_not_public(embedded)
            return None if reason is None else f"an IPv6 form of {embedded}, {reason}"
        if address.scope_id:
            return "a scoped (zone) address"
        if address.is_site_local:
            return "a site-local address"
    else:
        special = next((reason for network, reason in _SPECIAL_IPV4 if address in network), None)
        if special is not None:
            return special
    if address == ipaddress.IPv4Address("169.254.169.254"):
        return "the cloud metadata service"
    checks = (
        (address.is_unspecified, "unspecified"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (address.is_private, "a private address"),
        (address.is_reserved, "a reserved address"),
        (not address.is_global, "not globally reachable"),
    )
    return next((reason for failed, reason in checks if failed), None)
