"""What a subscription's filters mean: the one definition of every criterion (DESIGN.md §2, §5).

Every non-empty criterion must hold; inside one criterion any listed value will do:
- kinds, sectors, departments, regions, countries, buyer_categories, procedure_types: the notice has one of the
  values;
- cpv: a subscription code covers every code that starts with its significant prefix, the code without its trailing
  zeros but at least 2 digits (45000000 -> 45, 55300000 -> 553, 45233140 -> 4523314); the notice's main,
  additional and lot codes all count, and a notice without any counts as its best inferred code;
- keywords: the query language of `schemas.filtering.query`, over the title and the description, or the title
  alone;
- value_min / value_max: inclusive bounds on the notice's value in euros (`value_eur`); a notice without one passes
  when `without_value` is `include`, fails when it is `exclude`;
- buyers: a 14-digit SIRET matches that establishment, a 9-digit SIREN every establishment of the body, anything
  else the buyer's name, compared through the text normaliser;
- sme_suitable, reserved: true asks for notices flagged so, false for notices flagged otherwise (an unknown SME
  flag passes neither);
- min_days_left: the deadline is at least that many days after matching; a notice without a deadline (planning,
  award) passes;
- a subscription with no criterion matches every notice.

`CompiledFilters` is a subscription's filters prepared once (query parsed, prefixes computed); `NoticeView` is a
notice prepared once. Both the index and the brute-force reference call `reasons`, so they cannot disagree on
what matches, only on which subscriptions they look at.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from schemas.alert import Criterion, MatchReason
from schemas.filtering.query import Query, SearchText, matched_terms, parse_keyword_query, required_tokens
from schemas.filtering.text import NORMALISER, tokens
from schemas.notice import ClassifiedNotice, Notice, SearchTokens
from schemas.subscription import SubscriptionFilters, WithoutValue

_DIGITS = re.compile(r"\d+")
_SIRET_DIGITS = 14
_SIREN_DIGITS = 9
_EVERYTHING = (MatchReason(criterion=Criterion.EVERYTHING),)


def cpv_prefix(code: str) -> str:
    """The part of a CPV code that a subscription code stands for: 45000000 -> 45, 45233140 -> 4523314."""
    significant = code.rstrip("0")
    return significant if len(significant) >= 2 else code[:2]


def buyer_keys(value: str) -> str:
    """The key a subscription's buyer value is looked up under: `siret:`, `siren:` or `name:`."""
    digits = "".join(_DIGITS.findall(value))
    if len(digits) == len(value.replace(" ", "").replace(".", "")) and len(digits) in (_SIRET_DIGITS, _SIREN_DIGITS):
        return f"{'siret' if len(digits) == _SIRET_DIGITS else 'siren'}:{digits}"
    return "name:" + " ".join(tokens(value))


def _flag(value: bool | None) -> str | None:
    return None if value is None else ("true" if value else "false")


@dataclass(frozen=True, slots=True)
class CompiledFilters:
    """A subscription's filters, prepared once for matching. Empty tuples mean "not restricted"."""

    kinds: tuple[str, ...]
    cpv: tuple[tuple[str, str], ...]  # (code as asked, significant prefix)
    sectors: tuple[str, ...]
    departments: tuple[str, ...]
    regions: tuple[str, ...]
    countries: tuple[str, ...]
    buyer_categories: tuple[str, ...]
    procedure_types: tuple[str, ...]
    buyers: tuple[tuple[str, str], ...]  # (value as asked, key)
    sme_suitable: str | None
    reserved: str | None
    query: Query | None
    query_text: str | None
    title_only: bool
    value_min: Decimal | None
    value_max: Decimal | None
    without_value: WithoutValue
    min_days_left: int | None

    @classmethod
    def of(cls, filters: SubscriptionFilters) -> CompiledFilters:
        """Raises `KeywordQuerySyntaxError` for a keyword query that does not parse."""
        intern = sys.intern  # a million subscriptions share a few hundred codes
        keywords = filters.keywords
        return cls(
            kinds=tuple(intern(kind.value) for kind in filters.kinds),
            cpv=tuple((intern(code), intern(cpv_prefix(code))) for code in filters.cpv),
            sectors=tuple(map(intern, filters.sectors)),
            departments=tuple(map(intern, filters.departments)),
            regions=tuple(map(intern, filters.regions)),
            countries=tuple(map(intern, filters.countries)),
            buyer_categories=tuple(intern(category.value) for category in filters.buyer_categories),
            procedure_types=tuple(map(intern, filters.procedure_types)),
            buyers=tuple((value, intern(buyer_keys(value))) for value in filters.buyers),
            sme_suitable=_flag(filters.sme_suitable),
            reserved=_flag(filters.reserved),
            query=None if keywords is None else parse_keyword_query(keywords.query),
            query_text=None if keywords is None else keywords.query,
            title_only=bool(keywords and keywords.title_only),
            value_min=filters.value_min,
            value_max=filters.value_max,
            without_value=filters.without_value,
            min_days_left=filters.min_days_left,
        )


