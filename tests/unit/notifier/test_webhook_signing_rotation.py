"""Signatures during a secret rotation, checked with the Standard Webhooks reference library."""

from __future__ import annotations

import time

import pytest
import standardwebhooks

from services.notifier.webhooks.signing import generate_secret, sign, signed_headers, verify

BODY = b'{"type":"notice.matched"}'


def test_during_the_overlap_both_secrets_verify_with_the_reference_library() -> None:
    old, new = generate_secret(), generate_secret()
    now = int(time.time())
    headers = signed_headers(new, "msg_rotation", now, BODY, previous_secret=old)
    signatures = [sign(new, "msg_rotation", now, BODY), sign(old, "msg_rotation", now, BODY)]
    assert headers["webhook-signature"] == " ".join(signatures)  # the current secret's first
    assert standardwebhooks.Webhook(new).verify(BODY, headers) == {"type": "notice.matched"}
    assert standardwebhooks.Webhook(old).verify(BODY, headers) == {"type": "notice.matched"}
    verify(new, headers, BODY, now=now)
    verify(old, headers, BODY, now=now)
    with pytest.raises(standardwebhooks.WebhookVerificationError, match="No matching signature found"):
        standardwebhooks.Webhook(generate_secret()).verify(BODY, headers)


def test_without_a_previous_secret_only_the_current_one_signs() -> None:
    old, new = generate_secret(), generate_secret()
    headers = signed_headers(new, "msg_rotation", int(time.time()), BODY)
    assert len(headers["webhook-signature"].split(" ")) == 1
    assert standardwebhooks.Webhook(new).verify(BODY, headers) == {"type": "notice.matched"}
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(old).verify(BODY, headers)


def test_a_previous_secret_equal_to_the_current_one_is_not_signed_twice() -> None:
    secret = generate_secret()
    headers = signed_headers(secret, "msg_rotation", int(time.time()), BODY, previous_secret=secret)
    assert len(headers["webhook-signature"].split(" ")) == 1
