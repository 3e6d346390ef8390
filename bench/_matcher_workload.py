"""The matcher benchmark's workload: real notices, and synthetic subscriptions with documented distributions.

Everything is deterministic for a given seed, and the subscriptions form one stream: the first 10,000 of the
1,000,000 are the 10,000 workload, so the sizes are nested.

**Notices.** Every fixture under `tests/fixtures` that ingest parses (eForms, BOAMP, OCDS, purchase plans),
classified by the real classifier, each notice id once (the same BOAMP notice comes in several formats). The
Armenian OCDS sample (100 releases) is capped at its first three notices, so French notices are the majority:
84 notices, 51 in French; the others come from TED, the eForms SDK examples and the OCDS samples (United
Kingdom, Italy, Canada, Moldova...). A notice is matched when it is published (`published_at`, else the
classification date), which is what `min_days_left` is measured from.

**Subscriptions.** Shares are of all subscriptions unless said otherwise; "Zipf(s)" draws the item of rank r with
weight 1 / r^s; several values of one criterion are distinct.

- Geography, one of:
  - 45 % departments: 1 (50 %), 2 (20 %), 3 (12 %), 4 to 6 (13 %) or 7 to 12 (5 %) of the 101 departments,
    Zipf(0.7) over a population rank (the 50 most populous departments by INSEE 2021 population, roughly in
    that order, then the others in code order);
  - 25 % regions: 1 (75 %), 2 (20 %) or 3 (5 %) of the 18 regions, Zipf(0.8) over their population rank;
  - 4 % countries only: `FR` (70 %) or `FR` and one of `BE`, `LU`, `CH`, `DE`, `ES`, `IT` (30 %);
  - 26 % no geographic criterion at all: these also hear about notices from abroad.
- Subject, for the 70 % limited to departments or regions ("local"): CPV codes (56 %; 10 % of them with sectors
  too), else sectors (42 %), else nothing (2 %: everything in their area); then keywords for 28 % of them.
  For the 30 % without departments or regions ("national"), a narrow subject: CPV codes (70 %, 30 % of them
  with keywords too), sectors with keywords (15 %), or keywords alone (15 %).
  Overall: CPV 60 %, sectors 38 %, keywords 35 %, no subject criterion 1 %.
- CPV codes: local 1 (30 %), 2 (25 %), 3 (15 %), 4 to 6 (20 %) or 7 to 15 (10 %) codes, cut at 2 digits (5 %),
  3 (15 %), 4 (25 %), 5 (30 %) or all 8 (25 %); national 1 (50 %), 2 (30 %) or 3 to 4 (20 %) codes, cut at 3
  digits (5 %), 4 (25 %), 5 (35 %) or 8 (35 %). Each code is drawn from the codes of the real notices (15 % of
  the draws, weighted by how many notices carry it) or uniformly from the 9,454 codes of CPV 2008, then cut and
  padded with zeros (`45230000`).
- Sectors: 1 (55 %), 2 (30 %) or 3 (15 %) of the 22 sectors, Zipf(0.8) over the sectors ranked by how many real
  notices fall in them.
- Keywords: words drawn Zipf(0.9) from the vocabulary of the real titles (the French notices' and the 34 BOAMP
  summaries of `tests/fixtures/matcher`: about 700 words), ranked by how many titles use them. A word is kept in
  its most common spelling, without elision, when `schemas.filtering.text.tokens` makes a single token of it of
  at least 3 letters, and it is not a word of the procedure or too vague to watch alone ("marché", "lot",
  "fourniture", "prestation", "technique", "gestion"...).
  Phrases (about 700) are two consecutive such words, or two around a stop word ("travaux de voirie"),
  Zipf(1.0) by frequency. Query shapes: one word (35 %), two required words (15 %), 2 or 3 words joined by OR
  (20 %), a quoted phrase (10 %), a phrase OR a word (5 %), `(a OR b) c` (5 %), a word, two words or an OR
  group of three with a `-negated` word (10 %). 20 % search the title only. OR is never mixed with plain words
  without parentheses, so the queries mean the same whatever the precedence of OR.
- Value range, 15 %: `value_min` (70 % of them) from 25k, 40k, 90k, 215k, 1M, 5.5M EUR and `value_max` (60 %)
  from 90k, 215k, 500k, 1M, 5.5M EUR, at least one bound and min <= max; a notice without a value passes in
  65 % of them (`without_value: include`) and fails in 35 % (`exclude`).
- Kinds, 35 %: competition (60 %), planning and competition (20 %), result (10 %), planning (10 %).
- Buyer categories, 4 %: 1 or 2, Zipf(1.0) over municipality, state, department, region, hospital, utility,
  other-public. Procedure types, 3 %: open (50 %), open and restricted (25 %), restricted (10 %), competitive
  dialogue, negotiated with call, innovation partnership (5 % each).
- `sme_suitable: true` 1 %; `reserved` 1 % (half true, half false); `min_days_left` 5 % (5, 7, 10, 15, 20 or
  30 days); `buyers` 0.5 % (a real buyer of the French notices, by SIRET when it has one, else by name).
- Three subscriptions per subscriber; all active, each with an email delivery.

With these, a notice matches about 0.3 % of the subscriptions on average (French notices more, foreign ones
less): the benchmark reports the mean, median and maximum per size.
"""

