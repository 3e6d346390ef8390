import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from schemas.alert import Criterion, Match, MatchedSubscription, MatchReason
from schemas.notice import Money, NoticeKind
from services.notifier.email.render import FieldChange, change_label, render_alert

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
UNSUBSCRIBE_URL = "https://tenderwatch.example/v1/unsubscribe/tok123"


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
    text = render_alert(
        make_match(), language="fr", recipient_email=RECIPIENT, base_url=BASE_URL, unsubscribe_url=UNSUBSCRIBE_URL
    ).text
    # published as 12:00:00+02:00 while Paris is on UTC+1 in February: 10:00 UTC, 11 h 00 in Paris
    assert text == (
        f"Appel d'offres — {TITLE}\n"
        "\n"
        "Type d'avis\u00a0: Appel d'offres\n"
        f"Acheteur\u00a0: {BUYER}\n"
        "Lieu d'exécution\u00a0: Gard (30) — Occitanie\n"
        "Date limite de réponse\u00a0: mercredi 28 février 2024 à 11 h 00\n"
        "Code CPV principal\u00a0: 90511100\n"
        "Date de publication\u00a0: 24 janvier 2024\n"
        "\n"
        "Description\u00a0:\n"
        "Le présent marché porte sur la collecte des colonnes de verre et de papier pour la Communauté de Communes "
        "du Piémont Cévenol et leurs transports vers les centres de traitement.\n"
        "\n"
        "Voir l'avis\u00a0:\n"
        f"{TED_URL}\n"
        "\n"
        "Pourquoi vous recevez cette alerte\n"
        "Cet avis correspond à vos alertes\u00a0:\n"
        "* Collecte des déchets — Gard\n"
        "  - CPV 90500000 (avis\u00a0: 90511100)\n"
        "  - Département\u00a0: 30 Gard\n"
        "* Services environnementaux en Occitanie\n"
        "  - Région\u00a0: 76 Occitanie\n"
        "  - Mot-clé\u00a0: «\u00a0verre\u00a0» (titre)\n"
        "\n"
        "-- \n"
        "Cet e-mail a été envoyé à achats@example.fr par tenderwatch.\n"
        f"Se désabonner de ces alertes\u00a0: {UNSUBSCRIBE_URL}\n"
    )


def test_french_html_part_shows_the_same_facts(make_match: MatchFactory) -> None:
    html = render_alert(
        make_match(), language="fr", recipient_email=RECIPIENT, base_url=BASE_URL, unsubscribe_url=UNSUBSCRIBE_URL
    ).html
    assert '<html lang="fr">' in html
    assert "Appel d&#39;offres</span>" in html  # the kind badge
    assert f">{TITLE}</h1>" in html
    assert f">{BUYER}</td>" in html
    assert ">Gard (30) — Occitanie</td>" in html
    assert "<strong>mercredi 28 février 2024 à 11 h 00</strong>" in html
    assert f'<a href="{TED_URL}"' in html
    assert ">Voir l&#39;avis</a>" in html
    assert "<li>Département\u00a0: 30 Gard</li>" in html
    assert f'<a href="{UNSUBSCRIBE_URL}"' in html
    assert "<style" not in html  # every style is inline: mail clients drop style blocks
    assert "<link" not in html


def test_without_a_source_address_the_notice_links_to_the_api(make_match: MatchFactory) -> None:
    rendered = render_alert(make_match(source_url=None), language="fr", recipient_email=RECIPIENT, base_url=BASE_URL)
    assert f"Voir l'avis\u00a0:\n{NOTICE_URL}\n" in rendered.text
    assert f'<a href="{NOTICE_URL}"' in rendered.html


def test_estimated_value_is_written_the_french_way(make_match: MatchFactory) -> None:
    match = make_match(estimated_value=Money(amount=Decimal("1250000"), currency="EUR"))
    rendered = render_alert(match, language="fr", recipient_email=RECIPIENT, base_url=BASE_URL)
    assert "Valeur estimée\u00a0: 1\u202f250\u202f000\u00a0€\n" in rendered.text
    assert ">1\u202f250\u202f000\u00a0€</td>" in rendered.html


def test_without_value_nor_place_those_lines_are_left_out(make_match: MatchFactory) -> None:
    match = make_match(departments=[], regions=[], countries=[])
    rendered = render_alert(match, language="fr", recipient_email=RECIPIENT, base_url=BASE_URL)
    assert "Valeur estimée" not in rendered.text
    assert "Lieu d'exécution" not in rendered.text
    assert "Lieu d&#39;exécution" not in rendered.html


