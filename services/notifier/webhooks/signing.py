"""Standard Webhooks signatures (https://www.standardwebhooks.com/): symmetric `v1` HMAC-SHA256.

The signed content is `{webhook-id}.{webhook-timestamp}.{body}`; the key is the base64-decoded part of the
`whsec_…` secret; the `webhook-signature` header holds space-separated `v1,<base64>` signatures so a receiver
keeps working while a secret is being rotated.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Mapping

SECRET_PREFIX = "whsec_"  # noqa: S105 - the marker of a secret, not one
_SECRET_BYTES = 24
_VERSION = "v1"

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"


class SignatureError(Exception):
    """A webhook request whose signature headers do not prove it came from us, now."""


def generate_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(_SECRET_BYTES)).decode("ascii")


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value for one message: `v1,<base64 HMAC-SHA256>`."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), content, hashlib.sha256).digest()
    return f"{_VERSION},{base64.b64encode(digest).decode('ascii')}"


def signed_headers(
    secret: str, msg_id: str, timestamp: int, body: bytes, *, previous_secret: str | None = None
) -> dict[str, str]:
    """The Standard Webhooks headers; during a rotation's overlap, `previous_secret` signs too.

    The current secret's signature comes first, the previous one's after a space: a receiver that still has the
    old secret, and one that already has the new one, both find a signature they can check.
    """
    signatures = [sign(secret, msg_id, timestamp, body)]
    if previous_secret is not None and previous_secret != secret:
        signatures.append(sign(previous_secret, msg_id, timestamp, body))
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: " ".join(signatures),
        "content-type": "application/json",
    }


def verify(secret: str, headers: Mapping[str, str], body: bytes, *, now: int, tolerance: int = 300) -> None:
    """Raise `SignatureError` unless one `v1` signature matches and the timestamp is within `tolerance` seconds
    of `now` (either way: a timestamp from the future is as suspect as a replayed old one)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    missing = [h for h in (ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER) if not lowered.get(h)]
    if missing:
        raise SignatureError(f"missing header(s) {', '.join(missing)}: the request was not sent as a signed webhook")
    raw_timestamp = lowered[TIMESTAMP_HEADER].strip()
    try:
        timestamp = int(raw_timestamp)
    except ValueError:
        raise SignatureError(f"{TIMESTAMP_HEADER} {raw_timestamp!r} is not a Unix time in seconds") from None
    if now - timestamp > tolerance:
        raise SignatureError(
            f"{TIMESTAMP_HEADER} {timestamp} is {now - timestamp} s old (tolerance {tolerance} s): replayed or delayed"
        )
    if timestamp - now > tolerance:
        raise SignatureError(
            f"{TIMESTAMP_HEADER} {timestamp} is {timestamp - now} s in the future (tolerance {tolerance} s): "
            "check the sender's and receiver's clocks"
        )
    expected = sign(secret, lowered[ID_HEADER], timestamp, body).encode()
    for candidate in lowered[SIGNATURE_HEADER].split():
        # Other versions (e.g. asymmetric `v1a`) are skipped, not rejected, as the spec asks.
        if candidate.startswith(f"{_VERSION},") and hmac.compare_digest(candidate.encode(), expected):
            return
    raise SignatureError("no v1 signature matches the body: wrong secret, or the body was changed in transit")


def _key(secret: str) -> bytes:
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("webhook secret must be 'whsec_' followed by base64, as made by generate_secret()") from None
    if not key:
        raise ValueError("webhook secret is empty: use generate_secret() to make one")
    return key