from __future__ import annotations

import bisect
import csv
import itertools
import json
import random
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from schemas import ClassifiedNotice, Subscription
from schemas.codelists.cpv import CpvVocabulary
from schemas.codelists.sectors import SectorTaxonomy
from schemas.filtering.text import tokens
from schemas.notice import BuyerCategory, NoticeKind
from schemas.subscription import DeliverySettings, KeywordQuery, SubscriptionFilters, WithoutValue
from services.classifier.classify import Classifier
from services.ingest.sources import DocumentError, parse_document

FIXTURES = Path(__file__).parents[1] / "tests" / "fixtures"
_DEPARTMENTS_CSV = Path(__file__).parents[1] / "schemas" / "codelists" / "data" / "cog-departments@2025.csv"
SEED = 20_260_105
CLASSIFIED_AT = datetime(2026, 1, 5, 9, tzinfo=UTC)
_CREATED_AT = datetime(2025, 12, 1, tzinfo=UTC)
_ARMENIAN_NOTICES_KEPT = 3
VALIDATED = 2_000
_SUBSCRIPTIONS_PER_ACCOUNT = 3

# About the 50 most populous departments (INSEE 2021 population), most populous first; the rest follow in code order.
_POPULOUS_DEPARTMENTS = (
    "59",
    "75",
    "13",
    "69",
    "93",
    "92",
    "33",
    "44",
    "31",
    "62",
    "78",
    "77",
    "91",
    "94",
    "34",
    "38",
    "95",
    "76",
    "67",
    "06",
    "35",
    "83",
    "57",
    "974",
    "29",
    "49",
    "68",
    "60",
    "74",
    "42",
    "30",
    "56",
    "45",
    "54",
    "14",
    "64",
    "85",
    "17",
    "63",
    "01",
    "37",
    "27",
    "22",
    "84",
    "51",
    "72",
    "25",
    "71",
    "26",
    "66",
)
_REGIONS_BY_POPULATION = (
    "11",
    "84",
    "75",
    "76",
    "32",
    "44",
    "93",
    "52",
    "53",
    "28",
    "27",
    "24",
    "04",
    "01",
    "02",
    "94",
    "03",
    "06",
)
_NEIGHBOUR_COUNTRIES = ("BE", "LU", "CH", "DE", "ES", "IT")
_KINDS = (
    (0.60, ["competition"]),
    (0.20, ["planning", "competition"]),
    (0.10, ["result"]),
    (0.10, ["planning"]),
)
_BUYER_CATEGORIES = ("municipality", "state", "department", "region", "hospital", "utility", "other-public")
_PROCEDURES = (
    (0.50, ["open"]),
    (0.25, ["open", "restricted"]),
    (0.10, ["restricted"]),
    (0.05, ["comp-dial"]),
    (0.05, ["neg-w-call"]),
    (0.05, ["innovation"]),
)
_VALUE_MINIMA = (25_000, 40_000, 90_000, 215_000, 1_000_000, 5_500_000)
_VALUE_MAXIMA = (90_000, 215_000, 500_000, 1_000_000, 5_500_000)
_MIN_DAYS_LEFT = (5, 7, 10, 15, 20, 30)
# (share, (fewest, most)): how many values a criterion lists.
_DEPARTMENT_COUNTS = ((0.50, (1, 1)), (0.20, (2, 2)), (0.12, (3, 3)), (0.13, (4, 6)), (0.05, (7, 12)))
_REGION_COUNTS = ((0.75, (1, 1)), (0.20, (2, 2)), (0.05, (3, 3)))
_CPV_COUNTS = ((0.30, (1, 1)), (0.25, (2, 2)), (0.15, (3, 3)), (0.20, (4, 6)), (0.10, (7, 15)))
_SECTOR_COUNTS = ((0.55, (1, 1)), (0.30, (2, 2)), (0.15, (3, 3)))
_NATIONAL_CPV_COUNTS = ((0.50, (1, 1)), (0.30, (2, 2)), (0.20, (3, 4)))
# (share, digits kept): the level of the CPV hierarchy a subscription code stands for.
_CPV_LEVELS = ((0.05, 2), (0.15, 3), (0.25, 4), (0.30, 5), (0.25, 8))
_NATIONAL_CPV_LEVELS = ((0.05, 3), (0.25, 4), (0.35, 5), (0.35, 8))
_CPV_FROM_NOTICES = 0.10  # the share of subscription codes taken from the real notices' codes
_TITLE_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?")
_ELIDED = re.compile(r"^(?:jusqu|lorsqu|puisqu|quoiqu|qu|[cdjlmnst])'")
# Words of the procedure, or too vague to watch for alone, rather than words of the purchase.
_PROCEDURAL_WORDS = (
    "accord achat agit application article assistance associé besoin bon cadre chaque commande commune compte "
    "concerne conclusion consultation divers dont durée ensemble entre euro fourniture général gestion groupement "
    "ht lot marché maximum minimum mise mission montant non nouveau objet offre passation période présent "
    "prestation procédure public réalisation relatif relative service site suivant système technique ttc type ville"
)
_PROCEDURAL_STEMS = frozenset(stem for word in _PROCEDURAL_WORDS.split() for stem in tokens(word))

