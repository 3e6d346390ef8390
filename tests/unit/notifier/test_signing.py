import base64
import hashlib
import hmac

import pytest

from services.notifier.webhooks.signing import SignatureError, generate_secret, sign, signed_headers, verify

# The Standard Webhooks reference test vector (standard-webhooks/standard-webhooks, libraries' tests)
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
BODY = b'{"test": 2432232314}'
EXPECTED = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def _headers(signature: str = EXPECTED, timestamp: int = TIMESTAMP) -> dict[str, str]:
    return {"webhook-id": MSG_ID, "webhook-timestamp": str(timestamp), "webhook-signature": signature}


def test_reference_vector() -> None:
    assert sign(SECRET, MSG_ID, TIMESTAMP, BODY) == EXPECTED


def test_reference_vector_computed_independently() -> None:
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    digest = hmac.new(key, f"{MSG_ID}.{TIMESTAMP}.".encode() + BODY, hashlib.sha256).digest()
    assert "v1," + base64.b64encode(digest).decode() == EXPECTED


def test_generated_secret_is_whsec_and_24_random_bytes() -> None:
    secret = generate_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 24
    assert generate_secret() != secret
    verify(secret, signed_headers(secret, MSG_ID, TIMESTAMP, BODY), BODY, now=TIMESTAMP)


def test_signed_headers() -> None:
    assert signed_headers(SECRET, MSG_ID, TIMESTAMP, BODY) == {
        "webhook-id": MSG_ID,
        "webhook-timestamp": "1614265330",
        "webhook-signature": EXPECTED,
        "content-type": "application/json",
    }


def test_verify_accepts_the_vector_within_tolerance() -> None:
    verify(SECRET, _headers(), BODY, now=TIMESTAMP)
    verify(SECRET, _headers(), BODY, now=TIMESTAMP + 300)
    verify(SECRET, _headers(), BODY, now=TIMESTAMP - 300)


def test_verify_reads_header_names_in_any_case() -> None:
    headers = {"Webhook-Id": MSG_ID, "WEBHOOK-TIMESTAMP": str(TIMESTAMP), "Webhook-Signature": EXPECTED}
    verify(SECRET, headers, BODY, now=TIMESTAMP)


def test_verify_accepts_any_of_several_signatures_during_rotation() -> None:
    old = sign(generate_secret(), MSG_ID, TIMESTAMP, BODY)
    verify(SECRET, _headers(f"{old} v1a,c29tZXRoaW5n {EXPECTED}"), BODY, now=TIMESTAMP)


@pytest.mark.parametrize(
    ("secret", "headers", "body", "now", "message"),
    [
        (SECRET, _headers(), b'{"test": 2432232315}', TIMESTAMP, "no v1 signature matches"),
        (generate_secret(), _headers(), BODY, TIMESTAMP, "no v1 signature matches"),
        (SECRET, _headers("v2," + EXPECTED[3:]), BODY, TIMESTAMP, "no v1 signature matches"),
        (SECRET, _headers(EXPECTED[:-2] + "A="), BODY, TIMESTAMP, "no v1 signature matches"),
        (SECRET, _headers(), BODY, TIMESTAMP + 301, "is 301 s old"),
        (SECRET, _headers(), BODY, TIMESTAMP - 301, "is 301 s in the future"),
        (SECRET, _headers(timestamp=TIMESTAMP + 1), BODY, TIMESTAMP, "no v1 signature matches"),
        (SECRET, {**_headers(), "webhook-timestamp": "yesterday"}, BODY, TIMESTAMP, "is not a Unix time"),
        (SECRET, {"webhook-id": MSG_ID, "webhook-timestamp": str(TIMESTAMP)}, BODY, TIMESTAMP, "webhook-signature"),
        (SECRET, {"webhook-signature": EXPECTED}, BODY, TIMESTAMP, "missing header(s) webhook-id, webhook-timestamp"),
        (SECRET, {**_headers(), "webhook-id": ""}, BODY, TIMESTAMP, "missing header(s) webhook-id"),
    ],
    ids=[
        "tampered-body",
        "wrong-secret",
        "unknown-version",
        "altered-signature",
        "too-old",
        "too-new",
        "tampered-timestamp",
        "bad-timestamp",
        "no-signature",
        "no-id-no-timestamp",
        "empty-id",
    ],
)
def test_verify_rejects(secret: str, headers: dict[str, str], body: bytes, now: int, message: str) -> None:
    with pytest.raises(SignatureError) as error:
        verify(secret, headers, body, now=now)
    assert message in str(error.value)


def test_verify_with_custom_tolerance() -> None:
    with pytest.raises(SignatureError, match="is 61 s old"):
        verify(SECRET, _headers(), BODY, now=TIMESTAMP + 61, tolerance=60)


@pytest.mark.parametrize("secret", ["whsec_not base64!", "whsec_"])
def test_malformed_secret_is_explained(secret: str) -> None:
    with pytest.raises(ValueError, match=r"whsec_|empty"):
        sign(secret, MSG_ID, TIMESTAMP, BODY)