@dataclass(frozen=True, slots=True)
class NoticeView:
    """What matching reads from a notice, computed once per notice."""

    kind: str
    cpv: tuple[str, ...]
    cpv_prefixes: frozenset[str]
    sectors: frozenset[str]
    departments: frozenset[str]
    regions: frozenset[str]
    countries: frozenset[str]
    buyer_category: str | None
    procedure: str | None
    buyer_keys: frozenset[str]
    buyer_name: str
    sme_suitable: str | None
    reserved: str
    title: SearchText
    description: SearchText
    value_eur: Decimal | None
    deadline: datetime | None

    @classmethod
    def of(cls, notice: ClassifiedNotice, *, text: bool = True) -> NoticeView:
        """`text=False` leaves the title and description out (tokenising them is most of the cost when the notice
        does not carry their tokens): only for filters without keywords, which never read them."""
        # Tolerate the check-digit form (45000000-7) should a source let it through.
        cpv = tuple(dict.fromkeys(code.split("-")[0].strip() for code in notice.all_cpv()))
        if not cpv and notice.cpv_inferred:
            # A notice without codes (a purchase plan, a MAPA) counts as its best inferred code, as its sectors do.
            cpv = (notice.cpv_inferred[0].code,)
        keys = {"name:" + " ".join(tokens(notice.buyer.name))}
        digits = "".join(_DIGITS.findall(notice.buyer.national_id or ""))
        if len(digits) == _SIRET_DIGITS:
            keys |= {f"siret:{digits}", f"siren:{digits[:_SIREN_DIGITS]}"}
        elif len(digits) == _SIREN_DIGITS:
            keys.add(f"siren:{digits}")
        title, description = _search_texts(notice) if text else (_NO_TEXT, _NO_TEXT)
        return cls(
            kind=notice.kind.value,
            cpv=cpv,
            cpv_prefixes=frozenset(code[:n] for code in cpv for n in range(2, len(code) + 1)),
            sectors=frozenset(notice.sectors),
            departments=frozenset(notice.departments),
            regions=frozenset(notice.regions),
            countries=frozenset(notice.countries),
            buyer_category=None if notice.buyer_category is None else notice.buyer_category.value,
            procedure=notice.procedure,
            buyer_keys=frozenset(keys),
            buyer_name=notice.buyer.name,
            sme_suitable=_flag(notice.flags.sme_suitable),
            reserved=_flag(notice.flags.reserved) or "false",
            title=title,
            description=description,
            value_eur=notice.value_eur,
            deadline=notice.deadline,
        )

    def texts(self, title_only: bool) -> tuple[SearchText, ...]:
        return (self.title,) if title_only else (self.title, self.description)

    @property
    def words(self) -> frozenset[str]:
        return self.title.words | self.description.words


_NO_TEXT = SearchText(())
# About 80 kB of JSON; real descriptions have a few hundred tokens.
MAX_SHIPPED_TOKENS = 10_000


def _search_texts(notice: ClassifiedNotice) -> tuple[SearchText, SearchText]:
    """The title and description as searched: the classifier's tokens when this normaliser made them (tokenising
    a long description is most of preparing a notice), else the text tokenised here."""
    shipped = notice.search_tokens
    if shipped is None or shipped.normaliser != NORMALISER:
        return SearchText.of(notice.title), SearchText.of(notice.description)
    return SearchText(shipped.title), SearchText(shipped.description)


def search_tokens_of(notice: Notice) -> SearchTokens | None:
    """The notice's title and description tokenised by this normaliser, for `ClassifiedNotice.search_tokens`; None
    for a text of more than `MAX_SHIPPED_TOKENS` tokens, which its readers tokenise themselves rather than have the
    message double in size (a broker refuses messages above its limit, 1 MB by default)."""
    title = tokens(notice.title) if notice.title else []
    description = tokens(notice.description) if notice.description else []
    if len(title) + len(description) > MAX_SHIPPED_TOKENS:
        return None
    return SearchTokens(normaliser=NORMALISER, title=title, description=description)


# Marks the keys of a notice's title, for queries on the title alone (tokens are letters and digits only).
TITLE_MARK = "^"


def search_keys(view: NoticeView) -> frozenset[str]:
    """The tokens of the notice's title and description, and those of its title marked with `TITLE_MARK`: what a
    store of notices keeps to find, before matching, those a keyword query can match (`query_search_keys`)."""
    return view.words | {TITLE_MARK + token for token in view.title.words}


def query_search_keys(filters: CompiledFilters) -> frozenset[str] | None:
    """Keys of which every notice `filters` match has one among its `search_keys`: a necessary condition, never a
    sufficient one. None when the filters have no keyword query, or one without necessary tokens."""
    if filters.query is None:
        return None
    required = required_tokens(filters.query)
    if not required:
        return None
    return frozenset(TITLE_MARK + token for token in required) if filters.title_only else required