_T = TypeVar("_T")


class _Zipf:
    """Items drawn with weight 1 / rank^exponent, rank 1 being the first item."""

    def __init__(self, items: Sequence[_T], exponent: float) -> None:
        self.items = list(items)
        self._cumulative = list(itertools.accumulate(1 / rank**exponent for rank in range(1, len(items) + 1)))

    def draw(self, rng: random.Random) -> Any:
        return self.items[bisect.bisect(self._cumulative, rng.random() * self._cumulative[-1])]

    def distinct(self, rng: random.Random, count: int) -> list[Any]:
        chosen: dict[Any, None] = {}
        while len(chosen) < min(count, len(self.items)):
            chosen[self.draw(rng)] = None
        return list(chosen)


def _pick(rng: random.Random, shares: Sequence[tuple[float, _T]]) -> _T:
    roll = rng.random()
    for share, value in shares:
        roll -= share
        if roll < 0:
            return value
    return shares[-1][1]


def _count(rng: random.Random, shares: Sequence[tuple[float, tuple[int, int]]]) -> int:
    low, high = _pick(rng, shares)
    return rng.randint(low, high)


def load_notices() -> list[ClassifiedNotice]:
    """Every real fixture notice ingest can parse, classified; the Armenian sample capped (see module docstring)."""
    classifier = Classifier.load()
    notices: list[ClassifiedNotice] = []
    seen: set[str] = set()
    armenian = 0
    for path in sorted(FIXTURES.rglob("*")):
        if path.suffix not in (".xml", ".json", ".csv") or not path.is_file():
            continue
        try:
            parsed = parse_document(path.read_bytes(), filename=path.name)
        except DocumentError:
            continue  # reference data and deliberately broken fixtures
        for notice in parsed:
            if notice.notice_id in seen:
                continue  # the same notice in another format, or another version of it
            seen.add(notice.notice_id)
            if notice.language == "hy":
                armenian += 1
                if armenian > _ARMENIAN_NOTICES_KEPT:
                    continue
            notices.append(classifier.classify(notice, now=CLASSIFIED_AT))
    return notices


def matched_at(notice: ClassifiedNotice) -> datetime:
    """When the notice is matched: on publication."""
    return notice.published_at or CLASSIFIED_AT