def test_place_names_departments_then_regions_and_falls_back_to_countries(make_match: MatchFactory) -> None:
    several = make_match(departments=["34", "2A", "973"], regions=["76", "94", "03"])
    text = render_alert(several, language="en", recipient_email=RECIPIENT, base_url=BASE_URL).text
    assert "Place of performance: Hérault (34), Corse-du-Sud (2A), Guyane (973) — Occitanie, Corse, Guyane\n" in text
    abroad = make_match(departments=[], regions=[], countries=["PL", "DE"])
    text = render_alert(abroad, language="en", recipient_email=RECIPIENT, base_url=BASE_URL).text
    assert "Place of performance: PL, DE\n" in text


def test_why_lists_only_the_subscriptions_that_email_this_recipient(make_match: MatchFactory) -> None:
    rendered = render_alert(make_match(), language="fr", recipient_email=RECIPIENT, base_url=BASE_URL)
    assert "Veille de l'équipe travaux" not in rendered.text
    assert "Veille de l&#39;équipe travaux" not in rendered.html
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


@pytest.mark.parametrize("language", ["fr", "en"])
def test_markup_in_notice_text_never_reaches_the_html(make_match: MatchFactory, language: str) -> None:
    match = make_match(
        title="<script>alert(1)</script> Travaux & <b>voirie</b>",
        buyer_name="<b>Mairie</b> <img src=x onerror=steal()>",
        description='<img src=x onerror="steal()"><b>gras</b>',
        departments=["<b>30</b>"],
    )
    rendered = render_alert(match, language=language, recipient_email=RECIPIENT, base_url=BASE_URL)  # type: ignore[arg-type]
    for raw in ("<script", "<b>", "<img", 'onerror="', "</b>"):
        assert raw not in rendered.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Travaux &amp; &lt;b&gt;voirie&lt;/b&gt;</h1>" in rendered.html
    assert "&lt;img src=x onerror=&#34;steal()&#34;&gt;&lt;b&gt;gras&lt;/b&gt;" in rendered.html
    assert "&lt;b&gt;30&lt;/b&gt;" in rendered.html
    # the plain-text part is not HTML: it keeps the text as published
    assert "<script>alert(1)</script> Travaux & <b>voirie</b>\n" in rendered.text
    assert '<img src=x onerror="steal()"><b>gras</b>\n' in rendered.text


def test_recipient_without_subscription_is_refused(make_match: MatchFactory) -> None:
    with pytest.raises(ValueError, match=re.escape("no subscription emailing 'nobody@example.fr'")):
        render_alert(make_match(), language="fr", recipient_email="nobody@example.fr", base_url=BASE_URL)


@pytest.mark.parametrize("url", ["javascript:alert(1)", "data:text/html,<b>x</b>", "  JAVASCRIPT:alert(1)"])
def test_a_non_web_source_url_is_not_linked(make_match: MatchFactory, url: str) -> None:
    rendered = render_alert(make_match(source_url=url), language="fr", recipient_email=RECIPIENT, base_url=BASE_URL)
    assert url.strip().lower()[:10] not in rendered.html.lower()
    assert url.strip() not in rendered.text
    assert f"Voir l'avis\u00a0:\n{NOTICE_URL}\n" in rendered.text


@pytest.mark.parametrize(
    ("changes", "headline", "note"),
    [
        ({"is_change": True}, "Avis rectificatif", "Cet avis corrige ou complète un avis publié précédemment."),
        ({"cancelled": True, "is_change": True}, "Annulation", "Cet avis annule la procédure."),
    ],
)
def test_corrigenda_and_cancellations_are_announced(
    make_match: MatchFactory, changes: dict[str, bool], headline: str, note: str
) -> None:
    rendered = render_alert(make_match(**changes), language="fr", recipient_email=RECIPIENT, base_url=BASE_URL)
    assert rendered.subject.startswith(f"[tenderwatch] {headline} — Prestations de collecte")
    assert rendered.text.startswith(f"{headline} — {TITLE}\n\n{note}\n")
    assert "Type d'avis\u00a0: Appel d'offres\n" in rendered.text
    assert note in rendered.html


