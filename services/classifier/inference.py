"""CPV codes inferred from a notice's title and description, for notices that publish none.

Purchase plans, many French MAPA notices and the JSON some buyers publish carry no CPV code. The inferrer reads
the French and English labels of the CPV 2008 vocabulary and a curated keyword table (`data/inference_keywords.csv`,
frequent procurement words mapped to the code whose label justifies them) and scores every code by three pieces of
evidence, all TF-IDF weighted over the labels:

- the code's own label (cosine similarity between the text and the label),
- its group and division, each a centroid of the labels below it, so that "travaux de voirie" pulls towards
  division 45 through every works label that says "travaux" even when no single label matches well,
- the keywords of the table found in the text, which reward the keyword's code, its group and its division.

Confidence is a softmax over the codes' scores with a "no evidence" alternative, summed per division: a
candidate's confidence is the probability mass of its division, discounted by how far it trails the best code of
that division. It estimates how likely the candidate's division is right; `bench/eval_classifier.py` measures it.
"""

from __future__ import annotations

import csv
import math
from array import array
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from schemas.codelists.data import data_file
from schemas.filtering.text import words as folded_words
from schemas.notice import CpvCandidate, Notice

_FRENCH_LABELS = "cpv_2008_fr.csv"
_ENGLISH_LABELS = "cpv_2008_en.csv"
_KEYWORDS = "inference_keywords.csv"
_LABEL_LANGUAGES = ("fr", "en")

# Scoring weights, set by reasoning about the score scales (cosines lie in [0, 1]), not fitted to any test set.
_GROUP_WEIGHT = 0.5
_DIVISION_WEIGHT = 0.5
_KEYWORD_CODE_WEIGHT = 0.6
_KEYWORD_GROUP_WEIGHT = 0.3
_KEYWORD_DIVISION_WEIGHT = 0.6
_OTHER_LANGUAGE_WEIGHT = 0.6  # labels in the other label language still match shared words (transport, service)
_DESCRIPTION_WEIGHT = 0.5  # the title names the purchase; descriptions repeat it among boilerplate
_DESCRIPTION_CHARS = 1000  # the object comes first; conditions and deadlines follow
_TEMPERATURE = 0.15
_NO_EVIDENCE_SCORE = 0.35  # a text whose best score stays below this is more likely unexplained than explained
_POOL = 300  # codes that share the probability mass; the rest are negligible
_CENTROID_FEATURES = 200  # a prefix's strongest features; the long tail weighs little and costs memory

# Function words of French and English, and the procurement boilerplate that says nothing about the purchase.
_STOPWORD_TEXT = """
    a au aux avec ce ces cet cette dans de des du en et il elle est etre la le les leur leurs ou par pour qui que
    sa se ses son sont sur sous un une y compris afin ainsi entre chez vers selon dont non plus tout tous toute
    toutes autre autres divers diverse diverses etc lors
    an and are as at be by for from in into is it its of on or other than that the their these this those to was
    were with within which without including
    marche marches accord accords cadre lot lots consultation procedure objet present presente presents
    presentes relatif relative relatifs relatives concernant notamment ensemble titre besoin besoins
    commune communes ville villes communaute agglomeration departement departemental departementale
    annee annees mois duree contract contracts tender tenders procurement framework agreement council
"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def _tokens(text: str) -> list[str]:
    """The words of a French or English text as the inferrer compares them: folded by the one text normaliser
    (case, accents, ligatures, elisions), then function words and boilerplate dropped and lightly stemmed. The
    stop words and the stemming are the inferrer's own: it compares texts with CPV labels, not with queries."""
    return [_stem(word) for word in folded_words(text) if word not in _STOPWORDS and _is_word(word)]


def _is_word(word: str) -> bool:
    return len(word) > 1 and not word.isdigit()


def _stem(word: str) -> str:
    """Fold plural and feminine endings so that 'denrées', 'denrée' and 'denree' meet, as do 'supplies' and
    'supply'. Deliberately light: a wrong merge costs more than a missed one, and labels are short."""
    if len(word) <= 3:
        return word
    for suffix, replacement in (("eaux", "eau"), ("aux", "al"), ("ies", "y")):
        if word.endswith(suffix) and len(word) > len(suffix) + 2:
            return word[: -len(suffix)] + replacement
    if word[-1] in "sx" and not word.endswith("ss"):
        word = word[:-1]
    if word.endswith("e") and len(word) > 4:
        word = word[:-1]
    return word