def _boamp_summary_titles() -> list[str]:
    summary = json.loads((FIXTURES / "matcher" / "boamp_ad_summary.json").read_text(encoding="utf-8"))
    return [objet for _reference, objet, _deadline in summary.values()]


def _is_stop_word(word: str) -> bool:
    return not tokens(word)


def _keyword_stem(word: str) -> str | None:
    """The one token a subscriber's keyword stands for, or None when the word would not make a keyword."""
    stems = tokens(word)
    if len(stems) != 1 or len(stems[0]) < 3 or not stems[0].isalpha() or stems[0] in _PROCEDURAL_STEMS:
        return None
    return stems[0]


def _vocabulary(titles: list[str]) -> tuple[list[str], list[str]]:
    """Words and phrases of the titles, most frequent first (frequency = how many titles use them)."""
    stems: Counter[str] = Counter()
    spellings: dict[str, Counter[str]] = {}
    phrases: Counter[str] = Counter()
    for title in titles:
        words = [w.replace("’", "'") for w in _TITLE_WORD.findall(title.replace("\x92", "'").lower())]
        seen_stems, seen_phrases = set(), set()
        for word in words:
            stem = _keyword_stem(word)
            if stem is not None:
                spellings.setdefault(stem, Counter())[_ELIDED.sub("", word)] += 1
                seen_stems.add(stem)
        for first, second, third in itertools.zip_longest(words, words[1:], words[2:]):
            if second is None or _keyword_stem(first) is None:
                continue
            if _keyword_stem(second) is not None:
                seen_phrases.add(f"{first} {second}")
            elif third is not None and _is_stop_word(second) and _keyword_stem(third) is not None:
                seen_phrases.add(f"{first} {second} {third}")
        stems.update(seen_stems)
        phrases.update(seen_phrases)
    # Ties broken alphabetically so that the ranking does not depend on dict order.
    ranked_stems = sorted(stems, key=lambda s: (-stems[s], s))
    ranked_words = [spellings[s].most_common(1)[0][0] for s in ranked_stems]
    ranked_phrases = sorted(phrases, key=lambda p: (-phrases[p], p))
    return ranked_words, ranked_phrases


@dataclass(frozen=True)
class _Pools:
    departments: _Zipf
    regions: _Zipf
    notice_cpv: list[str]
    notice_cpv_cumulative: list[int]
    all_cpv: list[str]
    sectors: _Zipf
    words: _Zipf
    phrases: _Zipf
    buyer_categories: _Zipf
    buyers: list[str]