def test_update_email_says_what_changed_in_french(make_match: MatchFactory) -> None:
    changes = [
        FieldChange(
            change_label("deadline", "fr"), "mercredi 28 février 2024 à 11 h 00", "vendredi 8 mars 2024 à 11 h 00"
        ),
        FieldChange(change_label("estimated_value", "fr"), None, "250\u202f000\u00a0€"),
        FieldChange("<b>Lots</b>", "<i>2</i>", "3"),
    ]
    rendered = render_alert(
        make_match(is_change=True), language="fr", recipient_email=RECIPIENT, base_url=BASE_URL, changes=changes
    )
    assert rendered.subject.startswith("[tenderwatch] Mise à jour — Prestations de collecte")
    assert rendered.text.startswith(
        f"Mise à jour — {TITLE}\n"
        "\n"
        "Cet avis corrige ou complète un avis publié précédemment.\n"
        "\n"
        "Un avis dont vous avez été averti a changé.\n"
        "\n"
        "Ce qui a changé\u00a0:\n"
        "- Date limite de réponse\u00a0: mercredi 28 février 2024 à 11 h 00 → vendredi 8 mars 2024 à 11 h 00\n"
        "- Valeur estimée\u00a0: non précisé → 250\u202f000\u00a0€\n"
        "- <b>Lots</b>\u00a0: <i>2</i> → 3\n"
        "\n"
        "Type d'avis\u00a0: Appel d'offres\n"
    )
    html = rendered.html
    assert "Mise à jour</span>" in html
    assert ">Ce qui a changé</th>" in html
    assert ">Date limite de réponse</td>" in html
    assert 'text-decoration:line-through;">mercredi 28 février 2024 à 11 h 00</td>' in html
    assert 'font-weight:bold;">vendredi 8 mars 2024 à 11 h 00</td>' in html
    assert 'text-decoration:line-through;">non précisé</td>' in html
    assert ">&lt;b&gt;Lots&lt;/b&gt;</td>" in html
    assert "<b>" not in html and "<i>" not in html


def test_planned_purchase_that_became_a_call_for_tenders_is_told_in_english(make_match: MatchFactory) -> None:
    rendered = render_alert(
        make_match(), language="en", recipient_email=RECIPIENT, base_url=BASE_URL, became_competition=True
    )
    assert rendered.subject.startswith("[tenderwatch] Update — Prestations de collecte")
    note = "The planned purchase you were alerted about is now open as a call for tenders."
    assert rendered.text.startswith(f"Update — {TITLE}\n\n{note}\n\nNotice type: Call for tenders\n")
    assert f"<strong>{note}</strong>" in rendered.html
    assert "What changed" not in rendered.text


def test_field_labels_of_changes() -> None:
    assert change_label("deadline", "en") == "Deadline for tenders"
    assert change_label("title", "fr") == "Titre"
    assert change_label("lots", "fr") == "lots"  # unknown fields are shown as named


def test_programmation_shows_its_planned_date(make_match: MatchFactory) -> None:
    match = make_match(kind=NoticeKind.PLANNING, deadline=None, planned_date=date(2025, 4, 1))
    rendered = render_alert(match, language="fr", recipient_email=RECIPIENT, base_url=BASE_URL)
    assert rendered.subject.startswith("[tenderwatch] Programmation — ")
    assert "Lancement prévu\u00a0: 1er avril 2025\n" in rendered.text
    assert "Date limite" not in rendered.text


@pytest.mark.parametrize(
    ("kind", "french", "english"),
    [
        (NoticeKind.PLANNING, "Programmation", "Planned procurement"),
        (NoticeKind.COMPETITION, "Appel d'offres", "Call for tenders"),
        (NoticeKind.RESULT, "Attribution", "Contract award"),
    ],
)
def test_kind_labels(make_match: MatchFactory, kind: NoticeKind, french: str, english: str) -> None:
    fr = render_alert(make_match(kind=kind), language="fr", recipient_email=RECIPIENT, base_url=BASE_URL)
    en = render_alert(make_match(kind=kind), language="en", recipient_email=RECIPIENT, base_url=BASE_URL)
    assert fr.subject.startswith(f"[tenderwatch] {french} — ")
    assert f"Type d'avis\u00a0: {french}\n" in fr.text
    assert en.subject.startswith(f"[tenderwatch] {english} — ")
    assert f"Notice type: {english}\n" in en.text


def test_english_email(make_match: MatchFactory) -> None:
    match = make_match(deadline=datetime(2025, 3, 3, 11, 0, tzinfo=UTC))
    rendered = render_alert(
        match, language="en", recipient_email=RECIPIENT, base_url=BASE_URL, unsubscribe_url=UNSUBSCRIBE_URL
    )
    assert rendered.subject.startswith("[tenderwatch] Call for tenders — Prestations de collecte")
    assert "Buyer: Communauté de Communes du Piémont Cévenol\n" in rendered.text
    assert "Place of performance: Gard (30) — Occitanie\n" in rendered.text
    assert "Deadline for tenders: Monday 3 March 2025 at 12:00\n" in rendered.text
    assert f"See the notice:\n{TED_URL}\n" in rendered.text
    assert "Why you are receiving this alert\nThis notice matches your alerts:\n" in rendered.text
    assert "This email was sent to achats@example.fr by tenderwatch.\n" in rendered.text
    assert f"Unsubscribe from these alerts: {UNSUBSCRIBE_URL}\n" in rendered.text
    assert '<html lang="en">' in rendered.html
    assert ">Unsubscribe from these alerts</a>" in rendered.html
    assert "<strong>Monday 3 March 2025 at 12:00</strong>" in rendered.html


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
