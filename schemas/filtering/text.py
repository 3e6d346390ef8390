"""The one text normaliser, applied to notice text and to subscription keywords alike (DESIGN.md §5).

Both sides go through the same steps, so a keyword matches whatever spelling of the same word a notice uses:

1. apostrophes unified (', ’, ‘, ʼ, and U+0092, which is how cp1252's ’ shows up in mis-decoded BOAMP text);
2. lower case, ligatures expanded (œ -> oe, æ -> ae, ß -> ss), accents stripped (NFKD, then the combining
   diacritical marks dropped: Latin, Greek and Cyrillic accents);
3. French elisions removed: l', d', qu', j', n', s', c', m', t' (and jusqu', lorsqu', puisqu', quoiqu');
4. split on anything that is not a letter or a digit ("station-service" -> station, service);
5. stop words dropped (a short list of French and English function words);
6. light French stemming, see `_stem`.

A multi-word keyword is a phrase: its tokens must appear consecutively in the notice text. Stop words are
dropped from phrases as well, so "travaux de voirie" also matches "travaux sur la voirie".
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import Final

# Which normaliser made a list of tokens: this module's source, and the Unicode tables NFKD reads. Tokens shipped
# with a notice (`ClassifiedNotice.search_tokens`) are used only when they were made by this very normaliser; after
# any change here (or during a rolling upgrade, from a classifier of another release) the text is tokenised again,
# which costs time, never a wrong match.
NORMALISER: Final = (
    f"{hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]}/unicode-{unicodedata.unidata_version}"
)

_APOSTROPHES = "’‘ʼ´`\x92"
# NFKD decomposes "ﬁ" and friends but leaves these letters whole.
_LIGATURES = (("œ", "oe"), ("æ", "ae"), ("ß", "ss"))
# A word and the apostrophe right after it, if any: an elided word ("l'", "qu'") is then dropped whole, in the same
# pass that finds the words (a separate substitution for elisions cost as much as finding the words).
_WORD = re.compile(r"[^\W_]+'?")
_ELIDED = frozenset(["jusqu'", "lorsqu'", "puisqu'", "quoiqu'", "qu'", "c'", "d'", "j'", "l'", "m'", "n'", "s'", "t'"])

_FRENCH_STOP_WORDS = (
    "a au aux avec ce ces cet cette dans de des du elle en est et il ils la le les leur leurs ou par pour qui que "
    "sa sans se ses son sont sur un une y"
)
_ENGLISH_STOP_WORDS = "a an and at by for from in of on or the to with"
_STOP_WORDS = frozenset(_FRENCH_STOP_WORDS.split()) | frozenset(_ENGLISH_STOP_WORDS.split())

# Plurals that no suffix rule maps back to their singular.
_IRREGULAR_PLURALS = {
    "travaux": "travail",
    "vitraux": "vitrail",
    "soupiraux": "soupirail",
    "emaux": "email",
    "baux": "bail",
    "yeux": "oeil",
    "materiaux": "materiau",
}


# The blocks of combining diacritical marks: the accents of Latin, Greek and Cyrillic letters once decomposed.
_COMBINING_MARKS = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+")


def tokens(text: str) -> list[str]:
    """Normalised, stemmed words of `text`, in order, stop words left out."""
    # map and filter run in C; `_token` is one cached call per word for both the stop word and the stem.
    return list(filter(None, map(_token, words(text))))


@lru_cache(maxsize=65_536)
def phrase_tokens(query_term: str) -> tuple[str, ...]:
    """The tokens a keyword stands for; they must appear consecutively. Empty when the term is only stop words."""
    return tuple(tokens(query_term))


def words(text: str) -> list[str]:
    """The folded words of `text` (steps 1-4: apostrophes, case, ligatures, accents, elisions), stop words kept,
    unstemmed: for callers with their own idea of which words count."""
    folded = text.lower()
    # str.replace runs in C; a translation table looks every character up in a dict.
    for apostrophe in _APOSTROPHES:
        folded = folded.replace(apostrophe, "'")
    if not folded.isascii():
        for ligature, letters in _LIGATURES:
            folded = folded.replace(ligature, letters)
        folded = _COMBINING_MARKS.sub("", unicodedata.normalize("NFKD", folded))
    found = _WORD.findall(folded)
    if "'" not in folded:
        return found
    return [word.rstrip("'") for word in found if word not in _ELIDED]


@lru_cache(maxsize=262_144)
def _token(word: str) -> str:
    """The stem of `word`; empty for a stop word."""
    return "" if word in _STOP_WORDS else _stem(word)


def _stem(word: str) -> str:
    """Light, deterministic French stemming in the spirit of Savoy's minimal stemmer.

    Only inflection is folded, never derivation, so unrelated words stay apart:
    - words with a digit, and words under 4 letters, are kept as they are;
    - plurals: a few irregular ones (travaux -> travail, matériaux -> matériau), -eaux -> -eau (réseaux),
      -yaux -> -yau (tuyaux), -aux -> -al (locaux),
      -eux/-oux -> -eu/-ou (jeux), otherwise a final -s is dropped (but not -ss);
    - feminine, past participle and infinitive endings: final -e and -r are dropped while the word keeps at
      least 4 letters (voirie, voiries -> voiri), then a doubled final letter is undoubled
      (nouvelle -> nouvel; installée, installé, installer -> instal).
    Singular and plural, masculine and feminine of the same word therefore share one stem.
    """
    if word in _IRREGULAR_PLURALS:
        return _IRREGULAR_PLURALS[word]
    if len(word) < 4 or not word.isalpha():
        return word
    if word.endswith(("eaux", "yaux")):  # réseaux -> réseau, tuyaux -> tuyau
        return word[:-1]
    if word.endswith("aux") and len(word) >= 5:
        return word[:-2] + "l"
    if word.endswith(("eux", "oux")):
        return word[:-1]
    if word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    while len(word) >= 5 and word[-1] in "er":
        word = word[:-1]
    if len(word) >= 5 and word[-1] == word[-2]:
        word = word[:-1]
    return word
