"""Alert emails in French or English: one view model, written out as a subject, a plain-text part and an HTML part.

`EmailView` holds everything an email says, already formatted for its language: one notice (an instant alert or an
update) or several (a daily or weekly digest). The templates only lay it out; the HTML ones are autoescaped, so no
markup from a notice's text ever reaches the HTML, and carry their CSS in `style` attributes (mail clients drop
`<style>` blocks and never fetch stylesheets).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from schemas.alert import Match, MatchedSubscription, NoticeSummary
from schemas.notice import Money, NoticeKind
from schemas.subscription import EmailFrequency
from services.notifier.changes import Change, ChangedField
from services.notifier.email.formatting import PARIS, Language, format_date, format_datetime, format_money
from services.notifier.reasons import DEPARTMENT_NAMES, REGION_NAMES, reason_lines

_TEMPLATES = Path(__file__).parent / "templates"

_SUBJECT_PREFIX = "[tenderwatch]"
_SUBJECT_CHARS = 160  # long enough to be useful, short enough to survive list views and folding
_BUYER_CHARS = 60
_EXCERPT_CHARS = 500
_DIGEST_EXCERPT_CHARS = 240
# Past the notices shown in full, a digest lists this many times as many as one-line links, then only counts.
_LINKS_PER_FULL_NOTICE = 4

Headline = Literal["planning", "competition", "result", "change", "cancelled", "update"]
_KIND_HEADLINES: Mapping[NoticeKind, Headline] = {
    NoticeKind.PLANNING: "planning",
    NoticeKind.COMPETITION: "competition",
    NoticeKind.RESULT: "result",
}

_STRINGS: Mapping[Language, Mapping[str, str]] = {
    "fr": {
        "planning": "Programmation",
        "competition": "Appel d'offres",
        "result": "Attribution",
        "change": "Avis rectificatif",
        "cancelled": "Annulation",
        "update": "Mise à jour",
        "sep": "\u00a0: ",  # French typography: no-break space before the colon
        "change_note": "Cet avis corrige ou complète un avis publié précédemment.",
        "cancelled_note": "Cet avis annule la procédure.",
        "update_note": "Un avis dont vous avez été averti a changé.",
        "became_competition_note": (
            "L'achat prévu dont vous avez été averti fait maintenant l'objet d'un appel d'offres."
        ),
        "changes": "Ce qui a changé",
        "field": "Champ",
        "before": "Avant",
        "after": "Après",
        "not_given": "non précisé",
        "kind": "Type d'avis",
        "buyer": "Acheteur",
        "place": "Lieu d'exécution",
        "cpv": "Code CPV principal",
        "value": "Valeur estimée",
        "deadline": "Date limite de réponse",
        "planned_date": "Lancement prévu",
        "published": "Date de publication",
        "description": "Description",
        "notice_link": "Voir l'avis",
        "why": "Pourquoi vous recevez cette alerte",
        "why_intro": "Cet avis correspond à vos alertes\u00a0:",
        "why_short": "Correspond à",
        "footer": "Cet e-mail a été envoyé à {recipient} par tenderwatch.",
        "unsubscribe": "Se désabonner de ces alertes",
        "digest_daily": "Sélection du jour",
        "digest_weekly": "Sélection de la semaine",
        "digest_count_one": "1 avis",
        "digest_count": "{count} avis",
        "digest_period": "Avis correspondant à vos alertes entre le {start} et le {end}, par date limite.",
        "digest_more": "Et {count} autres avis\u00a0:",
        "digest_more_one": "Et 1 autre avis\u00a0:",
        "digest_not_listed": (
            "{count} autres avis ne sont pas listés ici. Affinez les critères de vos alertes pour en recevoir moins."
        ),
        "digest_not_listed_one": (
            "1 autre avis n'est pas listé ici. Affinez les critères de vos alertes pour en recevoir moins."
        ),
        "digest_more_link": "Voir tous les avis",
        "no_deadline": "sans date limite",
    },
    "en": {
        "planning": "Planned procurement",
        "competition": "Call for tenders",
        "result": "Contract award",
        "change": "Corrigendum",
        "cancelled": "Cancellation",
        "update": "Update",
        "sep": ": ",
        "change_note": "This notice corrects or completes a previously published notice.",
        "cancelled_note": "This notice cancels the procedure.",
        "update_note": "A notice you were alerted about has changed.",
        "became_competition_note": "The planned purchase you were alerted about is now open as a call for tenders.",
        "changes": "What changed",
        "field": "Field",
        "before": "Before",
        "after": "After",
        "not_given": "not given",
        "kind": "Notice type",
        "buyer": "Buyer",
        "place": "Place of performance",
        "cpv": "Main CPV code",
        "value": "Estimated value",
        "deadline": "Deadline for tenders",
        "planned_date": "Planned launch",
        "published": "Publication date",
        "description": "Description",
        "notice_link": "See the notice",
        "why": "Why you are receiving this alert",
        "why_intro": "This notice matches your alerts:",
        "why_short": "Matches",
        "footer": "This email was sent to {recipient} by tenderwatch.",
        "unsubscribe": "Unsubscribe from these alerts",
        "digest_daily": "Daily digest",
        "digest_weekly": "Weekly digest",
        "digest_count_one": "1 notice",
        "digest_count": "{count} notices",
        "digest_period": "Notices matching your alerts between {start} and {end}, by deadline.",
        "digest_more": "And {count} more notices:",
        "digest_more_one": "And 1 more notice:",
        "digest_not_listed": "{count} more notices are not listed here. Narrow your alerts' filters to receive fewer.",
        "digest_not_listed_one": "1 more notice is not listed here. Narrow your alerts' filters to receive fewer.",
        "digest_more_link": "See every notice",
        "no_deadline": "no deadline",
    },
}

# Labels of the notice fields a change alert may report, for `change_label`.
_FIELD_LABELS: Mapping[Language, Mapping[str, str]] = {
    "fr": {
        "title": "Titre",
        "description": "Description",
        "buyer_name": "Acheteur",
        "deadline": "Date limite de réponse",
        "estimated_value": "Valeur estimée",
        "planned_date": "Lancement prévu",
        "kind": "Type d'avis",
        "cancelled": "Annulation",
        "cpv_main": "Code CPV principal",
        "place": "Lieu d'exécution",
        "source_url": "Adresse de l'avis",
        "change_note": "Motif indiqué par l'acheteur",
    },
    "en": {
        "title": "Title",
        "description": "Description",
        "buyer_name": "Buyer",
        "deadline": "Deadline for tenders",
        "estimated_value": "Estimated value",
        "planned_date": "Planned launch",
        "kind": "Notice type",
        "cancelled": "Cancellation",
        "cpv_main": "Main CPV code",
        "place": "Place of performance",
        "source_url": "Notice address",
        "change_note": "Reason given by the buyer",
    },
}


@dataclass(frozen=True)
class FieldChange:
    """One line of "what changed": a field's label in the email's language, its value before and after."""

    label: str
    before: str | None
    after: str | None


@dataclass(frozen=True)
class SubscriptionReasons:
    """A subscription as an email lists it: its name and one plain-text line per match reason."""

    name: str
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class NoticeView:
    """One notice as an email shows it, every value already written for the email's language."""

    notice_id: str
    headline: Headline  # what the email announces: the kind, a corrigendum, a cancellation or an update
    headline_label: str
    kind_label: str
    title: str
    buyer: str
    place: str | None
    cpv: str | None
    value: str | None
    deadline: str | None
    deadline_at: datetime | None  # for ordering a digest
    planned_date: str | None
    published: str | None
    description: str | None
    link: str  # the notice where it was published, else on tenderwatch
    why: tuple[SubscriptionReasons, ...]
    note: str | None = None  # corrigendum or cancellation notice
    changes: tuple[FieldChange, ...] = ()
    became_competition: bool = False  # a planned purchase the subscriber was alerted about is now a call for tenders