class Workload:
    """The notices, and the pools the subscriptions are drawn from."""

    def __init__(self, notices: list[ClassifiedNotice], *, seed: int = SEED) -> None:
        self.notices = notices
        self.seed = seed
        french_titles = [n.title for n in notices if n.language == "fr"] + _boamp_summary_titles()
        words, phrases = _vocabulary(french_titles)
        with _DEPARTMENTS_CSV.open(encoding="utf-8") as file:
            all_departments = [row["code"] for row in csv.DictReader(file)]
        departments = [*_POPULOUS_DEPARTMENTS, *(d for d in all_departments if d not in _POPULOUS_DEPARTMENTS)]
        cpv_counts = Counter(code for n in notices for code in n.all_cpv())
        notice_cpv = sorted(cpv_counts)
        sector_counts = Counter(s for n in notices for s in n.sectors)
        sector_ids = [s.id for s in SectorTaxonomy.load().sectors]
        sectors = sorted(sector_ids, key=lambda s: (-sector_counts[s], sector_ids.index(s)))
        buyers = sorted({n.buyer.national_id or n.buyer.name for n in notices if n.language == "fr"})
        self.pools = _Pools(
            departments=_Zipf(departments, 0.7),
            regions=_Zipf(_REGIONS_BY_POPULATION, 0.8),
            notice_cpv=notice_cpv,
            notice_cpv_cumulative=list(itertools.accumulate(cpv_counts[c] for c in notice_cpv)),
            all_cpv=sorted(CpvVocabulary.load()),
            sectors=_Zipf(sectors, 0.8),
            words=_Zipf(words, 0.9),
            phrases=_Zipf(phrases, 1.0),
            buyer_categories=_Zipf(_BUYER_CATEGORIES, 1.0),
            buyers=buyers,
        )

    @classmethod
    def load(cls, *, seed: int = SEED) -> Workload:
        return cls(load_notices(), seed=seed)

    def subscriptions(self, count: int) -> Iterator[Subscription]:
        """The first `count` subscriptions of the stream.

        Built without validation (see `_trusted`): validation would take most of the generation time at 1M. The
        first `VALIDATED` of every stream are also validated, and the run fails unless both objects are the same.
        """
        rng = random.Random(self.seed)
        for n in range(count):
            fields = self._subscription(rng, n)
            subscription = _trusted(Subscription, fields)
            if n < VALIDATED:
                validated = Subscription.model_validate(fields)
                if not _same(subscription, validated):
                    raise AssertionError(f"subscription {n} built without validation differs: {fields}")
            yield subscription

    def _subscription(self, rng: random.Random, n: int) -> dict[str, Any]:
        account = n // _SUBSCRIPTIONS_PER_ACCOUNT
        return {
            "subscription_id": f"sub_{n:07d}",
            "subscriber_id": f"acc_{account:06d}",
            "name": f"Veille {n % _SUBSCRIPTIONS_PER_ACCOUNT + 1}",
            "filters": self._filters(rng),
            "delivery": {"email": f"veille{account}@example.org"},
            "created_at": _CREATED_AT,
            "updated_at": _CREATED_AT,
        }

    def _filters(self, rng: random.Random) -> dict[str, Any]:
        pools, filters = self.pools, dict[str, Any]()
        geography = rng.random()
        if geography < 0.45:
            filters["departments"] = pools.departments.distinct(rng, _count(rng, _DEPARTMENT_COUNTS))
        elif geography < 0.70:
            filters["regions"] = pools.regions.distinct(rng, _count(rng, _REGION_COUNTS))
        elif geography < 0.74:
            filters["countries"] = ["FR"] if rng.random() < 0.7 else ["FR", rng.choice(_NEIGHBOUR_COUNTRIES)]
        if "departments" in filters or "regions" in filters:
            self._local_subject(rng, filters)
        else:
            self._national_subject(rng, filters)
        if rng.random() < 0.15:
            filters.update(self._value_range(rng))
        if rng.random() < 0.35:
            filters["kinds"] = _pick(rng, _KINDS)
        if rng.random() < 0.04:
            filters["buyer_categories"] = pools.buyer_categories.distinct(rng, rng.randint(1, 2))
        if rng.random() < 0.03:
            filters["procedure_types"] = _pick(rng, _PROCEDURES)
        if rng.random() < 0.01:
            filters["sme_suitable"] = True
        if rng.random() < 0.01:
            filters["reserved"] = rng.random() < 0.5
        if rng.random() < 0.05:
            filters["min_days_left"] = rng.choice(_MIN_DAYS_LEFT)
        if rng.random() < 0.005:
            filters["buyers"] = [rng.choice(pools.buyers)]
        return filters

    def _local_subject(self, rng: random.Random, filters: dict[str, Any]) -> None:
        """CPV, sectors and keywords of a subscription limited to some departments or regions."""
        subject = rng.random()
        if subject < 0.56:
            filters["cpv"] = self._cpv_codes(rng, _CPV_COUNTS, _CPV_LEVELS)
            if rng.random() < 0.10:
                filters["sectors"] = self.pools.sectors.distinct(rng, _count(rng, _SECTOR_COUNTS))
        elif subject < 0.98:
            filters["sectors"] = self.pools.sectors.distinct(rng, _count(rng, _SECTOR_COUNTS))
        if rng.random() < 0.28:
            filters["keywords"] = self._keywords(rng)

    def _national_subject(self, rng: random.Random, filters: dict[str, Any]) -> None:
        """Without departments or regions, a subscriber watches a narrow subject: precise codes, or keywords."""
        subject = rng.random()
        if subject < 0.70:
            filters["cpv"] = self._cpv_codes(rng, _NATIONAL_CPV_COUNTS, _NATIONAL_CPV_LEVELS)
            if rng.random() < 0.30:
                filters["keywords"] = self._keywords(rng)
            return
        if subject < 0.85:
            filters["sectors"] = self.pools.sectors.distinct(rng, _count(rng, _SECTOR_COUNTS))
        filters["keywords"] = self._keywords(rng)

    def _keywords(self, rng: random.Random) -> dict[str, Any]:
        return {"query": self._query(rng), "title_only": rng.random() < 0.20}

    def _cpv_codes(
        self, rng: random.Random, counts: Sequence[tuple[float, tuple[int, int]]], levels: Sequence[tuple[float, int]]
    ) -> list[str]:
        pools = self.pools
        codes: dict[str, None] = {}
        for _ in range(_count(rng, counts)):
            if rng.random() < _CPV_FROM_NOTICES:
                weights = pools.notice_cpv_cumulative
                code = pools.notice_cpv[bisect.bisect(weights, rng.random() * weights[-1])]
            else:
                code = rng.choice(pools.all_cpv)
            codes[code[: _pick(rng, levels)].ljust(8, "0")] = None
        return list(codes)

    def _query(self, rng: random.Random) -> str:
        words, phrases = self.pools.words, self.pools.phrases

        def phrase() -> str:
            return f'"{phrases.draw(rng)}"'

        shape = rng.random()
        if shape < 0.35:
            return str(words.draw(rng))
        if shape < 0.50:
            return " ".join(words.distinct(rng, 2))
        if shape < 0.70:
            return " OR ".join(words.distinct(rng, rng.randint(2, 3)))
        if shape < 0.80:
            return phrase()
        if shape < 0.85:
            return f"{phrase()} OR {words.draw(rng)}"
        if shape < 0.90:
            first, second, third = words.distinct(rng, 3)
            return f"({first} OR {second}) {third}"
        first, second, third, excluded = words.distinct(rng, 4)
        positive = _pick(rng, ((0.5, first), (0.25, f"{first} {second}"), (0.25, f"({first} OR {second} OR {third})")))
        return f"{positive} -{excluded}"

    def _value_range(self, rng: random.Random) -> dict[str, Any]:
        while True:
            low = rng.choice(_VALUE_MINIMA) if rng.random() >= 0.30 else None
            high = rng.choice(_VALUE_MAXIMA) if rng.random() >= 0.40 else None
            if (low is not None or high is not None) and (low is None or high is None or low <= high):
                break
        bounds: dict[str, Any] = {"without_value": "include" if rng.random() < 0.65 else "exclude"}
        if low is not None:
            bounds["value_min"] = Decimal(low)
        if high is not None:
            bounds["value_max"] = Decimal(high)
        return bounds


