"""The signed one-click unsubscribe tokens the notifier writes in emails and the API checks."""

import base64

import pytest

from services.runtime.unsubscribe_tokens import make_token, token_matches, token_subscriptions

SECRET = "a-secret-of-thirty-two-characters!"


def test_a_token_names_its_subscriptions_and_checks_against_the_address() -> None:
    token = make_token(SECRET, ["sub_b", "sub_a", "sub_b"], "Achats@Example.fr ")
    assert token_subscriptions(token) == ["sub_a", "sub_b"]
    assert token_matches(SECRET, token, ["sub_b", "sub_a"], "achats@example.fr")
    assert token.isascii() and all(c.isalnum() or c in "-_." for c in token)  # safe in a URL path as is
    assert "achats" not in token and "example" not in base64.urlsafe_b64decode(token.split(".")[0] + "==").decode()


def test_a_token_is_deterministic_so_a_resent_email_carries_the_same_link() -> None:
    assert make_token(SECRET, ["sub_a"], "a@example.fr") == make_token(SECRET, ["sub_a"], "a@example.fr")


def test_a_token_does_not_check_out_for_another_address_secret_or_set_of_subscriptions() -> None:
    token = make_token(SECRET, ["sub_a", "sub_b"], "a@example.fr")
    assert not token_matches(SECRET, token, ["sub_a", "sub_b"], "b@example.fr")
    assert not token_matches("another-secret-of-32-characters!!", token, ["sub_a", "sub_b"], "a@example.fr")
    assert not token_matches(SECRET, token, ["sub_a"], "a@example.fr")
    assert not token_matches(SECRET, token, ["sub_a", "sub_b", "sub_c"], "a@example.fr")


def test_a_tampered_token_is_refused() -> None:
    token = make_token(SECRET, ["sub_a"], "a@example.fr")
    ids, mac = token.split(".")
    widened = base64.urlsafe_b64encode(b"sub_a,sub_z").rstrip(b"=").decode() + "." + mac
    assert token_subscriptions(widened) == ["sub_a", "sub_z"]  # readable, but it does not check out
    assert not token_matches(SECRET, widened, ["sub_a", "sub_z"], "a@example.fr")
    flipped = ids + "." + ("B" if mac[0] == "A" else "A") + mac[1:]
    assert not token_matches(SECRET, flipped, ["sub_a"], "a@example.fr")


@pytest.mark.parametrize(
    "token",
    ["", "nodot", "a.b.c", "!!!.AAAA", "c3ViX2E.short", "c3ViX2E." + "A" * 500, "PHNjcmlwdD4." + "A" * 43],
)
def test_what_is_not_a_token_is_told_apart(token: str) -> None:
    assert token_subscriptions(token) is None
    assert not token_matches(SECRET, token, ["sub_a"], "a@example.fr")


def test_unsorted_or_repeated_ids_in_a_forged_token_are_not_a_token() -> None:
    mac = make_token(SECRET, ["sub_a", "sub_b"], "a@example.fr").split(".")[1]
    unsorted = base64.urlsafe_b64encode(b"sub_b,sub_a").rstrip(b"=").decode()
    assert token_subscriptions(f"{unsorted}.{mac}") is None


def test_ids_that_cannot_go_into_a_token_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one subscription id"):
        make_token(SECRET, [], "a@example.fr")
    with pytest.raises(ValueError, match="cannot go into a token"):
        make_token(SECRET, ["sub,1"], "a@example.fr")
    with pytest.raises(ValueError, match="at most 20 subscriptions"):
        make_token(SECRET, [f"sub_{n}" for n in range(21)], "a@example.fr")