@dataclass(frozen=True)
class DigestPeriod:
    frequency: EmailFrequency
    start: str  # written out
    end: str
    end_day: str


@dataclass(frozen=True)
class EmailView:
    """Everything one email says: one notice (instant or update alert) or a digest of several."""

    language: Language
    recipient: str
    notices: tuple[NoticeView, ...]
    digest: DigestPeriod | None = None
    more: tuple[NoticeView, ...] = ()  # a digest's notices past the cap: one-line links
    not_listed: int = 0  # a digest's notices past the links too: only counted
    more_url: str | None = None  # where every notice of a capped digest can be seen, when there is such a page
    unsubscribe_url: str | None = None

    def __post_init__(self) -> None:
        if not self.notices:
            raise ValueError("an email needs at least one notice: nothing to send means no email")
        if self.language not in _STRINGS:
            raise ValueError(f"language {self.language!r} is not supported: use one of {sorted(_STRINGS)}")

    @property
    def strings(self) -> Mapping[str, str]:
        """The fixed words of the email's language."""
        return _STRINGS[self.language]


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def change_label(field_name: str, language: Language) -> str:
    """The label of a notice field (`deadline`, `estimated_value`, ...) in a change list; unknown names as given."""
    return _FIELD_LABELS[language].get(field_name, field_name)


_CHANGE_TEXT_CHARS = 300
_CANCELLED = {"fr": "l'avis est annulé", "en": "the notice is cancelled"}