def _features(words: list[str]) -> Iterable[str]:
    """Every word and every pair of consecutive words: phrases ('espaces verts') weigh more than their words."""
    yield from words
    for start in range(len(words) - 1):
        yield f"{words[start]} {words[start + 1]}"


def _vector(words: list[str], idf: dict[str, float], weight: float = 1.0) -> dict[str, float]:
    counts: dict[str, int] = defaultdict(int)
    for feature in _features(words):
        if feature in idf:
            counts[feature] += 1
    return {feature: weight * (1 + math.log(count)) * idf[feature] for feature, count in counts.items()}


def _normalised(vector: dict[str, float]) -> dict[str, float]:
    norm = math.sqrt(sum(value * value for value in vector.values()))
    return {feature: value / norm for feature, value in vector.items()} if norm else {}


class _Postings:
    """Feature -> the keys (codes or prefixes) whose vector has it, with the weight: one flat array of positions and
    one of weights, sliced per feature by an offset array (a few MB where per-feature lists would take tens)."""

    def __init__(self, vectors: dict[str, dict[str, float]], feature_ids: dict[str, int]) -> None:
        self.keys = sorted(vectors)
        self._feature_ids = feature_ids
        by_feature: list[list[tuple[int, float]]] = [[] for _ in range(len(feature_ids))]
        for position, key in enumerate(self.keys):
            for feature, value in vectors[key].items():
                by_feature[feature_ids[feature]].append((position, value))
        self._offsets = array("I", [0])
        self._positions = array("I")
        self._weights = array("f")
        for postings in by_feature:
            self._positions.extend(position for position, _value in postings)
            self._weights.extend(value for _position, value in postings)
            self._offsets.append(len(self._positions))

    def dot(self, query: dict[str, float]) -> dict[str, float]:
        """The dot product of the query with every vector that shares a feature with it, by key."""
        scores: dict[int, float] = defaultdict(float)
        positions, weights, offsets = self._positions, self._weights, self._offsets
        for feature, weight in query.items():
            feature_id = self._feature_ids.get(feature)
            if feature_id is not None:
                for slot in range(offsets[feature_id], offsets[feature_id + 1]):
                    scores[positions[slot]] += weight * weights[slot]
        return {self.keys[position]: score for position, score in scores.items()}


@dataclass(frozen=True)
class _Keyword:
    words: str  # the normalised phrase, words separated by one space
    code: str


