import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from schemas.alert import Criterion, Match, MatchedSubscription, MatchReason
from schemas.notice import Money, NoticeKind
from services.notifier.email.render import render_alert

MatchFactory = Callable[..., Match]
RECIPIENT = "achats@example.fr"  # as in conftest.default_subscriptions
BASE_URL = "https://tenderwatch.example/"
TITLE = (
    "Prestations de collecte des colonnes de verre et de papier pour la Communauté de Communes du Piémont Cévenol "
    "et transport vers les centres de traitement"
)
BUYER = "Communauté de Communes du Piémont Cévenol"
NOTICE_URL = "https://tenderwatch.example/v1/notices/eforms:a638ab6b-7005-48a9-a9c7-b91bfc6142f1"
TED_URL = "https://ted.europa.eu/en/notice/-/detail/47522-2024"


def test_french_subject_of_the_real_notice_is_shortened_at_a_word(make_match: MatchFactory) -> None:
    rendered = render_alert(make_match(), language="fr", recipient_email=RECIPIENT, base_url=BASE_URL)
    assert rendered.subject == (
        "[tenderwatch] Appel d'offres — Prestations de collecte des colonnes de verre et de papier pour la "
        f"Communauté de… ({BUYER})"
    )
    assert len(rendered.subject) <= 160


def test_short_title_is_kept_whole_and_newlines_never_reach_the_subject(make_match: MatchFactory) -> None:
    match = make_match(title="Nettoyage\r\ndes locaux", buyer_name="Mairie de\nQuissac")
    rendered = render_alert(match, language="fr", recipient_email=RECIPIENT, base_url=BASE_URL)
    assert rendered.subject == "[tenderwatch] Appel d'offres — Nettoyage des locaux (Mairie de Quissac)"


def test_french_text_part_reads_the_real_notice(make_match: MatchFactory) -> None:
    text = render_alert(make_match(), language="fr", recipient_email=RECIPIENT, base_url=BASE_URL).text
    assert text.startswith(f"Appel d'offres — {TITLE}\n")
    assert "Acheteur\u00a0: Communauté de Communes du Piémont Cévenol\n" in text
    assert "Départements\u00a0: 30\n" in text
    assert "Régions\u00a0: 76\n" in text
    assert "Code CPV principal\u00a0: 90511100\n" in text
    # published as 12:00:00+02:00 while Paris is on UTC+1 in February: 10:00 UTC, 11 h 00 in Paris
    assert "Date limite de réponse\u00a0: mercredi 28 février 2024 à 11 h 00\n" in text
    assert "Date de publication\u00a0: 24 janvier 2024\n" in text
    assert "Le présent marché porte sur la collecte des colonnes de verre et de papier" in text
    assert f"\n{TED_URL}\n" in text
    assert f"\n{NOTICE_URL}\n" in text
    assert "Valeur estimée" not in text  # the notice gives no value


def test_estimated_value_is_written_the_french_way(make_match: MatchFactory) -> None:
    match = make_match(estimated_value=Money(amount=Decimal("1250000"), currency="EUR"))
    rendered = render_alert(match, language="fr", recipient_email=RECIPIENT, base_url=BASE_URL)
    assert "Valeur estimée\u00a0: 1\u202f250\u202f000\u00a0€\n" in rendered.text
    assert "<td>1\u202f250\u202f000\u00a0€</td>" in rendered.html


def test_why_lists_only_the_subscriptions_that_email_this_recipient(make_match: MatchFactory) -> None:
    rendered = render_alert(make_match(), language="fr", recipient_email=RECIPIENT, base_url=BASE_URL)
    assert (
        "Pourquoi vous recevez cette alerte\n"
        "Cet avis correspond à vos alertes\u00a0:\n"
        "* Collecte des déchets — Gard\n"
        "  - CPV 90500000 (avis\u00a0: 90511100)\n"
        "  - Département\u00a0: 30 Gard\n"
        "* Services environnementaux en Occitanie\n"
        "  - Région\u00a0: 76 Occitanie\n"
        "  - Mot-clé\u00a0: «\u00a0verre\u00a0» (titre)\n"
    ) in rendered.text
    assert "Veille de l'équipe travaux" not in rendered.text
    assert "<li><strong>Services environnementaux en Occitanie</strong>" in rendered.html
    assert "<li>Mot-clé\u00a0: «\u00a0verre\u00a0» (titre)</li>" in rendered.html
    assert "<li>CPV 90500000 (avis\u00a0: 90511100)</li>" in rendered.html