def reasons(filters: CompiledFilters, view: NoticeView, now: datetime) -> tuple[MatchReason, ...] | None:
    """Why the filters match the notice, one reason per criterion they set, or None when they do not match."""
    found: list[MatchReason] = []
    for criterion, asked, present in (
        (Criterion.KIND, filters.kinds, frozenset((view.kind,))),
        (Criterion.SECTOR, filters.sectors, view.sectors),
        (Criterion.DEPARTMENT, filters.departments, view.departments),
        (Criterion.REGION, filters.regions, view.regions),
        (Criterion.COUNTRY, filters.countries, view.countries),
        (Criterion.BUYER_CATEGORY, filters.buyer_categories, frozenset(_present(view.buyer_category))),
        (Criterion.PROCEDURE_TYPE, filters.procedure_types, frozenset(_present(view.procedure))),
        (Criterion.SME_SUITABLE, _present(filters.sme_suitable), frozenset(_present(view.sme_suitable))),
        (Criterion.RESERVED, _present(filters.reserved), frozenset((view.reserved,))),
    ):
        if asked:
            values = [value for value in asked if value in present]
            if not values:
                return None
            found.append(MatchReason(criterion=criterion, values=values, notice_values=values))
    for reason in (
        _cpv_reason(filters, view),
        _buyer_reason(filters, view),
        _keyword_reason(filters, view),
        _value_reason(filters, view),
        _deadline_reason(filters, view, now),
    ):
        if reason is False:
            return None
        if reason is not True:
            found.append(reason)
    return tuple(_in_criterion_order(found)) or _EVERYTHING


def verified(filters: CompiledFilters, view: NoticeView, now: datetime) -> bool:
    """Whether the criteria that set membership cannot decide hold: keywords, value range, deadline.

    The index decides the others exactly and calls this on its candidates only; it builds no reason, to stay fast.
    """
    if filters.query is not None and matched_terms(filters.query, view.texts(filters.title_only)) is None:
        return False
    if (filters.value_min is not None or filters.value_max is not None) and not _value_holds(filters, view):
        return False
    days = filters.min_days_left
    return days is None or view.deadline is None or view.deadline - now >= timedelta(days=days)


def subscription_matches(
    filters: SubscriptionFilters, notice: ClassifiedNotice, *, now: datetime
) -> tuple[MatchReason, ...] | None:
    """Why `filters` match `notice` at `now`, or None. Parses the filters each call: for one-off checks."""
    return reasons(CompiledFilters.of(filters), NoticeView.of(notice), now)


# A criterion check answers True (not restricted), False (fails) or the reason it holds.
_Check = MatchReason | bool


def _present(value: str | None) -> tuple[str, ...]:
    return () if value is None else (value,)


def _cpv_reason(filters: CompiledFilters, view: NoticeView) -> _Check:
    if not filters.cpv:
        return True
    asked = [code for code, prefix in filters.cpv if prefix in view.cpv_prefixes]
    if not asked:
        return False
    prefixes = [cpv_prefix(code) for code in asked]
    covered = [code for code in view.cpv if any(code.startswith(prefix) for prefix in prefixes)]
    return MatchReason(criterion=Criterion.CPV, values=asked, notice_values=covered)


def _buyer_reason(filters: CompiledFilters, view: NoticeView) -> _Check:
    if not filters.buyers:
        return True
    asked = [value for value, key in filters.buyers if key in view.buyer_keys]
    if not asked:
        return False
    return MatchReason(criterion=Criterion.BUYER, values=asked, notice_values=[view.buyer_name])


def _keyword_reason(filters: CompiledFilters, view: NoticeView) -> _Check:
    if filters.query is None:
        return True
    terms = matched_terms(filters.query, view.texts(filters.title_only))
    if terms is None:
        return False
    fields = ["title"] if filters.title_only else ["title", "description"]
    return MatchReason(criterion=Criterion.KEYWORDS, values=[term.text for term in terms], notice_values=fields)


def _value_reason(filters: CompiledFilters, view: NoticeView) -> _Check:
    low, high = filters.value_min, filters.value_max
    if low is None and high is None:
        return True
    if not _value_holds(filters, view):
        return False
    bounds = ["" if low is None else str(low), "" if high is None else str(high)]
    shown = [] if view.value_eur is None else [f"{view.value_eur} EUR"]
    return MatchReason(criterion=Criterion.VALUE, values=bounds, notice_values=shown)


def _value_holds(filters: CompiledFilters, view: NoticeView) -> bool:
    low, high, value = filters.value_min, filters.value_max, view.value_eur
    if value is None:
        return filters.without_value is WithoutValue.INCLUDE
    return (low is None or value >= low) and (high is None or value <= high)


def _deadline_reason(filters: CompiledFilters, view: NoticeView, now: datetime) -> _Check:
    days = filters.min_days_left
    if days is None:
        return True
    if view.deadline is None:
        return MatchReason(criterion=Criterion.DEADLINE, values=[str(days)], notice_values=[])
    if view.deadline - now < timedelta(days=days):
        return False
    return MatchReason(criterion=Criterion.DEADLINE, values=[str(days)], notice_values=[view.deadline.isoformat()])


_ORDER = {criterion: position for position, criterion in enumerate(Criterion)}


def _in_criterion_order(found: list[MatchReason]) -> list[MatchReason]:
    return sorted(found, key=lambda reason: _ORDER[reason.criterion])