class CpvInferrer:
    """Infers CPV codes from a notice's text; load once with `load()`, then `infer` is pure and fast."""

    def __init__(
        self,
        labels: dict[str, dict[str, str]],
        keywords: dict[str, str],
    ) -> None:
        """`labels`: language ('fr', 'en') -> 8-digit code -> label; `keywords`: keyword phrase -> 8-digit code."""
        codes = {code for by_code in labels.values() for code in by_code}
        if not codes:
            raise ValueError("no CPV labels to infer from; check the CPV data files")
        unknown = sorted(code for code in keywords.values() if code not in codes)
        if unknown:
            raise ValueError(f"keyword codes {unknown} are not CPV 2008 codes; correct {_KEYWORDS}")
        words = {
            language: {code: _tokens(label) for code, label in by_code.items()} for language, by_code in labels.items()
        }
        # Document frequency over codes: a feature in both labels of one code counts once.
        document_features: dict[str, set[str]] = defaultdict(set)
        for by_code in words.values():
            for code, label_words in by_code.items():
                document_features[code].update(_features(label_words))
        frequency: dict[str, int] = defaultdict(int)
        for features in document_features.values():
            for feature in features:
                frequency[feature] += 1
        self._idf = {feature: math.log(len(codes) / count) + 1.0 for feature, count in frequency.items()}
        # Keyword phrases are features too, even when no label contains them ("voirie" does, "intérim" does not).
        self._keywords = _keyword_list(keywords)
        for keyword in self._keywords:
            self._idf.setdefault(keyword.words, math.log(len(codes)) + 1.0)

        label_vectors = {
            language: {code: _normalised(_vector(label_words, self._idf)) for code, label_words in by_code.items()}
            for language, by_code in words.items()
        }
        feature_ids = {feature: position for position, feature in enumerate(self._idf)}
        self._label_postings = {
            language: _Postings(vectors, feature_ids) for language, vectors in label_vectors.items()
        }
        self._group_postings = _Postings(self._centroids(label_vectors, 3), feature_ids)
        self._division_postings = _Postings(self._centroids(label_vectors, 2), feature_ids)

    @staticmethod
    def _centroids(label_vectors: dict[str, dict[str, dict[str, float]]], digits: int) -> dict[str, dict[str, float]]:
        """A vector per prefix of `digits` digits (division, group) of the words of the labels under it.

        Weighted like TF-IDF with the prefixes as documents: a feature weighs the share of the prefix's codes whose
        label has it, times its rarity among prefixes. 'Services' is in most divisions and says little; 'travaux' is
        in almost every label of division 45 and in few others, so it says 45.
        """
        members: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        sizes: dict[str, set[str]] = defaultdict(set)
        for vectors in label_vectors.values():
            for code, vector in vectors.items():
                sizes[code[:digits]].add(code)
                for feature in vector:
                    members[code[:digits]][feature].add(code)
        prefix_frequency: dict[str, int] = defaultdict(int)
        for features in members.values():
            for feature in features:
                prefix_frequency[feature] += 1
        centroids = {}
        for prefix, features in members.items():
            weights = {
                feature: len(codes) / len(sizes[prefix]) * math.log(len(members) / prefix_frequency[feature])
                for feature, codes in features.items()
            }
            strongest = sorted(weights.items(), key=lambda item: (-item[1], item[0]))[:_CENTROID_FEATURES]
            centroids[prefix] = _normalised(dict(strongest))
        return centroids

    @classmethod
    def load(cls) -> CpvInferrer:
        """The inferrer built from the data shipped with the classifier: the French CPV 2008 labels, the English ones
        when `data/cpv_2008_en.csv` is present, and `data/inference_keywords.csv`."""
        try:
            english: Path | None = data_file(_ENGLISH_LABELS)
        except FileNotFoundError:
            english = None
        return cls.from_files(data_file(_FRENCH_LABELS), english, data_file(_KEYWORDS))

    @classmethod
    def from_files(cls, french: Path, english: Path | None, keywords: Path) -> CpvInferrer:
        """Read the official French list (`CODE,FR`, codes with check digit), English labels (`code,label`) and the
        keyword table (`keyword,code`)."""
        labels = {"fr": _read_labels(french, "CODE", "FR")}
        if english is not None:
            labels["en"] = _read_labels(english, "code", "label")
        return cls(labels, _read_keywords(keywords))

    def infer(self, title: str, description: str | None, language: str, *, k: int = 5) -> list[CpvCandidate]:
        """Up to `k` CPV codes for a notice's text, best first, none of them an ancestor of another; [] when the text
        says nothing the CPV labels or keywords know."""
        if k < 1:
            raise ValueError(f"k must be at least 1 to infer any code; got {k}")
        title_words = _tokens(title)
        description_words = _tokens((description or "")[:_DESCRIPTION_CHARS])
        query = _vector(title_words, self._idf)
        for feature, value in _vector(description_words, self._idf, _DESCRIPTION_WEIGHT).items():
            query[feature] = query.get(feature, 0.0) + value
        query = _normalised(query)
        if not query:
            return []
        # Keyword phrases are looked for within the title or the description, never across the two.
        scores = self._scores(query, f" {' '.join(title_words)} | {' '.join(description_words)} ", language)
        if not scores:
            return []
        return self._candidates(scores, k)

    def _scores(self, query: dict[str, float], text: str, language: str) -> dict[str, float]:
        label_scores: dict[str, float] = {}
        for label_language, postings in self._label_postings.items():
            # An unknown language (or an English text labelled 'pt') compares with every label at full weight.
            weight = 1.0 if language not in _LABEL_LANGUAGES or language == label_language else _OTHER_LANGUAGE_WEIGHT
            for code, score in postings.dot(query).items():
                label_scores[code] = max(label_scores.get(code, 0.0), weight * score)
        groups = self._group_postings.dot(query)
        divisions = self._division_postings.dot(query)
        boosted: dict[str, float] = defaultdict(float)
        for keyword in self._keywords:
            if f" {keyword.words} " in text:
                # A longer phrase is more specific: "maîtrise d'œuvre" outweighs the "réhabilitation" it designs.
                length = keyword.words.count(" ") + 1
                boosted[keyword.code] += _KEYWORD_CODE_WEIGHT * length
                groups[keyword.code[:3]] = groups.get(keyword.code[:3], 0.0) + _KEYWORD_GROUP_WEIGHT * length
                divisions[keyword.code[:2]] = divisions.get(keyword.code[:2], 0.0) + _KEYWORD_DIVISION_WEIGHT * length
        return {
            code: label_scores.get(code, 0.0)
            + boosted.get(code, 0.0)
            + _GROUP_WEIGHT * groups.get(code[:3], 0.0)
            + _DIVISION_WEIGHT * divisions.get(code[:2], 0.0)
            for code in label_scores.keys() | boosted.keys()
        }

    def _candidates(self, scores: dict[str, float], k: int) -> list[CpvCandidate]:
        # Ties are broken by code so that the result never depends on dictionary order.
        pool = sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:_POOL]
        best = pool[0][1]
        weights = {code: math.exp((score - best) / _TEMPERATURE) for code, score in pool}
        total = sum(weights.values()) + math.exp((_NO_EVIDENCE_SCORE - best) / _TEMPERATURE)
        division_mass: dict[str, float] = defaultdict(float)
        division_best: dict[str, float] = {}
        for code, weight in weights.items():
            division_mass[code[:2]] += weight / total
            division_best[code[:2]] = max(division_best.get(code[:2], 0.0), weight)
        confidence = {
            code: division_mass[code[:2]] * weight / division_best[code[:2]] for code, weight in weights.items()
        }
        ranked = sorted(pool, key=lambda item: (-confidence[item[0]], -item[1], item[0]))
        chosen: list[CpvCandidate] = []
        for code, _score in ranked:
            if any(_related(code, other.code) for other in chosen):
                continue
            chosen.append(CpvCandidate(code=code, confidence=round(min(1.0, confidence[code]), 4)))
            if len(chosen) == k:
                break
        return chosen