# How a value of `Workload._subscription` becomes what validation makes of it (the values are already canonical).
_CONVERSIONS: dict[str, Callable[[Any], Any]] = {
    "filters": lambda filters: _trusted(SubscriptionFilters, filters),
    "delivery": lambda delivery: _trusted(DeliverySettings, delivery),
    "keywords": lambda keywords: _trusted(KeywordQuery, keywords),
    "kinds": lambda kinds: [NoticeKind(kind) for kind in kinds],
    "buyer_categories": lambda categories: [BuyerCategory(category) for category in categories],
    "without_value": WithoutValue,
}

_M = TypeVar("_M", bound=BaseModel)


def _trusted(model: type[_M], given: dict[str, Any]) -> _M:
    """What validating `given` makes, for canonical values, without validation: the instance dictionary in field
    order (defaults filled in) and pydantic's slots. Much cheaper than validation or `model_construct` (whose
    per-field work, default factories included, dominated the generation of a million subscriptions)."""
    values = {}
    for name, field in model.model_fields.items():
        if name in given:
            value = given[name]
            values[name] = _CONVERSIONS[name](value) if name in _CONVERSIONS else value
        else:
            values[name] = field.default_factory() if field.default_factory else field.default  # type: ignore[call-arg]
    instance = model.__new__(model)
    object.__setattr__(instance, "__dict__", values)
    object.__setattr__(instance, "__pydantic_fields_set__", set(given))
    object.__setattr__(instance, "__pydantic_extra__", None)
    object.__setattr__(instance, "__pydantic_private__", None)
    return instance


def _same(built: Subscription, validated: Subscription) -> bool:
    return (
        built == validated
        and built.model_fields_set == validated.model_fields_set
        and built.filters.model_fields_set == validated.filters.model_fields_set
        and built.delivery.model_fields_set == validated.delivery.model_fields_set
        and list(built.__dict__) == list(validated.__dict__)
        and list(built.filters.__dict__) == list(validated.filters.__dict__)
        and built.model_dump_json() == validated.model_dump_json()
    )
