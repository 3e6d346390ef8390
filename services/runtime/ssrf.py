"""The pure half of the SSRF guard: is a webhook URL, or an address it resolved to, safe to call?

Subscribers choose webhook URLs, so a URL must never make the notifier reach the platform's own network
(databases, cloud metadata at 169.254.169.254, admin ports). `check_webhook_url` rejects what can be judged from
the URL alone; the sender then resolves the host and applies `is_public_address` to every address it gets, and
never follows redirects. (The connection resolves the name again: pinning the checked address against DNS
rebinding is left to the sender's transport.)

Production runs with `allow_private=False`: https only, public addresses only. `allow_private=True` is for local
development and tests (a receiver on localhost): it admits plain http and private or loopback addresses.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import unquote, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_MAX_URL_CHARS = 2048

# Shorthand IPv4 forms that resolvers (inet_aton) accept but that are no host name: 2130706433, 0x7f.1, 127.1,
# 0177.0.0.1. A DNS name never ends with an all-numeric label, so these are refused outright.
_NUMERIC_HOST = re.compile(r"^(?:0x[0-9a-f]*|\d+)(?:\.(?:0x[0-9a-f]*|\d+)){0,3}\.?$", re.IGNORECASE)

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


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