def _keyword_list(keywords: dict[str, str]) -> list[_Keyword]:
    by_words: dict[str, tuple[str, str]] = {}
    for phrase, code in keywords.items():
        words = " ".join(_tokens(phrase))
        if not words:
            raise ValueError(f"keyword {phrase!r} has only function words; remove it from {_KEYWORDS}")
        if words in by_words:
            raise ValueError(
                f"keywords {by_words[words][0]!r} and {phrase!r} read the same once normalised; keep one in {_KEYWORDS}"
            )
        by_words[words] = (phrase, code)
    return [_Keyword(words, code) for words, (_phrase, code) in by_words.items()]


def _related(code: str, other: str) -> bool:
    """Whether one code is the other or one of its ancestors (45000000 and 45233140)."""
    return code.startswith(other.rstrip("0")) or other.startswith(code.rstrip("0"))


def texts_for_inference(notice: Notice) -> tuple[str, str | None, str]:
    """The title, description and language to infer a notice's CPV from: its French or English text when it has one
    (the CPV labels exist in those two languages), else its own, whose description then ends with the lots' titles
    (lots are published in the notice's language only)."""
    if notice.language not in _LABEL_LANGUAGES:
        for language in _LABEL_LANGUAGES:
            translation = notice.translations.get(language)
            if translation is not None:
                return translation.title, translation.description, language
    title, description = notice.title, notice.description
    lot_titles = [lot.title for lot in notice.lots if lot.title and lot.title != title]
    if lot_titles:
        description = "\n".join([description or "", *lot_titles]).strip()
    return title, description, notice.language


def _read_labels(path: Path, code_column: str, label_column: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            code = (row.get(code_column) or "").split("-")[0]
            if len(code) != 8 or not code.isdigit():
                raise ValueError(f"{path.name} line {line}: {code_column} {row.get(code_column)!r} is not a CPV code")
            labels[code] = (row.get(label_column) or "").strip()
    return labels


def _read_keywords(path: Path) -> dict[str, str]:
    keywords: dict[str, str] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            phrase, code = (row.get("keyword") or "").strip(), (row.get("code") or "").strip()
            if not phrase or len(code) != 8 or not code.isdigit():
                raise ValueError(f"{path.name} line {line}: expected 'keyword,code' with an 8-digit code; got {row}")
            if phrase in keywords:
                raise ValueError(f"{path.name} line {line}: keyword {phrase!r} is listed twice; keep one code")
            keywords[phrase] = code
    return keywords