def test_reasons_are_written_in_the_email_language(make_match: MatchFactory) -> None:
    rendered = render_alert(make_match(), language="en", recipient_email=RECIPIENT, base_url=BASE_URL)
    assert (
        "* Collecte des déchets — Gard\n"
        "  - CPV 90500000 (notice: 90511100)\n"
        "  - Department: 30 Gard\n"
        "* Services environnementaux en Occitanie\n"
        "  - Region: 76 Occitanie\n"
        "  - Keyword: “verre” (title)\n"
    ) in rendered.text
    assert "<li>Keyword: “verre” (title)</li>" in rendered.html


def test_deadline_reason_counts_days_from_the_match(make_match: MatchFactory) -> None:
    deadline = MatchReason(criterion=Criterion.DEADLINE, values=["10"], notice_values=["2024-02-28T12:00:00+01:00"])
    only = [MatchedSubscription(subscription_id="s1", name="Échéances", reasons=[deadline], email=RECIPIENT)]
    rendered = render_alert(make_match(subscriptions=only), language="fr", recipient_email=RECIPIENT, base_url=BASE_URL)
    # matched on 24 January 2024: 35 days before 28 February
    assert "* Échéances\n  - Date limite dans 35 jours (au moins 10)\n" in rendered.text


def test_html_escapes_reason_values_and_text_part_keeps_them_verbatim(make_match: MatchFactory) -> None:
    reasons = [
        MatchReason(criterion=Criterion.KEYWORDS, values=["<b>voirie</b> & co"], notice_values=["title"]),
        MatchReason(
            criterion=Criterion.BUYER, values=["Mairie"], notice_values=['<a href="https://evil.example">x</a>']
        ),
    ]
    only = [MatchedSubscription(subscription_id="s1", name="<i>Voirie</i>", reasons=reasons, email=RECIPIENT)]
    rendered = render_alert(make_match(subscriptions=only), language="fr", recipient_email=RECIPIENT, base_url=BASE_URL)
    assert "<b>" not in rendered.html
    assert "<i>" not in rendered.html
    assert 'evil.example">' not in rendered.html
    assert "<li><strong>&lt;i&gt;Voirie&lt;/i&gt;</strong>" in rendered.html
    assert "<li>Mot-clé\u00a0: «\u00a0&lt;b&gt;voirie&lt;/b&gt; &amp; co\u00a0» (titre)</li>" in rendered.html
    assert (
        "<li>Acheteur\u00a0: Mairie (avis\u00a0: &lt;a href=&#34;https://evil.example&#34;&gt;x&lt;/a&gt;)</li>"
    ) in rendered.html
    assert "* <i>Voirie</i>\n" in rendered.text
    assert "  - Mot-clé\u00a0: «\u00a0<b>voirie</b> & co\u00a0» (titre)\n" in rendered.text
    assert "Veille de l&#39;équipe travaux" not in rendered.html


def test_recipient_without_subscription_is_refused(make_match: MatchFactory) -> None:
    with pytest.raises(ValueError, match=re.escape("no subscription emailing 'nobody@example.fr'")):
        render_alert(make_match(), language="fr", recipient_email="nobody@example.fr", base_url=BASE_URL)


def test_html_escapes_notice_text_and_text_part_keeps_it_verbatim(make_match: MatchFactory) -> None:
    title = "<script>alert('x')</script> Travaux & voirie"
    match = make_match(title=title, description='<img src=x onerror="steal()">')
    rendered = render_alert(match, language="fr", recipient_email=RECIPIENT, base_url=BASE_URL)
    assert "<script>" not in rendered.html
    assert "<img" not in rendered.html
    assert (
        '<h1 style="margin:0 0 16px;font-size:20px;line-height:1.3;">'
        "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; Travaux &amp; voirie</h1>"
    ) in rendered.html
    assert "&lt;img src=x onerror=&#34;steal()&#34;&gt;" in rendered.html
    assert f"Appel d'offres — {title}\n" in rendered.text
    assert '<img src=x onerror="steal()">' in rendered.text
    assert rendered.subject == f"[tenderwatch] Appel d'offres — {title} ({BUYER})"


