"""Why an alert was sent: one human line per match reason, in French or English, for emails and webhooks.

Reasons are read as `MatchReason` documents them. How they are written:
- codes get a label when one is known here (departments, regions, notice kinds, buyer categories, procedure
  types); sectors and countries stay codes; an unknown code is shown as given;
- cpv and buyer add what the notice had when it differs from what the subscription asked for;
- keywords say "(title)" when the terms were searched in the title alone;
- a deadline's days are counted from the day of the match (Paris time), so every rendering of a match, a retried
  webhook included, says the same;
- a value that does not read as expected (an amount, a date) is shown as given, never dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Final

from schemas.alert import Criterion, MatchReason
from schemas.notice import Money
from services.notifier.email.formatting import PARIS, Language, format_date, format_money

_EXCERPT_CHARS = 80
_NBSP = "\u00a0"
_EUR = "EUR"
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})
# Where a keyword was found, as the matcher names the notice's texts.
_TEXT_FIELDS: Final = ("title", "description")

# Names of the INSEE departments and regions (COG 2025): stable, and too few to be worth a data file here.
DEPARTMENT_NAMES: Final[Mapping[str, str]] = {
    "01": "Ain",
    "02": "Aisne",
    "03": "Allier",
    "04": "Alpes-de-Haute-Provence",
    "05": "Hautes-Alpes",
    "06": "Alpes-Maritimes",
    "07": "Ardèche",
    "08": "Ardennes",
    "09": "Ariège",
    "10": "Aube",
    "11": "Aude",
    "12": "Aveyron",
    "13": "Bouches-du-Rhône",
    "14": "Calvados",
    "15": "Cantal",
    "16": "Charente",
    "17": "Charente-Maritime",
    "18": "Cher",
    "19": "Corrèze",
    "21": "Côte-d'Or",
    "22": "Côtes-d'Armor",
    "23": "Creuse",
    "24": "Dordogne",
    "25": "Doubs",
    "26": "Drôme",
    "27": "Eure",
    "28": "Eure-et-Loir",
    "29": "Finistère",
    "2A": "Corse-du-Sud",
    "2B": "Haute-Corse",
    "30": "Gard",
    "31": "Haute-Garonne",
    "32": "Gers",
    "33": "Gironde",
    "34": "Hérault",
    "35": "Ille-et-Vilaine",
    "36": "Indre",
    "37": "Indre-et-Loire",
    "38": "Isère",
    "39": "Jura",
    "40": "Landes",
    "41": "Loir-et-Cher",
    "42": "Loire",
    "43": "Haute-Loire",
    "44": "Loire-Atlantique",
    "45": "Loiret",
    "46": "Lot",
    "47": "Lot-et-Garonne",
    "48": "Lozère",
    "49": "Maine-et-Loire",
    "50": "Manche",
    "51": "Marne",
    "52": "Haute-Marne",
    "53": "Mayenne",
    "54": "Meurthe-et-Moselle",
    "55": "Meuse",
    "56": "Morbihan",
    "57": "Moselle",
    "58": "Nièvre",
    "59": "Nord",
    "60": "Oise",
    "61": "Orne",
    "62": "Pas-de-Calais",
    "63": "Puy-de-Dôme",
    "64": "Pyrénées-Atlantiques",
    "65": "Hautes-Pyrénées",
    "66": "Pyrénées-Orientales",
    "67": "Bas-Rhin",
    "68": "Haut-Rhin",
    "69": "Rhône",
    "70": "Haute-Saône",
    "71": "Saône-et-Loire",
    "72": "Sarthe",
    "73": "Savoie",
    "74": "Haute-Savoie",
    "75": "Paris",
    "76": "Seine-Maritime",
    "77": "Seine-et-Marne",
    "78": "Yvelines",
    "79": "Deux-Sèvres",
    "80": "Somme",
    "81": "Tarn",
    "82": "Tarn-et-Garonne",
    "83": "Var",
    "84": "Vaucluse",
    "85": "Vendée",
    "86": "Vienne",
    "87": "Haute-Vienne",
    "88": "Vosges",
    "89": "Yonne",
    "90": "Territoire de Belfort",
    "91": "Essonne",
    "92": "Hauts-de-Seine",
    "93": "Seine-Saint-Denis",
    "94": "Val-de-Marne",
    "95": "Val-d'Oise",
    "971": "Guadeloupe",
    "972": "Martinique",
    "973": "Guyane",
    "974": "La Réunion",
    "976": "Mayotte",
}
REGION_NAMES: Final[Mapping[str, str]] = {
    "01": "Guadeloupe",
    "02": "Martinique",
    "03": "Guyane",
    "04": "La Réunion",
    "06": "Mayotte",
    "11": "Île-de-France",
    "24": "Centre-Val de Loire",
    "27": "Bourgogne-Franche-Comté",
    "28": "Normandie",
    "32": "Hauts-de-France",
    "44": "Grand Est",
    "52": "Pays de la Loire",
    "53": "Bretagne",
    "75": "Nouvelle-Aquitaine",
    "76": "Occitanie",
    "84": "Auvergne-Rhône-Alpes",
    "93": "Provence-Alpes-Côte d'Azur",
    "94": "Corse",
}

_KIND_LABELS: Final[Mapping[Language, Mapping[str, str]]] = {
    "fr": {"planning": "programmation", "competition": "appel d'offres", "result": "attribution"},
    "en": {"planning": "planned procurement", "competition": "call for tenders", "result": "contract award"},
}
_BUYER_CATEGORY_LABELS: Final[Mapping[Language, Mapping[str, str]]] = {
    "fr": {
        "state": "État et ses établissements",
        "region": "région",
        "department": "département",
        "municipality": "commune ou intercommunalité",
        "hospital": "établissement de santé",
        "utility": "opérateur de réseau (eau, énergie, transport, poste)",
        "other-public": "autre organisme public",
    },
    "en": {
        "state": "State and its agencies",
        "region": "regional authority",
        "department": "departmental authority",
        "municipality": "municipality or inter-municipal body",
        "hospital": "hospital",
        "utility": "network utility (water, energy, transport, post)",
        "other-public": "other public body",
    },
}
# The eForms procedure-type code list.
_PROCEDURE_LABELS: Final[Mapping[Language, Mapping[str, str]]] = {
    "fr": {
        "open": "ouverte",
        "restricted": "restreinte",
        "neg-w-call": "négociée avec mise en concurrence préalable",
        "neg-wo-call": "négociée sans mise en concurrence préalable",
        "comp-dial": "dialogue compétitif",
        "innovation": "partenariat d'innovation",
        "comp-tend": "mise en concurrence (transport de voyageurs)",
        "oth-single": "autre procédure en une étape",
        "oth-mult": "autre procédure en plusieurs étapes",
    },
    "en": {
        "open": "open",
        "restricted": "restricted",
        "neg-w-call": "negotiated with prior publication",
        "neg-wo-call": "negotiated without prior publication",
        "comp-dial": "competitive dialogue",
        "innovation": "innovation partnership",
        "comp-tend": "competitive tendering (passenger transport)",
        "oth-single": "other single-stage procedure",
        "oth-mult": "other multiple-stage procedure",
    },
}


@dataclass(frozen=True)
class _Words:
    """The words of one language."""

    sep: str
    notice: str
    open_quote: str
    close_quote: str
    not_given: str
    # criterion -> (singular, plural) label
    labels: Mapping[Criterion, tuple[str, str]]
    text_fields: Mapping[str, str]
    value_not_published: str
    between: str  # {low} {high}
    at_least_amount: str
    at_most_amount: str
    deadline_in_days: str  # {days}
    deadline_in_one_day: str
    deadline_today: str
    deadline_passed: str  # {date}
    deadline_at_least: str  # {days}
    no_deadline: str
    no_deadline_at_least: str  # {days}
    sme: tuple[str, str]  # (true, false)
    reserved: tuple[str, str]
    everything: str
    keywords_without_terms: str

    def quoted(self, text: str) -> str:
        return f"{self.open_quote}{text}{self.close_quote}"


_WORDS: Final[Mapping[Language, _Words]] = {
    "fr": _Words(
        sep=f"{_NBSP}: ",  # French typography: no-break space before the colon
        notice="avis",
        open_quote=f"«{_NBSP}",
        close_quote=f"{_NBSP}»",
        not_given="non précisé",
        labels={
            Criterion.KIND: ("Type d'avis", "Types d'avis"),
            Criterion.CPV: ("CPV", "CPV"),
            Criterion.SECTOR: ("Secteur", "Secteurs"),
            Criterion.DEPARTMENT: ("Département", "Départements"),
            Criterion.REGION: ("Région", "Régions"),
            Criterion.COUNTRY: ("Pays", "Pays"),
            Criterion.KEYWORDS: ("Mot-clé", "Mots-clés"),
            Criterion.VALUE: ("Valeur estimée", "Valeur estimée"),
            Criterion.BUYER: ("Acheteur", "Acheteurs"),
            Criterion.BUYER_CATEGORY: ("Catégorie d'acheteur", "Catégories d'acheteur"),
            Criterion.PROCEDURE_TYPE: ("Procédure", "Procédures"),
            Criterion.SME_SUITABLE: ("Adapté aux PME", "Adapté aux PME"),
            Criterion.RESERVED: ("Marché réservé", "Marché réservé"),
            Criterion.DEADLINE: ("Date limite", "Date limite"),
            Criterion.EVERYTHING: ("Tous les avis", "Tous les avis"),
        },
        text_fields={"title": "titre", "description": "description"},
        value_not_published="non publiée",
        between="entre {low} et {high}",
        at_least_amount="au moins {amount}",
        at_most_amount="au plus {amount}",
        deadline_in_days="Date limite dans {days} jours",
        deadline_in_one_day="Date limite dans 1 jour",
        deadline_today="Date limite aujourd'hui",
        deadline_passed="Date limite passée le {date}",
        deadline_at_least="au moins {days}",
        no_deadline="Pas de date limite publiée",
        no_deadline_at_least="au moins {days} jours demandés",
        sme=("Adapté aux PME", "Non signalé comme adapté aux PME"),
        reserved=("Marché réservé (handicap, insertion ou économie sociale)", "Marché non réservé"),
        everything="Tous les avis (alerte sans critère)",
        keywords_without_terms="requête satisfaite",
    ),
    "en": _Words(
        sep=": ",
        notice="notice",
        open_quote="“",
        close_quote="”",
        not_given="not given",
        labels={
            Criterion.KIND: ("Notice type", "Notice types"),
            Criterion.CPV: ("CPV", "CPV"),
            Criterion.SECTOR: ("Sector", "Sectors"),
            Criterion.DEPARTMENT: ("Department", "Departments"),
            Criterion.REGION: ("Region", "Regions"),
            Criterion.COUNTRY: ("Country", "Countries"),
            Criterion.KEYWORDS: ("Keyword", "Keywords"),
            Criterion.VALUE: ("Estimated value", "Estimated value"),
            Criterion.BUYER: ("Buyer", "Buyers"),
            Criterion.BUYER_CATEGORY: ("Buyer category", "Buyer categories"),
            Criterion.PROCEDURE_TYPE: ("Procedure", "Procedures"),
            Criterion.SME_SUITABLE: ("Suitable for SMEs", "Suitable for SMEs"),
            Criterion.RESERVED: ("Reserved contract", "Reserved contract"),
            Criterion.DEADLINE: ("Deadline", "Deadline"),
            Criterion.EVERYTHING: ("Every notice", "Every notice"),
        },
        text_fields={"title": "title", "description": "description"},
        value_not_published="not published",
        between="between {low} and {high}",
        at_least_amount="at least {amount}",
        at_most_amount="at most {amount}",
        deadline_in_days="Deadline in {days} days",
        deadline_in_one_day="Deadline in 1 day",
        deadline_today="Deadline today",
        deadline_passed="Deadline passed on {date}",
        deadline_at_least="at least {days}",
        no_deadline="No deadline published",
        no_deadline_at_least="at least {days} days required",
        sme=("Suitable for SMEs", "Not marked as suitable for SMEs"),
        reserved=("Reserved contract (disability, integration or social economy)", "Not a reserved contract"),
        everything="Every notice (alert without criteria)",
        keywords_without_terms="query matched",
    ),
}


def reason_line(reason: MatchReason, language: Language, *, matched_at: datetime) -> str:
    """`reason` as one line of plain text (never markup: escape it where HTML is written).

    `matched_at` is when the match was made: a deadline's days left are counted from that day.
    """
    words = _WORDS[language]
    positional = [_flat(value) for value in reason.values]
    values = [value for value in positional if value]
    notice_values = [flat for flat in (_flat(value) for value in reason.notice_values) if flat]
    render = _RENDERERS.get(reason.criterion)
    if render is None:  # a criterion newer than this module: say what we have
        return _listed(str(reason.criterion), values or notice_values, words)
    return render(_Reason(reason.criterion, values, positional, notice_values, language, words, _paris_day(matched_at)))


def reason_lines(reasons: Sequence[MatchReason], language: Language, *, matched_at: datetime) -> list[str]:
    return [reason_line(reason, language, matched_at=matched_at) for reason in reasons]


@dataclass(frozen=True)
class _Reason:
    criterion: Criterion
    values: list[str]  # blanks left out
    positional: list[str]  # blanks kept: a value range's open bound is ""
    notice_values: list[str]
    language: Language
    words: _Words
    match_day: date

    def label(self, count: int) -> str:
        singular, plural = self.words.labels[self.criterion]
        return plural if count > 1 else singular

    def shown(self) -> list[str]:
        """The subscription's values, or the notice's when the reason carries none."""
        return self.values or self.notice_values


def _listed(label: str, values: Sequence[str], words: _Words) -> str:
    return f"{label}{words.sep}{', '.join(values) if values else words.not_given}"


def _with_notice_values(line: str, reason: _Reason) -> str:
    """`line (avis : …)` when the notice had something other than what the subscription asked for."""
    if reason.values and reason.notice_values and set(reason.notice_values) != set(reason.values):
        return f"{line} ({reason.words.notice}{reason.words.sep}{', '.join(reason.notice_values)})"
    return line


def _labelled_list(labels: Mapping[Language, Mapping[str, str]] | None) -> Callable[[_Reason], str]:
    def render(reason: _Reason) -> str:
        shown = reason.shown()
        names = labels[reason.language] if labels else {}
        return _listed(reason.label(len(shown)), [names.get(value, value) for value in shown], reason.words)

    return render


def _coded_list(names: Mapping[str, str]) -> Callable[[_Reason], str]:
    """`31 Haute-Garonne`: the code, then its name when it has one."""

    def render(reason: _Reason) -> str:
        shown = reason.shown()
        coded = [f"{code.upper()} {names[code.upper()]}" if code.upper() in names else code for code in shown]
        return _listed(reason.label(len(shown)), coded, reason.words)

    return render


def _cpv(reason: _Reason) -> str:
    shown = reason.shown()
    line = f"CPV {', '.join(shown)}" if shown else f"CPV{reason.words.sep}{reason.words.not_given}"
    return _with_notice_values(line, reason)


def _buyer(reason: _Reason) -> str:
    shown = reason.shown()
    return _with_notice_values(_listed(reason.label(len(shown)), shown, reason.words), reason)


def _keywords(reason: _Reason) -> str:
    words = reason.words
    terms = [words.quoted(term) for term in reason.values]
    line = f"{reason.label(len(terms))}{words.sep}{', '.join(terms) if terms else words.keywords_without_terms}"
    fields = [value for value in reason.notice_values if value.lower() in _TEXT_FIELDS]
    excerpts = [value for value in reason.notice_values if value.lower() not in _TEXT_FIELDS]
    if excerpts:
        quoted = ", ".join(words.quoted(_shorten(excerpt, _EXCERPT_CHARS)) for excerpt in excerpts)
        return f"{line} ({words.notice}{words.sep}{quoted})"
    if len(set(field.lower() for field in fields)) == 1:  # found in one text only: say which
        return f"{line} ({words.text_fields[fields[0].lower()]})"
    return line


def _value(reason: _Reason) -> str:
    words = reason.words
    if reason.notice_values:
        money = _money(reason.notice_values[0])
        amount = format_money(money, reason.language) if money else reason.notice_values[0]
    else:
        amount = words.value_not_published
    line = f"{reason.label(1)}{words.sep}{amount}"
    bounds = _bounds(reason)
    return f"{line} ({bounds})" if bounds else line


def _bounds(reason: _Reason) -> str | None:
    words, language = reason.words, reason.language
    bounds = reason.positional
    low = _euros(bounds[0], language) if bounds else ""
    high = _euros(bounds[1], language) if len(bounds) > 1 else ""
    if low and high:
        if language == "fr" and low.endswith(f"{_NBSP}€") and high.endswith(f"{_NBSP}€"):
            low = low.removesuffix(f"{_NBSP}€")  # "entre 100 000 et 500 000 €"
        return words.between.format(low=low, high=high)
    if low:
        return words.at_least_amount.format(amount=low)
    if high:
        return words.at_most_amount.format(amount=high)
    return None


def _deadline(reason: _Reason) -> str:
    words = reason.words
    minimum = reason.values[0] if reason.values else None
    if minimum is not None and minimum.strip() in ("0", ""):
        minimum = None  # "at least 0 days" only says the deadline has not passed
    if not reason.notice_values:
        line = words.no_deadline
        return f"{line} ({words.no_deadline_at_least.format(days=minimum)})" if minimum else line
    deadline = _day(reason.notice_values[0])
    if deadline is None:
        line = f"{reason.label(1)}{words.sep}{reason.notice_values[0]}"
    else:
        days = (deadline - reason.match_day).days
        if days > 1:
            line = words.deadline_in_days.format(days=days)
        elif days == 1:
            line = words.deadline_in_one_day
        elif days == 0:
            line = words.deadline_today
        else:
            line = words.deadline_passed.format(date=format_date(deadline, reason.language))
    return f"{line} ({words.deadline_at_least.format(days=minimum)})" if minimum else line


def _flag(pick: Callable[[_Words], tuple[str, str]]) -> Callable[[_Reason], str]:
    def render(reason: _Reason) -> str:
        when_true, when_false = pick(reason.words)
        shown = reason.shown()
        wanted = shown[0].lower() if shown else ""
        if wanted in _TRUE:
            return when_true
        if wanted in _FALSE:
            return when_false
        return _listed(reason.label(len(shown)), shown, reason.words)

    return render


def _everything(reason: _Reason) -> str:
    return reason.words.everything


_RENDERERS: Final[Mapping[Criterion, Callable[[_Reason], str]]] = {
    Criterion.KIND: _labelled_list(_KIND_LABELS),
    Criterion.CPV: _cpv,
    Criterion.SECTOR: _labelled_list(None),
    Criterion.DEPARTMENT: _coded_list(DEPARTMENT_NAMES),
    Criterion.REGION: _coded_list(REGION_NAMES),
    Criterion.COUNTRY: _labelled_list(None),
    Criterion.KEYWORDS: _keywords,
    Criterion.VALUE: _value,
    Criterion.BUYER: _buyer,
    Criterion.BUYER_CATEGORY: _labelled_list(_BUYER_CATEGORY_LABELS),
    Criterion.PROCEDURE_TYPE: _labelled_list(_PROCEDURE_LABELS),
    Criterion.SME_SUITABLE: _flag(lambda words: words.sme),
    Criterion.RESERVED: _flag(lambda words: words.reserved),
    Criterion.DEADLINE: _deadline,
    Criterion.EVERYTHING: _everything,
}


def _flat(text: str) -> str:
    """Whitespace, newlines included, collapsed: a reason is one line."""
    return " ".join(text.split())


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:.") + "…"


def _money(text: str) -> Money | None:
    """`250000.00 EUR` (or a bare amount, in euros)."""
    parts = text.split()
    if not parts or len(parts) > 2:
        return None
    amount = _decimal(parts[0])
    currency = parts[1].upper() if len(parts) == 2 else _EUR
    if amount is None or amount < 0 or len(currency) != 3 or not currency.isalpha():
        return None
    return Money(amount=amount, currency=currency)


def _euros(text: str, language: Language) -> str:
    """A bound in euros, written for the reader; "" for an open bound; as given when it is not a number."""
    if not text:
        return ""
    amount = _decimal(text)
    if amount is None or amount < 0:
        return text
    return format_money(Money(amount=amount, currency=_EUR), language)


def _decimal(text: str) -> Decimal | None:
    try:
        amount = Decimal(text)
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def _day(text: str) -> date | None:
    """The day of an ISO date, or of an ISO datetime in Paris time (a naive one is UTC)."""
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        return _paris_day(datetime.fromisoformat(text))
    except ValueError:
        return None


def _paris_day(moment: datetime) -> date:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(PARIS).date()
