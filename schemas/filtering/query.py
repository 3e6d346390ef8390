"""The keyword query language of subscriptions: parsing, matching, and what the index may post it under.

The language (see `KeywordQuery` in schemas/subscription.py):
- words separated by spaces are all required: `voirie enrobés`;
- `"a quoted phrase"` must appear with its words consecutive (« » and “ ” quote as well);
- `OR`, in capitals, between two parts accepts either: `"maîtrise d'œuvre" OR architecte`;
- `-word`, `-"a phrase"` or `-(a group)` excludes; the `-` is written right before what it excludes;
- parentheses group: `(voirie OR chaussée) -entretien`;
- precedence: `-` binds tightest, then the implicit AND, then OR.

Every term goes through `text.phrase_tokens`, the normaliser notices go through, so case, accents, ligatures,
elisions and plurals do not matter. A word written with inner punctuation (`station-service`, `d'œuvre`) is
matched like a phrase: its tokens must be consecutive. An unquoted word that is only stop words or punctuation
(`travaux de voirie`, `voirie & chaussée`) is dropped from its list of required words, as search engines do;
everywhere else (quoted, excluded, alone, beside OR) a term that can never match is an error.
Each part of the query must look for at least one word: a part made only of exclusions would match almost any
notice, so `-entretien` alone, or `voirie OR -entretien`, is refused.

Parsing happens once per subscription; matching runs for many candidate subscriptions per notice, so it works
on pre-normalised tuples and sets, with no regular expression.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from itertools import pairwise
from typing import TypeAlias

from schemas.filtering.text import phrase_tokens
from schemas.filtering.text import tokens as text_tokens

_MAX_NESTING = 50
# Opening quote -> its closing quote. `describe` writes a phrase with the first pair whose closing quote the
# phrase does not contain, so a phrase opened by « may keep a " inside.
_QUOTES = {'"': '"', "«": "»", "“": "”"}
_WORD_ENDS = frozenset('()"“«')
# Unquoted stop words people type for OR; dropped silently, they would turn the OR they meant into an AND.
_OR_LOOKALIKES = frozenset({"or", "ou"})
_EXCERPT_CHARS = 60


class KeywordQuerySyntaxError(ValueError):
    """A keyword query that cannot be parsed; the message says what is wrong, at which column, and what to do."""


@dataclass(frozen=True, slots=True)
class Term:
    """A word or a quoted phrase: `text` as written (quotes removed), `tokens` normalised, found consecutive."""

    text: str
    tokens: tuple[str, ...]
    phrase: bool


@dataclass(frozen=True, slots=True)
class Not:
    """Holds when `child` does not."""

    child: Query


@dataclass(frozen=True, slots=True)
class AllOf:
    """Holds when every child holds."""

    children: tuple[Query, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    """Holds when at least one child holds."""

    children: tuple[Query, ...]


Query: TypeAlias = Term | Not | AllOf | AnyOf


def parse_keyword_query(text: str) -> Query:
    """The query `text` stands for; raises KeywordQuerySyntaxError, with a 1-based column, when it is malformed.

    Groups that add nothing are flattened (`(a b) c` is `a b c`, `(a)` is `a`), so that equal meanings written
    alike give equal queries and `parse_keyword_query(describe(query)) == query`.
    """
    return _Parser(text).parse()


class SearchText:
    """One field of a notice (its title, or its description), normalised once and searched many times."""

    __slots__ = ("_pairs", "_tokens", "words")

    words: frozenset[str]

    def __init__(self, tokens: Sequence[str]) -> None:
        """From already normalised tokens; use `SearchText.of` for text."""
        self._tokens = tuple(tokens)
        self.words = frozenset(self._tokens)
        self._pairs: frozenset[tuple[str, str]] | None = None  # made when a phrase of two tokens is first asked

    @classmethod
    def of(cls, text: str | None) -> SearchText:
        """The normalised field; None (a notice without description) is an empty field."""
        return cls(text_tokens(text) if text else ())

    def contains(self, tokens: tuple[str, ...]) -> bool:
        """Whether `tokens` appear here one after the other; an empty tuple is never found."""
        size = len(tokens)
        if size == 1:
            return tokens[0] in self.words
        words = self.words
        if not size or tokens[0] not in words or tokens[-1] not in words:
            return False
        if size == 2:
            # Most phrases have two tokens. A set of the field's consecutive pairs, made once, answers each in one
            # lookup; a scan compares strings one by one, which cost a microsecond or more per phrase found.
            pairs = self._pairs
            if pairs is None:
                self._pairs = pairs = frozenset(pairwise(self._tokens))
            return tokens in pairs
        # The first token's occurrences are found by `tuple.index`, a scan in C: cheaper than a table of every
        # token's positions built for each notice, of which matching reads a handful.
        own, first = self._tokens, tokens[0]
        last_start = len(own) - size
        at = -1
        while True:
            try:
                at = own.index(first, at + 1, last_start + 1)
            except ValueError:
                return False
            if own[at : at + size] == tokens:
                return True

    def __repr__(self) -> str:
        return f"SearchText({' '.join(self._tokens)!r})"


def _longer_is_rarer(token: str) -> float:
    # Positive, so that a set's cost, the sum over its tokens, grows with its size.
    return 2.0 ** -len(token)


def matched_terms(query: Query, texts: Sequence[SearchText]) -> list[Term] | None:
    """None when `texts` do not satisfy `query`; otherwise the terms that made it hold, for the alert's reasons.

    A term is found when one of the texts contains its tokens: a phrase never spans two texts. The terms
    returned are those found in the parts of the query that hold, never under an exclusion, in query order,
    without repeats. Pass only the title to search the title alone.
    """
    if isinstance(query, Term):  # the common case, kept short
        tokens = query.tokens
        for text in texts:
            if text.contains(tokens):
                return [query]
        return None
    found: list[Term] = []
    if not _holds(query, texts, found):
        return None
    return _without_repeats(found) if len(found) > 1 else found


def required_tokens(query: Query, rarity: Callable[[str], float] = _longer_is_rarer) -> frozenset[str] | None:
    """Tokens the index may post `query` under: texts that satisfy it always contain one of them somewhere.

    None when no such set exists (a query that holds on a text without any word, which a parsed query never
    does). `rarity(token)` says how common a token is, lower meaning rarer: a document frequency fits. The set
    is kept small and rare: a term gives its rarest token (any token of a phrase is necessary), an AllOf the set
    of its child whose tokens add up to the lowest rarity, an AnyOf the union of its children's. By default,
    with no frequencies known, a longer token is taken as rarer (2 ** -length).
    """
    required = _required(query, rarity)
    return None if required is None else required[0]


@dataclass(frozen=True, slots=True)
class Clauses:
    """A query said as set membership: it holds exactly when the texts contain a term of every clause of
    `required` and no term of `excluded` (a term is contained when one text has its tokens consecutive)."""

    required: tuple[tuple[Term, ...], ...]
    excluded: tuple[Term, ...]


def as_clauses(query: Query) -> Clauses | None:
    """`query` as clauses when it has that shape, else None: a term, terms ORed, or an AND of those and of
    exclusions of terms or of terms ORed (`(voirie OR chaussée) enrobé -entretien`). Other shapes (an OR of ANDs,
    an excluded AND) would need distributing, which can multiply clauses, so they are left to `matched_terms`.
    """
    parts = query.children if isinstance(query, AllOf) else (query,)
    required: list[tuple[Term, ...]] = []
    excluded: list[Term] = []
    for part in parts:
        if isinstance(part, Not):
            terms = _terms_ored(part.child)
            if terms is None:
                return None
            excluded.extend(terms)  # not (a or b) = not a and not b
        else:
            terms = _terms_ored(part)
            if terms is None:
                return None
            required.append(terms)
    if not required or any(not term.tokens for clause in required for term in clause):
        return None  # nothing looked for, or a term that can never be found: leave it to matched_terms
    return Clauses(tuple(required), tuple(excluded))


def _terms_ored(query: Query) -> tuple[Term, ...] | None:
    if isinstance(query, Term):
        return (query,)
    if isinstance(query, AnyOf) and all(isinstance(child, Term) for child in query.children):
        return tuple(child for child in query.children if isinstance(child, Term))
    return None


def describe(query: Query) -> str:
    """The canonical text of a query, for logs and reasons: `parse_keyword_query(describe(q)) == q` for parsed q."""
    if isinstance(query, Term):
        if not query.phrase:
            return query.text
        for opening, closing in _QUOTES.items():
            if closing not in query.text:
                return f"{opening}{query.text}{closing}"
        return '"' + query.text.replace('"', " ") + '"'  # a phrase no parse gives: it holds every quote
    if isinstance(query, Not):
        inner = describe(query.child)
        return f"-({inner})" if isinstance(query.child, AllOf | AnyOf) else f"-{inner}"
    if isinstance(query, AllOf):
        return " ".join(
            f"({describe(child)})" if isinstance(child, AnyOf) else describe(child) for child in query.children
        )
    return " OR ".join(describe(child) for child in query.children)


# --- Matching ---


def _holds(query: Query, texts: Sequence[SearchText], found: list[Term]) -> bool:
    """Whether `query` holds on `texts`, appending the terms found; what a failed part appended is left over."""
    if isinstance(query, Term):
        tokens = query.tokens
        for text in texts:
            if text.contains(tokens):
                found.append(query)
                return True
        return False
    if isinstance(query, AllOf):
        for child in query.children:
            if isinstance(child, Term):  # inlined: most children are terms, and calls are what costs here
                tokens = child.tokens
                for text in texts:
                    if text.contains(tokens):
                        found.append(child)
                        break
                else:
                    return False
            elif not _holds(child, texts, found):
                return False
        return True
    if isinstance(query, AnyOf):
        # Every branch is tried, so the reasons name all the alternatives present, not only the first.
        holds = False
        for child in query.children:
            mark = len(found)
            if _holds(child, texts, found):
                holds = True
            else:
                del found[mark:]
        return holds
    return not _holds(query.child, texts, [])


def _without_repeats(found: list[Term]) -> list[Term]:
    # Hashing a Term builds a tuple each time; its text's hash is cached, so compare whole terms only on a tie.
    unique: list[Term] = []
    texts: set[str] = set()
    for term in found:
        if term.text not in texts:
            texts.add(term.text)
        elif term in unique:
            continue
        unique.append(term)
    return unique


# --- Index keys ---


def _required(query: Query, rarity: Callable[[str], float]) -> tuple[frozenset[str], float] | None:
    """The necessary token set of `query` and its cost (the sum of its tokens' rarity), or None."""
    if isinstance(query, Term):
        if not query.tokens:
            return frozenset(), 0.0  # never found, so nothing satisfies it: the empty set is necessary
        rarest = min(query.tokens, key=rarity)
        return frozenset((rarest,)), rarity(rarest)
    if isinstance(query, Not):
        return None
    if isinstance(query, AllOf):
        options = [required for child in query.children if (required := _required(child, rarity)) is not None]
        return min(options, key=lambda option: (option[1], len(option[0])), default=None)
    union: set[str] = set()
    for child in query.children:
        required = _required(child, rarity)
        if required is None:
            return None
        union |= required[0]
    return frozenset(union), sum(rarity(token) for token in union)


# --- Parsing ---


class _Kind(Enum):
    WORD = "word"
    PHRASE = "phrase"
    OR = "OR"
    MINUS = "-"
    OPEN = "("
    CLOSE = ")"


@dataclass(frozen=True, slots=True)
class _Lexeme:
    kind: _Kind
    text: str  # the word, the phrase without its quotes, or the symbol
    start: int  # 0-based offsets in the query
    end: int

    @property
    def column(self) -> int:
        return self.start + 1


@dataclass(frozen=True, slots=True)
class _Part:
    """A parsed part and where it was written, for error messages."""

    query: Query
    start: int
    end: int


def _lex(text: str) -> list[_Lexeme]:
    lexemes: list[_Lexeme] = []
    at, size = 0, len(text)
    while at < size:
        char = text[at]
        if char.isspace():
            at += 1
        elif char in "()":
            lexemes.append(_Lexeme(_Kind.OPEN if char == "(" else _Kind.CLOSE, char, at, at + 1))
            at += 1
        elif char in _QUOTES:
            closing = _QUOTES[char]
            end = text.find(closing, at + 1)
            if end < 0:
                raise KeywordQuerySyntaxError(
                    f"unclosed quote at column {at + 1} in: {_excerpt(text[at:])} — close it with {closing}"
                )
            phrase = " ".join(text[at + 1 : end].split())
            if not phrase:
                raise KeywordQuerySyntaxError(
                    f"empty quotes at column {at + 1}: put a phrase between them or remove them"
                )
            lexemes.append(_Lexeme(_Kind.PHRASE, phrase, at, end + 1))
            at = end + 1
        elif char == "-":
            # Only at the start of a word: inside one (station-service) it is part of the word.
            lexemes.append(_Lexeme(_Kind.MINUS, char, at, at + 1))
            at += 1
        else:
            end = at
            while end < size and not text[end].isspace() and text[end] not in _WORD_ENDS:
                end += 1
            word = text[at:end]
            lexemes.append(_Lexeme(_Kind.OR if word == "OR" else _Kind.WORD, word, at, end))
            at = end
    return lexemes


def _excerpt(text: str) -> str:
    return text if len(text) <= _EXCERPT_CHARS else text[: _EXCERPT_CHARS - 1] + "…"


class _Parser:
    """Recursive descent over the lexemes: any_of := all_of (OR all_of)*; all_of := unary+;
    unary := "-" primary | primary; primary := word | phrase | "(" any_of ")"."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._lexemes = _lex(text)
        self._next = 0
        self._nesting = 0

    def parse(self) -> Query:
        if not self._lexemes:
            raise KeywordQuerySyntaxError("the query is empty: write at least one word to look for")
        query = self._any_of(top=True)
        extra = self._peek()
        if extra is not None:  # _any_of stops only at the end or at a ")"
            raise KeywordQuerySyntaxError(f'unmatched ")" at column {extra.column}: remove it or add the "(" it closes')
        return query.query

    def _peek(self) -> _Lexeme | None:
        return self._lexemes[self._next] if self._next < len(self._lexemes) else None

    def _take(self) -> _Lexeme:
        lexeme = self._lexemes[self._next]
        self._next += 1
        return lexeme

    def _any_of(self, *, top: bool) -> _Part:
        branches: list[tuple[_Part, bool]] = []
        after_or: _Lexeme | None = None
        while True:
            branches.append(self._all_of(after_or))
            following = self._peek()
            if following is None or following.kind is not _Kind.OR:
                break
            after_or = self._take()
        for branch, looks_for_a_word in branches:
            if not looks_for_a_word:
                self._refuse_only_exclusions(branch, whole_query=top and len(branches) == 1)
        children: list[Query] = []
        for branch, _ in branches:
            children.extend(branch.query.children if isinstance(branch.query, AnyOf) else (branch.query,))
        query = children[0] if len(children) == 1 else AnyOf(tuple(children))
        return _Part(query, branches[0][0].start, branches[-1][0].end)

    def _all_of(self, after_or: _Lexeme | None) -> tuple[_Part, bool]:
        """The implicit AND up to the next OR, ")" or the end; and whether it looks for a word, not only excludes."""
        operands: list[_Part] = []
        first_dropped: _Lexeme | None = None
        while (following := self._peek()) is not None and following.kind not in (_Kind.OR, _Kind.CLOSE):
            operand = self._unary()
            if isinstance(operand, _Lexeme):
                first_dropped = first_dropped or operand
            else:
                operands.append(operand)
        if not operands:
            if first_dropped is not None:
                raise KeywordQuerySyntaxError(_never_matches(first_dropped, excluded=False))
            self._refuse_missing_term(after_or, following)
        children: list[Query] = []
        for operand in operands:
            children.extend(operand.query.children if isinstance(operand.query, AllOf) else (operand.query,))
        query = children[0] if len(children) == 1 else AllOf(tuple(children))
        looks_for_a_word = any(not isinstance(operand.query, Not) for operand in operands)
        return _Part(query, operands[0].start, operands[-1].end), looks_for_a_word

    def _unary(self) -> _Part | _Lexeme:
        """One operand; an unquoted word that is only stop words comes back as its lexeme, to be dropped."""
        lexeme = self._take()
        if lexeme.kind is not _Kind.MINUS:
            return self._primary(lexeme, excluded=False)
        target = self._peek()
        if target is None or target.kind not in (_Kind.WORD, _Kind.PHRASE, _Kind.OPEN) or target.start != lexeme.end:
            raise KeywordQuerySyntaxError(
                f'"-" at column {lexeme.column} is not followed by what to exclude: write it right before the '
                'word, "phrase" or (group), as in -entretien'
            )
        excluded = self._primary(self._take(), excluded=True)
        assert isinstance(excluded, _Part)  # excluded terms are never dropped
        return _Part(Not(excluded.query), lexeme.start, excluded.end)

    def _primary(self, lexeme: _Lexeme, *, excluded: bool) -> _Part | _Lexeme:
        if lexeme.kind is _Kind.OPEN:
            return self._group(lexeme)
        phrase = lexeme.kind is _Kind.PHRASE
        if not phrase and lexeme.text == "NOT":
            raise KeywordQuerySyntaxError(
                f"NOT at column {lexeme.column} is not an operator: write - right before the word to exclude, "
                "as in -entretien"
            )
        term = Term(lexeme.text, phrase_tokens(lexeme.text), phrase)
        if term.tokens:
            return _Part(term, lexeme.start, lexeme.end)
        if phrase or excluded:
            raise KeywordQuerySyntaxError(_never_matches(lexeme, excluded=excluded))
        if lexeme.text.casefold() in _OR_LOOKALIKES:
            raise KeywordQuerySyntaxError(
                f'"{lexeme.text}" at column {lexeme.column} is not an operator (and is ignored as a stop word): '
                "write OR in capitals to accept either side, or remove it"
            )
        return lexeme

    def _group(self, opening: _Lexeme) -> _Part:
        if self._nesting == _MAX_NESTING:
            raise KeywordQuerySyntaxError(
                f"too many nested parentheses at column {opening.column}: at most {_MAX_NESTING} levels; "
                "simplify the query"
            )
        first = self._peek()
        if first is None:
            raise KeywordQuerySyntaxError(f'unclosed parenthesis at column {opening.column}: add the missing ")"')
        if first.kind is _Kind.CLOSE:
            raise KeywordQuerySyntaxError(f'empty group "()" at column {opening.column}: put words inside or remove it')
        self._nesting += 1
        inner = self._any_of(top=False)
        self._nesting -= 1
        closing = self._peek()
        if closing is None:
            raise KeywordQuerySyntaxError(f'unclosed parenthesis at column {opening.column}: add the missing ")"')
        self._take()
        return _Part(inner.query, opening.start, closing.end)

    def _refuse_missing_term(self, after_or: _Lexeme | None, following: _Lexeme | None) -> None:
        if following is not None and following.kind is _Kind.OR:
            raise KeywordQuerySyntaxError(
                f'OR at column {following.column} needs a term on its left: write a word or "phrase" before it, '
                "or remove it"
            )
        if after_or is not None:
            raise KeywordQuerySyntaxError(
                f'OR at column {after_or.column} needs a term on its right: write a word or "phrase" after it, '
                "or remove it"
            )
        if following is None:  # not reached: parse and _group check for nothing left before they descend
            raise KeywordQuerySyntaxError("the query is empty: write at least one word to look for")
        raise KeywordQuerySyntaxError(f'unmatched ")" at column {following.column}: remove it or add the "(" it closes')

    def _refuse_only_exclusions(self, part: _Part, *, whole_query: bool) -> None:
        written = _excerpt(self._text[part.start : part.end])
        if whole_query:
            raise KeywordQuerySyntaxError(
                f'the query only excludes words ("{written}"): add at least one word to look for'
            )
        raise KeywordQuerySyntaxError(
            f'"{written}" at column {part.start + 1} only excludes words, so it would match almost any notice: '
            "add at least one word to look for in it"
        )


def _never_matches(lexeme: _Lexeme, *, excluded: bool) -> str:
    where = f'"{lexeme.text}" at column {lexeme.column}'
    if not any(char.isalnum() for char in lexeme.text):
        return f"{where} has no letter or digit: it can never match; remove it"
    if lexeme.kind is _Kind.PHRASE:
        advice = "remove it or quote a longer phrase"
    else:
        advice = "remove it" if excluded else "remove it or add a word to look for"
    return f"{where} is only stop words, which are ignored: it can never match; {advice}"