def test_links_in_html(make_match: MatchFactory) -> None:
    rendered = render_alert(
        make_match(),
        language="fr",
        recipient_email=RECIPIENT,
        base_url=BASE_URL,
        unsubscribe_url="https://tenderwatch.example/v1/unsubscribe/tok123",
    )
    assert f'<a href="{TED_URL}" style="color:#0b57d0;">Voir l&#39;avis sur le site de publication</a>' in rendered.html
    assert f'<a href="{NOTICE_URL}" style="color:#0b57d0;">Voir l&#39;avis sur tenderwatch</a>' in rendered.html
    assert '<a href="https://tenderwatch.example/v1/unsubscribe/tok123"' in rendered.html
    assert "Se désabonner de ces alertes\u00a0: https://tenderwatch.example/v1/unsubscribe/tok123\n" in rendered.text
    assert '<html lang="fr">' in rendered.html


def test_a_non_web_source_url_is_not_linked(make_match: MatchFactory) -> None:
    rendered = render_alert(
        make_match(source_url="javascript:alert(1)"), language="fr", recipient_email=RECIPIENT, base_url=BASE_URL
    )
    assert "javascript:" not in rendered.html
    assert "javascript:" not in rendered.text
    assert "site de publication" not in rendered.text


@pytest.mark.parametrize(
    ("changes", "headline", "note"),
    [
        ({"is_change": True}, "Avis rectificatif", "Cet avis corrige ou complète un avis publié précédemment."),
        ({"cancelled": True, "is_change": True}, "Annulation", "Cet avis annule la procédure."),
    ],
)
def test_changes_and_cancellations_are_announced(
    make_match: MatchFactory, changes: dict[str, bool], headline: str, note: str
) -> None:
    rendered = render_alert(make_match(**changes), language="fr", recipient_email=RECIPIENT, base_url=BASE_URL)
    assert rendered.subject.startswith(f"[tenderwatch] {headline} — Prestations de collecte")
    assert rendered.text.startswith(f"{headline} — {TITLE}\n\n{note}\n")
    assert "Type d'avis\u00a0: Appel d'offres\n" in rendered.text
    assert note in rendered.html


def test_programmation_shows_its_planned_date(make_match: MatchFactory) -> None:
    match = make_match(kind=NoticeKind.PLANNING, deadline=None, planned_date=date(2025, 4, 1))
    rendered = render_alert(match, language="fr", recipient_email=RECIPIENT, base_url=BASE_URL)
    assert rendered.subject.startswith("[tenderwatch] Programmation — ")
    assert "Lancement prévu\u00a0: 1er avril 2025\n" in rendered.text
    assert "Date limite" not in rendered.text


def test_attribution_kind(make_match: MatchFactory) -> None:
    rendered = render_alert(
        make_match(kind=NoticeKind.RESULT), language="fr", recipient_email=RECIPIENT, base_url=BASE_URL
    )
    assert rendered.subject.startswith("[tenderwatch] Attribution — ")


def test_english_email(make_match: MatchFactory) -> None:
    match = make_match(deadline=datetime(2025, 3, 3, 11, 0, tzinfo=UTC))
    rendered = render_alert(match, language="en", recipient_email=RECIPIENT, base_url=BASE_URL)
    assert rendered.subject.startswith("[tenderwatch] Call for tenders — Prestations de collecte")
    assert "Buyer: Communauté de Communes du Piémont Cévenol\n" in rendered.text
    assert "Deadline for tenders: Monday 3 March 2025 at 12:00\n" in rendered.text
    assert "Why you are receiving this alert\nThis notice matches your alerts:\n" in rendered.text
    assert "This email was sent to achats@example.fr by tenderwatch.\n" in rendered.text
    assert '<html lang="en">' in rendered.html


def test_recipient_match_ignores_case(make_match: MatchFactory) -> None:
    cpv = MatchReason(criterion=Criterion.CPV, values=["45000000"], notice_values=["45233140"])
    only = [MatchedSubscription(subscription_id="s1", name="BTP", reasons=[cpv], email="Achats@Example.FR")]
    rendered = render_alert(
        make_match(subscriptions=only), language="fr", recipient_email="achats@example.fr", base_url=BASE_URL
    )
    assert "* BTP\n  - CPV 45000000 (avis\u00a0: 45233140)\n" in rendered.text


def test_unsupported_language_is_refused(make_match: MatchFactory) -> None:
    with pytest.raises(ValueError, match="language 'de' is not supported"):
        render_alert(make_match(), language="de", recipient_email=RECIPIENT, base_url=BASE_URL)  # type: ignore[arg-type]
