from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas.alert import Criterion, Match, MatchedSubscription, MatchReason
from schemas.notice import NoticeKind
from schemas.subscription import EmailFrequency
from services.notifier.changes import Change, ChangedField
from services.notifier.email.render import EmailView, digest_view, render

MatchFactory = Callable[..., Match]
RECIPIENT = "achats@example.fr"
BASE_URL = "https://tenderwatch.example"
PERIOD_START = datetime(2024, 1, 23, 6, 0, tzinfo=UTC)  # 07:00 in Paris
PERIOD_END = datetime(2024, 1, 24, 6, 0, tzinfo=UTC)


def _notice(make_match: MatchFactory, number: int, deadline: datetime | None, **changes: Any) -> Match:
    fields: dict[str, Any] = {
        "notice_id": f"boamp:24-{number:05d}",
        "title": f"Marché numéro {number}",
        "source_url": f"https://www.boamp.fr/avis/detail/24-{number:05d}",
        "deadline": deadline,
    }
    return make_match(**{**fields, **changes})


def _digest(matches: list[Match], *, language: str = "fr", cap: int = 50, **kwargs: Any) -> EmailView:
    options: dict[str, Any] = {
        "language": language,
        "recipient_email": RECIPIENT,
        "base_url": BASE_URL,
        "frequency": EmailFrequency.DAILY,
        "period_start": PERIOD_START,
        "period_end": PERIOD_END,
        "timezone": "Europe/Paris",
        "cap": cap,
        "unsubscribe_url": "https://tenderwatch.example/v1/unsubscribe/tok",
    }
    return digest_view(matches, **{**options, **kwargs})


def test_a_digest_lists_its_notices_by_deadline_and_those_without_one_last(make_match: MatchFactory) -> None:
    late = _notice(make_match, 3, datetime(2024, 3, 1, 11, 0, tzinfo=UTC))
    none = _notice(make_match, 1, None, kind=NoticeKind.PLANNING)
    soon = _notice(make_match, 2, datetime(2024, 2, 1, 11, 0, tzinfo=UTC))
    rendered = render(_digest([late, none, soon]))
    assert rendered.subject == "[tenderwatch] Sélection du jour — 3 avis (24 janvier 2024)"
    text = rendered.text
    assert text.startswith(
        "Sélection du jour — 3 avis\n"
        "Avis correspondant à vos alertes entre le mardi 23 janvier 2024 à 7 h 00 et le mercredi 24 janvier 2024 à "
        "7 h 00, par date limite.\n"
        "\n"
        "1. [Appel d'offres] Marché numéro 2\n"
        "   Type d'avis\u00a0: Appel d'offres\n"
    )
    assert text.index("1. [Appel d'offres] Marché numéro 2") < text.index("2. [Appel d'offres] Marché numéro 3")
    assert text.index("2. [Appel d'offres] Marché numéro 3") < text.index("3. [Programmation] Marché numéro 1")
    assert "   Voir l'avis\u00a0: https://www.boamp.fr/avis/detail/24-00002\n" in text
    assert (
        "   Correspond à\u00a0:\n   * Collecte des déchets — Gard\n     - CPV 90500000 (avis\u00a0: 90511100)\n"
    ) in text
    assert text.endswith(
        "-- \n"
        "Cet e-mail a été envoyé à achats@example.fr par tenderwatch.\n"
        "Se désabonner de ces alertes\u00a0: https://tenderwatch.example/v1/unsubscribe/tok\n"
    )
    html = rendered.html
    assert html.index(">Marché numéro 2</a>") < html.index(">Marché numéro 3</a>") < html.index(">Marché numéro 1</a>")
    assert "<h1 " in html and "Sélection du jour — 3 avis</h1>" in html
    assert '<a href="https://www.boamp.fr/avis/detail/24-00002"' in html
    assert "<strong>Collecte des déchets — Gard</strong> (CPV 90500000 (avis\u00a0: 90511100); Département" in html


def test_a_weekly_digest_in_english_counts_in_the_subscribers_time_zone(make_match: MatchFactory) -> None:
    one = _notice(make_match, 1, datetime(2024, 2, 1, 11, 0, tzinfo=UTC))
    rendered = render(
        _digest(
            [one],
            language="en",
            frequency=EmailFrequency.WEEKLY,
            period_start=datetime(2024, 1, 15, 10, 0, tzinfo=UTC),
            period_end=datetime(2024, 1, 22, 10, 0, tzinfo=UTC),
            timezone="America/Cayenne",
        )
    )
    assert rendered.subject == "[tenderwatch] Weekly digest — 1 notice (22 January 2024)"
    assert rendered.text.startswith(
        "Weekly digest — 1 notice\n"
        "Notices matching your alerts between Monday 15 January 2024 at 07:00 and Monday 22 January 2024 at 07:00, "
        "by deadline.\n"
        "\n"
        "1. [Call for tenders] Marché numéro 1\n"
    )
    assert "   Matches:\n" in rendered.text
    assert '<html lang="en">' in rendered.html