def describe_changes(changes: Sequence[Change], language: Language) -> tuple[FieldChange, ...]:
    """The lines of "what changed", labelled and written for a reader of `language`."""
    return tuple(
        FieldChange(
            change_label(change.field.value, language),
            _change_value(change.field, change.before, language),
            _change_value(change.field, change.after, language),
        )
        for change in changes
    )


def _change_value(field: ChangedField, value: str | None, language: Language) -> str | None:
    """A change's machine value (ISO date, '250000 EUR', 'true') as the email writes it; None stays None."""
    if value is None:
        return None
    if field is ChangedField.CANCELLED:
        return _CANCELLED[language]
    if field is ChangedField.DEADLINE:
        return format_datetime(datetime.fromisoformat(value), language)
    if field is ChangedField.PLANNED_DATE:
        return format_date(date.fromisoformat(value), language)
    if field is ChangedField.ESTIMATED_VALUE:
        amount, _, currency = value.partition(" ")
        return format_money(Money(amount=Decimal(amount), currency=currency), language)
    if len(value) > _CHANGE_TEXT_CHARS:
        return value[: _CHANGE_TEXT_CHARS - 1].rstrip() + "…"
    return value


def notice_view(
    match: Match,
    *,
    language: Language,
    recipient_email: str,
    base_url: str,
    changes: Sequence[FieldChange] = (),
    became_competition: bool = False,
    excerpt_chars: int = _EXCERPT_CHARS,
) -> NoticeView:
    """`match.notice` as `recipient_email` reads it: only the subscriptions emailing that address say why.

    With `changes` or `became_competition`, the notice is announced as an update of one already sent. Days before
    a deadline in the reasons count from the day of the match; `base_url` is the public API root, for the link to
    a notice without a source address.
    """
    if language not in _STRINGS:
        raise ValueError(f"language {language!r} is not supported: use one of {sorted(_STRINGS)}")
    strings = _STRINGS[language]
    notice = match.notice
    why = tuple(
        SubscriptionReasons(
            " ".join(s.name.split()), tuple(reason_lines(s.reasons, language, matched_at=match.matched_at))
        )
        for s in _subscriptions_for(match, recipient_email)
    )
    headline = _headline(notice, bool(changes) or became_competition)
    return NoticeView(
        notice_id=notice.notice_id,
        headline=headline,
        headline_label=strings[headline],
        kind_label=strings[_KIND_HEADLINES[notice.kind]],
        title=" ".join(notice.title.split()),
        buyer=" ".join(notice.buyer_name.split()),
        place=_place(notice),
        cpv=notice.cpv_main,
        value=format_money(notice.estimated_value, language) if notice.estimated_value else None,
        deadline=format_datetime(notice.deadline, language) if notice.deadline else None,
        deadline_at=notice.deadline,
        planned_date=format_date(notice.planned_date, language) if notice.planned_date else None,
        published=format_date(notice.published_at, language) if notice.published_at else None,
        description=_shorten(notice.description, excerpt_chars) if notice.description else None,
        link=_web_link(notice.source_url) or _api_notice_url(base_url, notice.notice_id),
        why=why,
        note=_note(notice, strings),
        changes=tuple(changes),
        became_competition=became_competition,
    )


def render_alert(
    match: Match,
    *,
    language: Language,
    recipient_email: str,
    base_url: str,
    unsubscribe_url: str | None = None,
    changes: Sequence[FieldChange] = (),
    became_competition: bool = False,
) -> RenderedEmail:
    """The email `recipient_email` gets for one match: an alert, or an update when `changes`/`became_competition`."""
    view = notice_view(
        match,
        language=language,
        recipient_email=recipient_email,
        base_url=base_url,
        changes=changes,
        became_competition=became_competition,
    )
    return render(EmailView(language, recipient_email.strip(), (view,), unsubscribe_url=_web_link(unsubscribe_url)))


