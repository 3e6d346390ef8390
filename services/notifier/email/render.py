"""One alert email for one notice: subject, plain-text part and HTML part, in French or English."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from schemas.alert import Match, MatchedSubscription, NoticeSummary
from schemas.notice import NoticeKind
from services.notifier.email.formatting import Language, format_date, format_datetime, format_money
from services.notifier.reasons import reason_lines

_TEMPLATES = Path(__file__).parent / "templates"

_SUBJECT_PREFIX = "[tenderwatch]"
_SUBJECT_CHARS = 160  # long enough to be useful, short enough to survive list views and folding
_BUYER_CHARS = 60
_EXCERPT_CHARS = 500

_STRINGS: Mapping[Language, Mapping[str, str]] = {
    "fr": {
        NoticeKind.PLANNING: "Programmation",
        NoticeKind.COMPETITION: "Appel d'offres",
        NoticeKind.RESULT: "Attribution",
        "sep": "\u00a0: ",  # French typography: no-break space before the colon
        "change": "Avis rectificatif",
        "cancelled": "Annulation",
        "change_note": "Cet avis corrige ou complète un avis publié précédemment.",
        "cancelled_note": "Cet avis annule la procédure.",
        "kind": "Type d'avis",
        "buyer": "Acheteur",
        "departments": "Départements",
        "regions": "Régions",
        "countries": "Pays",
        "cpv": "Code CPV principal",
        "value": "Valeur estimée",
        "deadline": "Date limite de réponse",
        "planned_date": "Lancement prévu",
        "published": "Date de publication",
        "description": "Description",
        "source_link": "Voir l'avis sur le site de publication",
        "notice_link": "Voir l'avis sur tenderwatch",
        "why": "Pourquoi vous recevez cette alerte",
        "why_intro": "Cet avis correspond à vos alertes\u00a0:",
        "footer": "Cet e-mail a été envoyé à {recipient} par tenderwatch.",
        "unsubscribe": "Se désabonner de ces alertes",
    },
    "en": {
        NoticeKind.PLANNING: "Planned procurement",
        NoticeKind.COMPETITION: "Call for tenders",
        NoticeKind.RESULT: "Contract award",
        "sep": ": ",
        "change": "Corrigendum",
        "cancelled": "Cancellation",
        "change_note": "This notice corrects or completes a previously published notice.",
        "cancelled_note": "This notice cancels the procedure.",
        "kind": "Notice type",
        "buyer": "Buyer",
        "departments": "Departments",
        "regions": "Regions",
        "countries": "Countries",
        "cpv": "Main CPV code",
        "value": "Estimated value",
        "deadline": "Deadline for tenders",
        "planned_date": "Planned launch",
        "published": "Publication date",
        "description": "Description",
        "source_link": "See the notice where it was published",
        "notice_link": "See the notice on tenderwatch",
        "why": "Why you are receiving this alert",
        "why_intro": "This notice matches your alerts:",
        "footer": "This email was sent to {recipient} by tenderwatch.",
        "unsubscribe": "Unsubscribe from these alerts",
    },
}


@dataclass(frozen=True)
class _SubscriptionWhy:
    """A subscription as the templates list it: its name and one plain-text line per reason."""

    name: str
    reasons: list[str]


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def render_alert(
    match: Match,
    *,
    language: Language,
    recipient_email: str,
    base_url: str,
    unsubscribe_url: str | None = None,
) -> RenderedEmail:
    """Write the alert `recipient_email` gets for `match.notice`.

    Only the subscriptions that email this recipient are listed, each with one line per match reason (days before a
    deadline counted from the day of the match); `base_url` is the public API root (e.g.
    `https://tenderwatch.example`) used for the notice link.
    """
    if language not in _STRINGS:
        raise ValueError(f"language {language!r} is not supported: use one of {sorted(_STRINGS)}")
    subscriptions = [
        _SubscriptionWhy(s.name, reason_lines(s.reasons, language, matched_at=match.matched_at))
        for s in _subscriptions_for(match, recipient_email)
    ]
    strings = _STRINGS[language]
    notice = match.notice
    headline = _headline(notice, strings)
    context: dict[str, Any] = {
        "t": strings,
        "language": language,
        "headline": headline,
        "change_note": _change_note(notice, strings),
        "kind": strings[notice.kind],
        "title": " ".join(notice.title.split()),
        "buyer": " ".join(notice.buyer_name.split()),
        "departments": ", ".join(notice.departments),
        "regions": ", ".join(notice.regions),
        "countries": ", ".join(notice.countries),
        "cpv": notice.cpv_main,
        "value": format_money(notice.estimated_value, language) if notice.estimated_value else None,
        "deadline": format_datetime(notice.deadline, language) if notice.deadline else None,
        "planned_date": format_date(notice.planned_date, language) if notice.planned_date else None,
        "published": format_date(notice.published_at, language) if notice.published_at else None,
        "description": _shorten(notice.description, _EXCERPT_CHARS) if notice.description else None,
        "source_url": _web_link(notice.source_url),
        "notice_url": f"{base_url.rstrip('/')}/v1/notices/{quote(notice.notice_id, safe=':@')}",
        "subscriptions": subscriptions,
        "footer": strings["footer"].format(recipient=recipient_email),
        "unsubscribe_url": _web_link(unsubscribe_url),
    }
    environment = _environment()
    return RenderedEmail(
        subject=_subject(headline, notice),
        text=environment.get_template("alert.txt.j2").render(context),
        html=environment.get_template("alert.html.j2").render(context),
    )


@functools.cache
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(_TEMPLATES),
        # Notice texts come from third parties: everything that ends up in HTML is escaped.
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=True, default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _subscriptions_for(match: Match, recipient_email: str) -> list[MatchedSubscription]:
    wanted = recipient_email.strip().lower()
    found = [s for s in match.subscriptions if s.email is not None and s.email.strip().lower() == wanted]
    if not found:
        raise ValueError(
            f"match {match.match_id} has no subscription emailing {recipient_email!r}: "
            "render one email per address listed in match.subscriptions[].email"
        )
    return found


def _headline(notice: NoticeSummary, strings: Mapping[str, str]) -> str:
    if notice.cancelled:
        return strings["cancelled"]
    if notice.is_change:
        return strings["change"]
    return strings[notice.kind]


def _change_note(notice: NoticeSummary, strings: Mapping[str, str]) -> str | None:
    if notice.cancelled:
        return strings["cancelled_note"]
    if notice.is_change:
        return strings["change_note"]
    return None


def _subject(headline: str, notice: NoticeSummary) -> str:
    buyer = _shorten(notice.buyer_name, _BUYER_CHARS)
    fixed = f"{_SUBJECT_PREFIX} {headline} — " + f" ({buyer})"
    title = _shorten(notice.title, max(_SUBJECT_CHARS - len(fixed), 40))
    return f"{_SUBJECT_PREFIX} {headline} — {title} ({buyer})"


def _shorten(text: str, limit: int) -> str:
    """Whitespace (newlines included) collapsed, then cut at a word boundary with an ellipsis."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    if " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:.-–—") + "…"


def _web_link(url: str | None) -> str | None:
    """Only http(s) links are shown: a `javascript:` URL from a feed must never become a clickable link."""
    if url and url.strip().lower().startswith(("https://", "http://")):
        return url.strip()
    return None
