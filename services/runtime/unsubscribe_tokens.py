"""Signed one-click unsubscribe tokens: the notifier makes them, the API checks them. No I/O.

A token names the subscriptions an email was sent for and is signed, with UNSUBSCRIBE_SECRET, over those ids and
the address the email went to: `<base64url of the ids>.<base64url of HMAC-SHA256>`, URL-safe and without padding.
The address is not in the token (links end up in logs and browser histories); the API reads it from the
subscriptions, so a token stops working for a subscription whose address has changed since.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Sequence

_SEPARATOR = "."
_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
MAX_SUBSCRIPTIONS = 20  # per token: keeps the List-Unsubscribe header well under SMTP's 998-character lines
_MAC_BYTES = 32
_MAX_TOKEN_CHARS = 8000


def make_token(secret: str, subscription_ids: Sequence[str], email: str) -> str:
    """The token that unsubscribes `email` from `subscription_ids` (order and repeats do not matter)."""
    ids = _canonical_ids(subscription_ids)
    if not ids:
        raise ValueError("an unsubscribe token needs at least one subscription id")
    for subscription_id in ids:
        if not _ID.match(subscription_id):
            raise ValueError(f"subscription id {subscription_id!r} cannot go into a token: letters, digits, _ and -")
    if len(ids) > MAX_SUBSCRIPTIONS:
        raise ValueError(f"an unsubscribe token names at most {MAX_SUBSCRIPTIONS} subscriptions, not {len(ids)}")
    payload = _b64encode(",".join(ids).encode())
    return f"{payload}{_SEPARATOR}{_b64encode(_mac(secret, ids, email))}"


def token_subscriptions(token: str) -> list[str] | None:
    """The subscription ids a well-formed token names, unchecked; None when it is not a token at all."""
    parts = _split(token)
    return None if parts is None else parts[0]


def token_matches(secret: str, token: str, subscription_ids: Sequence[str], email: str) -> bool:
    """Whether `token` was made with `secret` for exactly these subscriptions and this address."""
    parts = _split(token)
    if parts is None:
        return False
    ids, signature = parts
    if ids != _canonical_ids(subscription_ids):
        return False
    return hmac.compare_digest(signature, _mac(secret, ids, email))


def _canonical_ids(subscription_ids: Sequence[str]) -> list[str]:
    return sorted(set(subscription_ids))


def _mac(secret: str, ids: Sequence[str], email: str) -> bytes:
    message = "\x1f".join([*ids, "", email.strip().lower()]).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


def _split(token: str) -> tuple[list[str], bytes] | None:
    if len(token) > _MAX_TOKEN_CHARS or token.count(_SEPARATOR) != 1:
        return None
    encoded_ids, encoded_mac = token.split(_SEPARATOR)
    try:
        ids = _b64decode(encoded_ids).decode("ascii").split(",")
        signature = _b64decode(encoded_mac)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if len(signature) != _MAC_BYTES or not all(_ID.match(i) for i in ids) or ids != _canonical_ids(ids):
        return None
    return ids, signature


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