def digest_view(
    matches: Sequence[Match],
    *,
    language: Language,
    recipient_email: str,
    base_url: str,
    frequency: EmailFrequency,
    period_start: datetime,
    period_end: datetime,
    timezone: str,
    cap: int,
    unsubscribe_url: str | None = None,
    more_url: str | None = None,
    updates: Mapping[str, tuple[Sequence[Change], bool]] | None = None,
) -> EmailView:
    """A digest of `matches` for one address: by deadline (the soonest first, notices without one last), the first
    `cap` in full, the next ones as links, the rest counted. `updates` maps a match id to what changed since the
    version the address was sent and whether it follows a planned purchase it was sent."""
    updates = updates or {}
    if cap < 1:
        raise ValueError(f"a digest shows at least one notice in full, not {cap}")
    views = sorted(
        (
            notice_view(
                m, language=language, recipient_email=recipient_email, base_url=base_url,
                excerpt_chars=_DIGEST_EXCERPT_CHARS,
                changes=describe_changes(updates.get(m.match_id, ((), False))[0], language),
                became_competition=updates.get(m.match_id, ((), False))[1],
            )
            for m in matches
        ),
        key=_by_deadline,
    )  # fmt: skip
    zone = _zone(timezone)
    links_end = cap + cap * _LINKS_PER_FULL_NOTICE
    return EmailView(
        language=language,
        recipient=recipient_email.strip(),
        notices=tuple(views[:cap]),
        digest=DigestPeriod(
            frequency=frequency,
            start=format_datetime(period_start, language, zone),
            end=format_datetime(period_end, language, zone),
            end_day=format_date(period_end.astimezone(zone).date(), language),
        ),
        more=tuple(views[cap:links_end]),
        not_listed=max(0, len(views) - links_end),
        more_url=_web_link(more_url),
        unsubscribe_url=_web_link(unsubscribe_url),
    )


def render(view: EmailView) -> RenderedEmail:
    """The subject and both parts of `view`."""
    name = "alert" if view.digest is None else "digest"
    context: dict[str, Any] = {
        "v": view,
        "t": view.strings,
        "footer": view.strings["footer"].format(recipient=view.recipient),
        "count_label": _count_label(view),
    }
    environment = _environment()
    return RenderedEmail(
        subject=_subject(view),
        text=_tidy(environment.get_template(f"{name}.txt.j2").render(context)),
        html=environment.get_template(f"{name}.html.j2").render(context),
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


def _headline(notice: NoticeSummary, update: bool) -> Headline:
    if notice.cancelled:
        return "cancelled"
    if update:
        return "update"
    if notice.is_change:
        return "change"
    return _KIND_HEADLINES[notice.kind]


def _note(notice: NoticeSummary, strings: Mapping[str, str]) -> str | None:
    if notice.cancelled:
        return strings["cancelled_note"]
    if notice.is_change:
        return strings["change_note"]
    return None


def _place(notice: NoticeSummary) -> str | None:
    """`Gard (30), Hérault (34) — Occitanie`; countries when there is no French geography."""
    departments = [f"{DEPARTMENT_NAMES[c]} ({c})" if c in DEPARTMENT_NAMES else c for c in notice.departments]
    regions = [REGION_NAMES.get(c, c) for c in notice.regions]
    parts = [", ".join(p) for p in (departments, regions) if p]
    if parts:
        return " — ".join(parts)
    return ", ".join(notice.countries) or None


def _by_deadline(view: NoticeView) -> tuple[bool, datetime | str, str]:
    if view.deadline_at is None:
        return (True, "", view.notice_id)
    at = view.deadline_at if view.deadline_at.tzinfo is not None else view.deadline_at.replace(tzinfo=PARIS)
    return (False, at, view.notice_id)


def _subject(view: EmailView) -> str:
    strings = view.strings
    if view.digest is not None:
        title = strings["digest_daily" if view.digest.frequency is EmailFrequency.DAILY else "digest_weekly"]
        return f"{_SUBJECT_PREFIX} {title} — {_count_label(view)} ({view.digest.end_day})"
    notice = view.notices[0]
    buyer = _shorten(notice.buyer, _BUYER_CHARS)
    fixed = f"{_SUBJECT_PREFIX} {notice.headline_label} — " + f" ({buyer})"
    title = _shorten(notice.title, max(_SUBJECT_CHARS - len(fixed), 40))
    return f"{_SUBJECT_PREFIX} {notice.headline_label} — {title} ({buyer})"


def _count_label(view: EmailView) -> str:
    count = len(view.notices) + len(view.more) + view.not_listed
    return view.strings["digest_count_one"] if count == 1 else view.strings["digest_count"].format(count=count)


def _tidy(text: str) -> str:
    """Plain text without trailing spaces nor runs of blank lines (the signature separator keeps its space)."""
    lines: list[str] = []
    for line in text.splitlines():
        line = line if line == "-- " else line.rstrip()
        if line or (lines and lines[-1]):
            lines.append(line)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines) + "\n"


def _shorten(text: str, limit: int) -> str:
    """Whitespace (newlines included) collapsed, then cut at a word boundary with an ellipsis."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    if " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:.-–—") + "…"


def _api_notice_url(base_url: str, notice_id: str) -> str:
    return f"{base_url.rstrip('/')}/v1/notices/{quote(notice_id, safe=':@')}"


def _web_link(url: str | None) -> str | None:
    """Only http(s) links are shown: a `javascript:` URL from a feed must never become a clickable link."""
    if url and url.strip().lower().startswith(("https://", "http://")):
        return url.strip()
    return None


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError):
        return PARIS
