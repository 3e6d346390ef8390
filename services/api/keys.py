"""API keys and webhook secrets: generation and verification, no I/O."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

_KEY_PREFIX = "tw_"


@dataclass(frozen=True)
class IssuedKey:
    key_id: str
    key_hash: str
    api_key: str  # shown once to its owner, never stored


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(10)}"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_api_key() -> IssuedKey:
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return IssuedKey(key_id=key_id, key_hash=hash_secret(secret), api_key=f"{_KEY_PREFIX}{key_id}_{secret}")


def split_api_key(api_key: str) -> tuple[str, str] | None:
    """('key id', 'secret') of a well-formed key, else None."""
    if not api_key.startswith(_KEY_PREFIX):
        return None
    key_id, sep, secret = api_key[len(_KEY_PREFIX) :].partition("_")
    if not sep or len(key_id) != 16 or not secret:
        return None
    return key_id, secret


def secret_matches(secret: str, key_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), key_hash)


def tokens_equal(given: str, expected: str) -> bool:
    """Constant-time comparison of two secrets."""
    return hmac.compare_digest(given.encode(), expected.encode())


def new_webhook_secret() -> str:
    """A Standard Webhooks secret: 'whsec_' and the base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
