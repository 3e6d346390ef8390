"""Pictures of the alert emails, for anyone to see what subscribers receive: `docs/emails/*.png`.

Renders a sample of each template (instant alert in French and English, daily digest in French and weekly in
English, update in French) with the notifier's own code, then has headless Chromium take a screenshot of each.
Run `python -m services.platform.email_previews [--out docs/emails]`; Chromium must be installed (the command says
how when it is not). The pictures are committed: tests and CI do not render them.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from schemas import (
    Criterion,
    EmailFrequency,
    Match,
    MatchedSubscription,
    MatchReason,
    NoticeKind,
    NoticeSummary,
    match_id_for,
)
from schemas.notice import Money
from services.notifier.email.formatting import Language
from services.notifier.email.render import (
    EmailView,
    FieldChange,
    RenderedEmail,
    change_label,
    digest_view,
    render,
    render_alert,
)

OUT = Path("docs/emails")
_BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
_WIDTH = 800
_BASE_URL = "https://tenderwatch.example"
_UNSUBSCRIBE = (
    f"{_BASE_URL}/v1/unsubscribe/c3ViXzRmMmE5YzBlN2IxZDNjNWE4ZjYw.kq3V0dUz0Xh7cXrWmQ1lP8sN2yB5oE4tJ6gA9fR3uC0"
)
_RECIPIENT = "veille@dupont-environnement.fr"
_SUBSCRIBER = "acc_4f2a9c0e7b1d3c5a8f60"
_MATCHED_AT = datetime(2025, 3, 3, 8, 15, tzinfo=UTC)

# Sample notices, close to real ones from BOAMP and TED.
_GLASS = NoticeSummary(
    notice_id="eforms:a638ab6b-7005-48a9-a9c7-b91bfc6142f1",
    version="01",
    kind=NoticeKind.COMPETITION,
    title="Prestations de collecte des colonnes de verre et de papier pour la Communauté de Communes du Piémont "
    "Cévenol et transport vers les centres de traitement",
    description="Le présent marché porte sur la collecte des colonnes de verre et de papier pour la Communauté de "
    "Communes du Piémont Cévenol et leurs transports vers les centres de traitement.",
    language="fr",
    buyer_name="Communauté de Communes du Piémont Cévenol",
    cpv_main="90511100",
    departments=["30"],
    regions=["76"],
    countries=["FR"],
    estimated_value=Money(amount=Decimal("480000"), currency="EUR"),
    published_at=datetime(2025, 3, 2, tzinfo=UTC),
    deadline=datetime(2025, 4, 4, 10, 0, tzinfo=UTC),
    source_url="https://ted.europa.eu/en/notice/-/detail/47522-2025",
)
_CLEANING = NoticeSummary(
    notice_id="boamp:25-31877",
    version="1",
    kind=NoticeKind.COMPETITION,
    title="Nettoyage des locaux de l'hôtel de ville et des écoles maternelles",
    language="fr",
    buyer_name="Ville de Nîmes",
    cpv_main="90911200",
    departments=["30"],
    regions=["76"],
    countries=["FR"],
    estimated_value=Money(amount=Decimal("215000"), currency="EUR"),
    deadline=datetime(2025, 3, 21, 11, 0, tzinfo=UTC),
    source_url="https://www.boamp.fr/pages/avis/?q=idweb:25-31877",
)
_PLAN = NoticeSummary(
    notice_id="plan:21300189900014:2025-VOI-04",
    version="1",
    kind=NoticeKind.PLANNING,
    title="Réfection de la voirie communale, programme 2026",
    language="fr",
    buyer_name="Commune d'Alès",
    cpv_main="45233140",
    departments=["30"],
    regions=["76"],
    countries=["FR"],
    estimated_value=Money(amount=Decimal("1250000"), currency="EUR"),
    planned_date=date(2025, 10, 1),
)
_AWARD = NoticeSummary(
    notice_id="boamp:25-29904",
    version="1",
    kind=NoticeKind.RESULT,
    title="Maîtrise d'œuvre pour la réhabilitation du groupe scolaire Jean-Jaurès",
    language="fr",
    buyer_name="Département de l'Hérault",
    cpv_main="71200000",
    departments=["34"],
    regions=["76"],
    countries=["FR"],
    source_url="https://www.boamp.fr/pages/avis/?q=idweb:25-29904",
)


@dataclass(frozen=True)
class _Sample:
    name: str
    email: RenderedEmail
    height: int


def _subscriptions(frequency: EmailFrequency, language: Language) -> list[MatchedSubscription]:
    return [
        MatchedSubscription(
            subscription_id="sub_4f2a9c0e7b1d3c5a8f60",
            name="Collecte et nettoyage — Gard",
            reasons=[
                MatchReason(criterion=Criterion.SECTOR, values=["eau-dechets-environnement"]),
                MatchReason(criterion=Criterion.DEPARTMENT, values=["30"], notice_values=["30"]),
            ],
            email=_RECIPIENT,
            email_frequency=frequency,
            language=language,
        ),
        MatchedSubscription(
            subscription_id="sub_9d1e0b2c4a6f8e3d7c5b",
            name="Occitanie, plus de 200 000 €",
            reasons=[
                MatchReason(criterion=Criterion.REGION, values=["76"], notice_values=["76"]),
                MatchReason(criterion=Criterion.VALUE, values=["200000", ""], notice_values=["480000 EUR"]),
            ],
            email=_RECIPIENT,
            email_frequency=frequency,
            language=language,
        ),
    ]


def _match(notice: NoticeSummary, frequency: EmailFrequency, language: Language) -> Match:
    return Match(
        match_id=match_id_for(_SUBSCRIBER, notice.notice_id, notice.version),
        subscriber_id=_SUBSCRIBER,
        notice=notice,
        subscriptions=_subscriptions(frequency, language),
        matched_at=_MATCHED_AT,
    )


def _alert(language: Language, notice: NoticeSummary = _GLASS, changes: Sequence[FieldChange] = ()) -> RenderedEmail:
    return render_alert(
        _match(notice, EmailFrequency.INSTANT, language),
        language=language,
        recipient_email=_RECIPIENT,
        base_url=_BASE_URL,
        unsubscribe_url=_UNSUBSCRIBE,
        changes=changes,
    )


def _digest(language: Language, frequency: EmailFrequency, start: datetime, end: datetime) -> RenderedEmail:
    notices = [_PLAN, _GLASS, _AWARD, _CLEANING]
    view: EmailView = digest_view(
        [_match(n, frequency, language) for n in notices],
        language=language,
        recipient_email=_RECIPIENT,
        base_url=_BASE_URL,
        frequency=frequency,
        period_start=start,
        period_end=end,
        timezone="Europe/Paris",
        cap=3,
        unsubscribe_url=_UNSUBSCRIBE,
    )
    return render(view)


def samples() -> list[_Sample]:
    """The emails pictured, with the window height that shows each whole."""
    # A corrigendum postponed the deadline and raised the value of a call for tenders already sent.
    corrected = _GLASS.model_copy(
        update={
            "version": "02",
            "is_change": True,
            "deadline": datetime(2025, 4, 18, 10, 0, tzinfo=UTC),
            "estimated_value": Money(amount=Decimal("520000"), currency="EUR"),
        }
    )
    update = [
        FieldChange(
            change_label("deadline", "fr"), "vendredi 4 avril 2025 à 12 h 00", "vendredi 18 avril 2025 à 12 h 00"
        ),
        FieldChange(change_label("estimated_value", "fr"), "480\u202f000\u00a0€", "520\u202f000\u00a0€"),
    ]
    return [
        _Sample("instant-fr", _alert("fr"), 960),
        _Sample("instant-en", _alert("en"), 960),
        _Sample(
            "digest-fr",
            _digest(
                "fr", EmailFrequency.DAILY, datetime(2025, 3, 2, 6, tzinfo=UTC), datetime(2025, 3, 3, 6, tzinfo=UTC)
            ),
            1950,
        ),
        _Sample(
            "digest-en",
            _digest(
                "en", EmailFrequency.WEEKLY, datetime(2025, 2, 24, 6, tzinfo=UTC), datetime(2025, 3, 3, 6, tzinfo=UTC)
            ),
            1950,
        ),
        _Sample("update-fr", _alert("fr", corrected, update), 1260),
    ]


def _browser() -> str | None:
    for name in _BROWSERS:
        if found := shutil.which(name):
            return found
    return None


def write_previews(out: Path) -> list[Path]:
    """Screenshot every sample into `out`; raises SystemExit with the fix when Chromium is missing."""
    browser = _browser()
    if browser is None:
        raise SystemExit(
            "Chromium is needed to picture the emails and was not found (looked for: "
            f"{', '.join(_BROWSERS)}).\nInstall it, e.g. on Debian or Ubuntu: sudo apt-get install -y chromium\n"
            "then run this command again."
        )
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory(prefix="email-previews-") as work:
        for sample in samples():
            page = Path(work) / f"{sample.name}.html"
            page.write_text(sample.email.html, encoding="utf-8")
            target = (out / f"{sample.name}.png").resolve()
            command = [
                browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
                f"--user-data-dir={Path(work) / 'profile'}", f"--screenshot={target}",
                f"--window-size={_WIDTH},{sample.height}", page.as_uri(),
            ]  # fmt: skip
            result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)  # noqa: S603 - our own command
            if result.returncode != 0 or not target.exists():
                raise SystemExit(f"Chromium could not picture {sample.name} ({result.returncode}):\n{result.stderr}")
            written.append(target)
            print(f"{target}  ({sample.email.subject})")
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="email-previews", description=__doc__)
    parser.add_argument("--out", type=Path, default=OUT, help="where the pictures go (default: docs/emails)")
    args = parser.parse_args(argv)
    write_previews(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