def test_past_the_cap_notices_are_links_then_only_counted(make_match: MatchFactory) -> None:
    start = datetime(2024, 2, 1, 11, 0, tzinfo=UTC)
    matches = [_notice(make_match, n, start + timedelta(days=n)) for n in range(1, 12)]
    view = _digest(matches, cap=2)  # 2 in full, then 2 x 4 as links, then counted
    assert [n.title for n in view.notices] == ["Marché numéro 1", "Marché numéro 2"]
    assert [n.title for n in view.more] == [f"Marché numéro {n}" for n in range(3, 11)]
    assert view.not_listed == 1
    rendered = render(view)
    assert rendered.subject == "[tenderwatch] Sélection du jour — 11 avis (24 janvier 2024)"
    assert (
        "Et 8 autres avis\u00a0:\n"
        "- Marché numéro 3 — Communauté de Communes du Piémont Cévenol, dimanche 4 février 2024 à 12 h 00\n"
        "  https://www.boamp.fr/avis/detail/24-00003\n"
    ) in rendered.text
    assert "\n1 autre avis n'est pas listé ici. Affinez les critères de vos alertes pour en recevoir moins.\n" in (
        rendered.text
    )
    assert '<li><a href="https://www.boamp.fr/avis/detail/24-00010" style="color:#0b57d0;">Marché numéro 10</a>' in (
        rendered.html
    )
    assert "Marché numéro 11" not in rendered.text
    assert "Marché numéro 11" not in rendered.html


def test_a_capped_digest_links_to_every_notice_when_a_page_lists_them(make_match: MatchFactory) -> None:
    matches = [_notice(make_match, n, None) for n in range(1, 4)]
    rendered = render(_digest(matches, cap=1, more_url="https://tenderwatch.example/digests/g_1"))
    assert "Voir tous les avis\u00a0:\nhttps://tenderwatch.example/digests/g_1\n" in rendered.text
    assert '<a href="https://tenderwatch.example/digests/g_1"' in rendered.html


def test_digest_escapes_notice_text_in_html(make_match: MatchFactory) -> None:
    hostile = _notice(
        make_match,
        1,
        None,
        title="<script>alert(1)</script>",
        buyer_name="<b>Mairie</b>",
        description="<img src=x onerror=alert(1)>",
    )
    overflow = _notice(make_match, 2, None, title="<b>second</b>")
    rendered = render(_digest([hostile, overflow], cap=1))
    assert "<script" not in rendered.html
    assert "<b>" not in rendered.html
    assert "<img" not in rendered.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;</a>" in rendered.html
    assert "&lt;b&gt;second&lt;/b&gt;</a>" in rendered.html
    assert "1. [Appel d'offres] <script>alert(1)</script>\n" in rendered.text  # plain text keeps it as published


def test_a_digest_shows_what_changed_in_an_updated_notice(make_match: MatchFactory) -> None:
    updated, plain = _notice(make_match, 1, None), _notice(make_match, 2, None)
    change = Change(ChangedField.DEADLINE, "2024-03-01T11:00:00+00:00", "2024-03-15T11:00:00+00:00")
    rendered = render(_digest([updated, plain], updates={updated.match_id: ([change], False)}))
    assert "1. [Mise à jour] Marché numéro 1\n" in rendered.text
    assert (
        "   - Date limite de réponse\u00a0: vendredi 1er mars 2024 à 12 h 00 → vendredi 15 mars 2024 à 12 h 00\n"
        in (rendered.text)
    )
    assert "[Mise à jour] Marché numéro 2" not in rendered.text
    assert ">Ce qui a changé</th>" in rendered.html


def test_a_digest_shows_only_the_subscriptions_emailing_its_address(make_match: MatchFactory) -> None:
    reason = [MatchReason(criterion=Criterion.REGION, values=["76"], notice_values=["76"])]
    subscriptions = [
        MatchedSubscription(subscription_id="s1", name="Mine", reasons=reason, email=RECIPIENT),
        MatchedSubscription(subscription_id="s2", name="Someone else's", reasons=reason, email="autre@example.fr"),
    ]
    rendered = render(_digest([_notice(make_match, 1, None, subscriptions=subscriptions)]))
    assert "Mine" in rendered.text
    assert "Someone else" not in rendered.text


def test_nothing_to_send_is_no_email() -> None:
    with pytest.raises(ValueError, match="nothing to send means no email"):
        EmailView("fr", RECIPIENT, ())
