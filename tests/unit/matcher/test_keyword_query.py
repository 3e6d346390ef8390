"""The keyword query language: parsing and its error messages, matching real notice texts, index keys, properties."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.filtering.query import (
    AllOf,
    AnyOf,
    KeywordQuerySyntaxError,
    Not,
    Query,
    SearchText,
    Term,
    as_clauses,
    describe,
    matched_terms,
    parse_keyword_query,
    required_tokens,
)
from schemas.filtering.rules import (
    MAX_SHIPPED_TOKENS,
    CompiledFilters,
    NoticeView,
    query_search_keys,
    reasons,
    search_keys,
    search_tokens_of,
)
from schemas.filtering.text import NORMALISER, tokens
from schemas.notice import ClassifiedNotice, SearchTokens
from schemas.subscription import SubscriptionFilters

from .factories import boamp_notices, make_notice

FIXTURES = Path(__file__).parents[2] / "fixtures"
_UBL = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}


def word(text: str) -> Term:
    return Term(text, tuple(tokens(text)), phrase=False)


def phrase(text: str) -> Term:
    return Term(text, tuple(tokens(text)), phrase=True)


def eforms_texts(name: str) -> tuple[SearchText, SearchText]:
    """The French title and description of the procurement project of a real eForms notice."""
    root = ET.parse(FIXTURES / "eforms" / name).getroot()
    project = root.find("cac:ProcurementProject", _UBL)
    assert project is not None
    title = project.findtext("cbc:Name[@languageID='FRA']", namespaces=_UBL)
    description = project.findtext("cbc:Description[@languageID='FRA']", namespaces=_UBL)
    assert title and description
    return SearchText.of(title), SearchText.of(description)


def texts_of(notice: ClassifiedNotice, *, title_only: bool = False) -> list[SearchText]:
    title = SearchText.of(notice.title)
    return [title] if title_only else [title, SearchText.of(notice.description)]


def matching(notices: dict[str, ClassifiedNotice], query: str, *, title_only: bool = False) -> dict[str, list[str]]:
    """idweb -> the texts of the matched terms, for every notice the query matches."""
    parsed = parse_keyword_query(query)
    found = {idweb: matched_terms(parsed, texts_of(n, title_only=title_only)) for idweb, n in notices.items()}
    return {idweb: [term.text for term in terms] for idweb, terms in found.items() if terms is not None}


# --- Parsing ---


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("voirie enrobés", AllOf((word("voirie"), word("enrobés")))),
        ('"maîtrise d\'œuvre" OR architecte', AnyOf((phrase("maîtrise d'œuvre"), word("architecte")))),
        (
            "(voirie OR chaussée) -entretien",
            AllOf((AnyOf((word("voirie"), word("chaussée"))), Not(word("entretien")))),
        ),
        ('nettoyage -"vitres"', AllOf((word("nettoyage"), Not(phrase("vitres"))))),
    ],
)
def test_the_documented_examples(query: str, expected: Query) -> None:
    assert parse_keyword_query(query) == expected


def test_terms_are_normalised_like_notices() -> None:
    assert parse_keyword_query('"Maîtrise d\'Œuvre"') == Term("Maîtrise d'Œuvre", ("maitris", "oeuv"), phrase=True)
    assert parse_keyword_query("ÉCOLES") == Term("ÉCOLES", ("ecol",), phrase=False)
    assert parse_keyword_query("travaux") == Term("travaux", ("travail",), phrase=False)


def test_precedence_negation_then_and_then_or() -> None:
    assert parse_keyword_query("voirie enrobés OR chaussée -entretien") == AnyOf(
        (AllOf((word("voirie"), word("enrobés"))), AllOf((word("chaussée"), Not(word("entretien")))))
    )
    assert parse_keyword_query("-entretien voirie") == AllOf((Not(word("entretien")), word("voirie")))
    assert parse_keyword_query("voirie OR chaussée OR trottoir") == AnyOf(
        (word("voirie"), word("chaussée"), word("trottoir"))
    )


def test_nested_groups() -> None:
    assert parse_keyword_query('((voirie OR chaussée) (enrobés OR bitume)) OR "maîtrise d\'œuvre"') == AnyOf(
        (
            AllOf((AnyOf((word("voirie"), word("chaussée"))), AnyOf((word("enrobés"), word("bitume"))))),
            phrase("maîtrise d'œuvre"),
        )
    )
    assert parse_keyword_query("voirie -(entretien OR (nettoyage balayage))") == AllOf(
        (word("voirie"), Not(AnyOf((word("entretien"), AllOf((word("nettoyage"), word("balayage")))))))
    )


def test_groups_that_add_nothing_are_flattened() -> None:
    assert parse_keyword_query("((voirie))") == word("voirie")
    assert parse_keyword_query("(voirie enrobés) chaussée") == AllOf(
        (word("voirie"), word("enrobés"), word("chaussée"))
    )
    assert parse_keyword_query("voirie OR (chaussée OR trottoir)") == AnyOf(
        (word("voirie"), word("chaussée"), word("trottoir"))
    )
    assert parse_keyword_query("voirie -(entretien)") == AllOf((word("voirie"), Not(word("entretien"))))


def test_OR_is_an_operator_only_in_capitals_and_unquoted() -> None:
    assert parse_keyword_query('"voirie OR chaussée"') == phrase("voirie OR chaussée")
    assert phrase("voirie OR chaussée").tokens == ("voiri", "chaus")  # "or" is a stop word inside a phrase
    assert parse_keyword_query("ORDURES ménagères") == AllOf((word("ORDURES"), word("ménagères")))
    assert parse_keyword_query("(voirie)OR(chaussée)") == AnyOf((word("voirie"), word("chaussée")))


def test_unquoted_stop_words_and_punctuation_are_dropped_from_required_words() -> None:
    assert parse_keyword_query("travaux de voirie") == AllOf((word("travaux"), word("voirie")))
    assert parse_keyword_query("voirie & chaussée") == AllOf((word("voirie"), word("chaussée")))
    assert parse_keyword_query("la voirie") == word("voirie")


def test_a_word_with_inner_punctuation_is_one_term_matched_as_consecutive_tokens() -> None:
    assert parse_keyword_query("station-service") == Term("station-service", ("station", "servic"), phrase=False)
    assert parse_keyword_query("d'œuvre") == Term("d'œuvre", ("oeuv",), phrase=False)
    assert parse_keyword_query("voirie-") == Term("voirie-", ("voiri",), phrase=False)


def test_phrases_accept_french_and_curly_quotes_and_collapse_spaces() -> None:
    expected = phrase("maîtrise d'œuvre")
    assert parse_keyword_query("« maîtrise d'œuvre »") == expected
    assert parse_keyword_query("“maîtrise d'œuvre”") == expected
    assert parse_keyword_query('"  maîtrise   d\'œuvre "') == expected
    assert parse_keyword_query('« le "grand" chantier »') == phrase('le "grand" chantier')


def test_an_exclusion_right_after_a_phrase_or_group() -> None:
    assert parse_keyword_query('"voirie"-entretien') == AllOf((phrase("voirie"), Not(word("entretien"))))
    assert parse_keyword_query("(voirie)-entretien") == AllOf((word("voirie"), Not(word("entretien"))))


def test_fifty_nested_parentheses_are_allowed() -> None:
    assert parse_keyword_query("(" * 50 + "voirie" + ")" * 50) == word("voirie")


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "the query is empty: write at least one word to look for"),
        ("   ", "the query is empty: write at least one word to look for"),
        ('voirie "enrobés', 'unclosed quote at column 8 in: "enrobés — close it with "'),
        ("« voirie", "unclosed quote at column 1 in: « voirie — close it with »"),
        ('voirie ""', "empty quotes at column 8: put a phrase between them or remove them"),
        ("OR voirie", 'OR at column 1 needs a term on its left: write a word or "phrase" before it, or remove it'),
        ("voirie OR", 'OR at column 8 needs a term on its right: write a word or "phrase" after it, or remove it'),
        (
            "voirie OR OR chaussée",
            'OR at column 11 needs a term on its left: write a word or "phrase" before it, or remove it',
        ),
        (
            "(OR voirie)",
            'OR at column 2 needs a term on its left: write a word or "phrase" before it, or remove it',
        ),
        (
            '"de la"',
            '"de la" at column 1 is only stop words, which are ignored: it can never match; '
            "remove it or quote a longer phrase",
        ),
        (
            "de la",
            '"de" at column 1 is only stop words, which are ignored: it can never match; '
            "remove it or add a word to look for",
        ),
        (
            "de OR voirie",
            '"de" at column 1 is only stop words, which are ignored: it can never match; '
            "remove it or add a word to look for",
        ),
        (
            "voirie -les",
            '"les" at column 9 is only stop words, which are ignored: it can never match; remove it',
        ),
        ("voirie OR &", '"&" at column 11 has no letter or digit: it can never match; remove it'),
        (
            "voirie or chaussée",
            '"or" at column 8 is not an operator (and is ignored as a stop word): '
            "write OR in capitals to accept either side, or remove it",
        ),
        (
            "voirie ou chaussée",
            '"ou" at column 8 is not an operator (and is ignored as a stop word): '
            "write OR in capitals to accept either side, or remove it",
        ),
        (
            "voirie NOT entretien",
            "NOT at column 8 is not an operator: write - right before the word to exclude, as in -entretien",
        ),
        ("-entretien", 'the query only excludes words ("-entretien"): add at least one word to look for'),
        (
            '-entretien -"nettoyage des vitres"',
            'the query only excludes words ("-entretien -"nettoyage des vitres""): add at least one word to look for',
        ),
        (
            "voirie OR -entretien",
            '"-entretien" at column 11 only excludes words, so it would match almost any notice: '
            "add at least one word to look for in it",
        ),
        (
            "voirie (-entretien -nettoyage)",
            '"-entretien -nettoyage" at column 9 only excludes words, so it would match almost any notice: '
            "add at least one word to look for in it",
        ),
        ("voirie ()", 'empty group "()" at column 8: put words inside or remove it'),
        ("voirie ( )", 'empty group "()" at column 8: put words inside or remove it'),
        ("(voirie OR chaussée", 'unclosed parenthesis at column 1: add the missing ")"'),
        ("((voirie) chaussée", 'unclosed parenthesis at column 1: add the missing ")"'),
        ("voirie)", 'unmatched ")" at column 7: remove it or add the "(" it closes'),
        (")voirie", 'unmatched ")" at column 1: remove it or add the "(" it closes'),
        (
            "voirie - entretien",
            '"-" at column 8 is not followed by what to exclude: write it right before the word, "phrase" or '
            "(group), as in -entretien",
        ),
        (
            "voirie -",
            '"-" at column 8 is not followed by what to exclude: write it right before the word, "phrase" or '
            "(group), as in -entretien",
        ),
        (
            "voirie --entretien",
            '"-" at column 8 is not followed by what to exclude: write it right before the word, "phrase" or '
            "(group), as in -entretien",
        ),
        (
            "(" * 51 + "voirie" + ")" * 51,
            "too many nested parentheses at column 51: at most 50 levels; simplify the query",
        ),
    ],
)
def test_syntax_errors_say_what_where_and_what_to_do(query: str, message: str) -> None:
    with pytest.raises(KeywordQuerySyntaxError) as raised:
        parse_keyword_query(query)
    assert str(raised.value) == message


def test_a_syntax_error_is_a_value_error_so_validation_reports_it() -> None:
    with pytest.raises(ValueError, match="unclosed quote"):
        parse_keyword_query('"voirie')


def test_an_unclosed_quote_shows_a_bounded_excerpt() -> None:
    with pytest.raises(KeywordQuerySyntaxError) as raised:
        parse_keyword_query('voirie "' + "enrobés " * 30)
    assert str(raised.value).startswith('unclosed quote at column 8 in: "enrobés enrobés')
    assert len(str(raised.value)) < 120


@pytest.mark.parametrize(
    ("query", "canonical"),
    [
        ("voirie   enrobés", "voirie enrobés"),
        ("(voirie OR chaussée) -entretien", "(voirie OR chaussée) -entretien"),
        ("« maîtrise d'œuvre » OR architecte", '"maîtrise d\'œuvre" OR architecte'),
        ("((voirie enrobés)) OR (chaussée)", "voirie enrobés OR chaussée"),
        ("voirie -(entretien OR nettoyage) -(balayage voirie)", "voirie -(entretien OR nettoyage) -(balayage voirie)"),
        ("travaux de voirie", "travaux voirie"),
        ('« le "grand" chantier »', '«le "grand" chantier»'),
    ],
)
def test_describe_gives_a_canonical_text_that_parses_back(query: str, canonical: str) -> None:
    parsed = parse_keyword_query(query)
    assert describe(parsed) == canonical
    assert parse_keyword_query(canonical) == parsed


# --- Matching real notice texts ---


def test_accents_ligatures_and_elisions_do_not_matter() -> None:
    written_with_oe = eforms_texts("ted/2024-OJS015-00041387.xml")  # "Concours de maîtrise d'oeuvre-Phase 1"
    written_with_ligature = eforms_texts("sdk-examples/cn-desg_24.xml")  # "Concours restreint de maîtrise d'œuvre"
    for query in ('"maîtrise d\'œuvre"', '"maitrise d\'oeuvre"', '"MAÎTRISE D’ŒUVRE"', '"maîtrise œuvre"'):
        parsed = parse_keyword_query(query)
        assert matched_terms(parsed, written_with_oe) == [parsed]
        assert matched_terms(parsed, written_with_ligature) == [parsed]


def test_a_phrase_needs_its_words_consecutive_and_in_order() -> None:
    texts = eforms_texts("sdk-examples/cn-desg_24.xml")
    assert matched_terms(parse_keyword_query('"œuvre maîtrise"'), texts) is None
    assert matched_terms(parse_keyword_query('"maîtrise construction"'), texts) is None
    # Unquoted, the same words need only be present.
    assert matched_terms(parse_keyword_query("œuvre maîtrise"), texts) == [word("œuvre"), word("maîtrise")]
    assert matched_terms(parse_keyword_query('"construction d\'un accueil périscolaire"'), texts) is not None


def test_a_phrase_never_spans_the_title_and_the_description() -> None:
    title, description = eforms_texts("ted/2024-OJS197-00607986.xml")
    # The title ends with "bâtiment Toison d’Or", the description starts with "Le Marché a pour objet".
    spanning = parse_keyword_query('"Toison d\'Or marché"')
    assert matched_terms(spanning, [title, description]) is None
    assert matched_terms(parse_keyword_query("toison marché"), [title, description]) is not None


def test_exclusions_on_a_cleaning_notice() -> None:
    # Title: "...Nettoyage par une firme externe des parties communes et privatives..."; neither field mentions windows.
    texts = eforms_texts("ted/2024-OJS197-00607986.xml")
    assert matched_terms(parse_keyword_query('nettoyage -"vitres"'), texts) == [word("nettoyage")]
    assert matched_terms(parse_keyword_query('nettoyage -"parties communes"'), texts) is None
    assert matched_terms(parse_keyword_query("nettoyage -(vitres OR vitrerie)"), texts) == [word("nettoyage")]
    assert matched_terms(parse_keyword_query("nettoyage -(vitres OR privatives)"), texts) is None


def test_title_only_is_the_caller_passing_the_title_alone() -> None:
    title, description = eforms_texts("ted/2024-OJS197-00607986.xml")
    workforce = parse_keyword_query('"main d\'œuvre"')  # only the description has "la main-d’oeuvre"
    assert matched_terms(workforce, [title, description]) == [workforce]
    assert matched_terms(workforce, [title]) is None
    excluded = parse_keyword_query("nettoyage -transport")  # "transport" is only in the description
    assert matched_terms(excluded, [title, description]) is None
    assert matched_terms(excluded, [title]) == [word("nettoyage")]


def test_elision_and_plural_on_boamp_notices(boamp_notices: dict[str, ClassifiedNotice]) -> None:
    # "...l'Ecole du Louvre" and "...la Caisse des écoles".
    assert matching(boamp_notices, "école") == {"20-149994": ["école"], "20-149866": ["école"]}
    assert matching(boamp_notices, '"l\'école du Louvre"') == {"20-149994": ["l'école du Louvre"]}
    # "production d\x92eau potable": a cp1252 apostrophe, decoded as Latin-1.
    assert matching(boamp_notices, '"production d\'eau potable"') == {"20-153663": ["production d'eau potable"]}
    assert matching(boamp_notices, '"travail de sécurisation" ouvrage') == {
        "20-153663": ["travail de sécurisation", "ouvrage"]
    }


def test_hyphenated_words_match_plurals_and_spaced_spellings(boamp_notices: dict[str, ClassifiedNotice]) -> None:
    with_station_service = {"20-147893", "20-153510", "20-156071", "20-157845", "20-157921"}
    assert set(matching(boamp_notices, "station-service")) == with_station_service  # 20-156071: "stations-services"
    assert set(matching(boamp_notices, '"station service"')) == with_station_service
    assert matching(boamp_notices, '"service station"') == {}


def test_negation_on_boamp_notices(boamp_notices: dict[str, ClassifiedNotice]) -> None:
    assert matching(boamp_notices, 'carburant -"cartes accréditives"') == {
        "20-149466": ["carburant"],
        "20-153510": ["carburant"],  # "...SERVICES ASSOCIES PAR CARTES": cards, but not "cartes accréditives"
        "20-158388": ["carburant"],
    }
    # "Maintien en Conditions Opérationnelles (MCO)... vidéoprotection" is left out, the redesign stays.
    assert matching(boamp_notices, "vidéoprotection -maintien") == {"20-155016": ["vidéoprotection"]}


def test_or_reports_every_alternative_found(boamp_notices: dict[str, ClassifiedNotice]) -> None:
    assert matching(boamp_notices, 'archives OR "conseils juridiques" OR vidéoprotection') == {
        "20-148706": ["archives"],
        "20-155016": ["vidéoprotection"],
        "20-153108": ["vidéoprotection"],
        "20-157374": ["conseils juridiques"],
        "20-157570": ["conseils juridiques"],
    }
    assert matching(boamp_notices, '(gazole OR carburant OR vidéoprotection) "cartes accréditives" -Bayeux')[
        "20-157921"
    ] == ["carburant", "cartes accréditives"]


def test_title_only_on_boamp_notices(boamp_notices: dict[str, ClassifiedNotice]) -> None:
    # "FOURNITURE DE COMPTEURS D'EAU POUR L'EXPLOITATION DES RESEAUX..."
    assert matching(boamp_notices, "compteur eau", title_only=True) == {"20-154405": ["compteur", "eau"]}
    query = 'carburant -"cartes accréditives"'
    # 20-147836 and 20-149866 speak of cards in their description only, so the title alone no longer excludes them;
    # 20-149466 is titled "...Fourniture de carbutant" (sic): only its description has the word.
    assert set(matching(boamp_notices, query, title_only=True)) == {"20-147836", "20-149866", "20-153510", "20-158388"}
    assert set(matching(boamp_notices, query)) == {"20-149466", "20-153510", "20-158388"}


def test_matched_terms_are_in_query_order_without_repeats_nor_excluded_terms() -> None:
    texts = [SearchText.of("Fourniture de carburants"), SearchText.of("Cartes accréditives pour les véhicules")]
    query = parse_keyword_query("véhicules carburant (carburant OR gazole) -(gazole -véhicules) véhicules")
    assert matched_terms(query, texts) == [word("véhicules"), word("carburant")]
    # A branch of an OR that fails reports nothing, even the terms of it that were found.
    either = parse_keyword_query("(carburant voirie) OR cartes")
    assert matched_terms(either, texts) == [word("cartes")]
    # Nor does an exclusion that holds, although "cartes" was found in it.
    assert matched_terms(parse_keyword_query("carburant -(cartes voirie)"), texts) == [word("carburant")]


def test_search_text() -> None:
    text = SearchText.of("Travaux de voirie : enrobés et reprise de la voirie")
    assert text.words == frozenset({"travail", "voiri", "enrob", "repris"})
    assert text.contains(("voiri",))
    assert text.contains(("travail", "voiri"))
    assert text.contains(("repris", "voiri"))  # the second "voirie"
    assert not text.contains(("voiri", "travail"))
    assert not text.contains(())
    assert not text.contains(("voiri", "enrob", "repris", "voiri", "extra"))
    assert SearchText.of(None).words == frozenset()
    assert not SearchText.of(None).contains(("voiri",))
    assert matched_terms(parse_keyword_query("voirie"), []) is None


def test_a_notice_view_reads_the_tokens_shipped_with_the_notice_only_when_this_normaliser_made_them() -> None:
    notice = make_notice(title="Travaux de voirie", description="Enrobés")
    assert search_tokens_of(notice) == SearchTokens(
        normaliser=NORMALISER, title=["travail", "voiri"], description=["enrob"]
    )
    shipped = SearchTokens(normaliser=NORMALISER, title=["shipped"], description=["tokens"])
    view = NoticeView.of(notice.model_copy(update={"search_tokens": shipped}))
    assert (view.title.words, view.description.words) == (frozenset({"shipped"}), frozenset({"tokens"}))
    # Made by another normaliser (another release of the classifier): the text is tokenised again.
    stale = shipped.model_copy(update={"normaliser": "another"})
    assert NoticeView.of(notice.model_copy(update={"search_tokens": stale})).words == {"travail", "voiri", "enrob"}
    assert NoticeView.of(notice).words == {"travail", "voiri", "enrob"}
    # A text too long to ship its tokens with the notice is left to its readers.
    longest = make_notice(title="Travaux", description="voirie " * MAX_SHIPPED_TOKENS)
    assert search_tokens_of(longest) is None
    assert search_tokens_of(longest.model_copy(update={"description": "voirie " * (MAX_SHIPPED_TOKENS - 1)}))


def test_shipped_tokens_give_every_real_notice_the_same_view_as_its_text() -> None:
    for notice in boamp_notices().values():
        # As the matcher gets it: the classifier's notice, through its JSON on the topic.
        sent = notice.model_copy(update={"search_tokens": search_tokens_of(notice)}).model_dump_json()
        received = ClassifiedNotice.model_validate_json(sent)
        assert received.search_tokens is not None and received.search_tokens.normaliser == NORMALISER
        shipped = NoticeView.of(received)
        tokenised = NoticeView.of(notice)
        assert search_keys(shipped) == search_keys(tokenised)
        for ours, theirs in ((shipped.title, tokenised.title), (shipped.description, tokenised.description)):
            assert repr(ours) == repr(theirs)  # the same tokens in the same order


@settings(max_examples=500, deadline=None)
@given(
    field=st.lists(st.sampled_from("abc"), max_size=12),
    phrases=st.lists(st.lists(st.sampled_from("abcd"), max_size=4).map(tuple), min_size=1, max_size=6),
)
def test_search_text_contains_a_phrase_wherever_it_starts(field: list[str], phrases: list[tuple[str, ...]]) -> None:
    """A phrase is found at any occurrence of its first token, the last possible start included, never past it;
    whatever was asked of the same field before (it keeps its pairs of tokens once a phrase of two asks for them)."""
    text = SearchText(field)
    for phrase in phrases:
        expected = bool(phrase) and any(tuple(field[at : at + len(phrase)]) == phrase for at in range(len(field)))
        assert text.contains(phrase) == expected, phrase


# --- Index keys ---


def test_required_tokens_of_terms_groups_and_exclusions() -> None:
    # By default the longer token is taken as the rarer.
    assert required_tokens(parse_keyword_query('"maîtrise d\'œuvre"')) == frozenset({"maitris"})
    assert required_tokens(parse_keyword_query("voirie bitumineux")) == frozenset({"bitumineu"})
    assert required_tokens(parse_keyword_query("voirie OR chaussée")) == frozenset({"voiri", "chaus"})
    assert required_tokens(parse_keyword_query("(voirie OR chaussée) -entretien")) == frozenset({"voiri", "chaus"})
    assert required_tokens(parse_keyword_query('nettoyage -"vitres"')) == frozenset({"nettoyag"})
    assert required_tokens(Not(word("voirie"))) is None
    assert required_tokens(AnyOf((word("voirie"), Not(word("entretien"))))) is None
    assert required_tokens(AllOf((Not(word("voirie")), Not(word("entretien"))))) is None
    assert required_tokens(Term("de la", (), phrase=True)) == frozenset()  # never matches: nothing to post


def test_queries_as_clauses() -> None:
    def texts(query: str) -> tuple[list[str], list[str]] | None:
        clauses = as_clauses(parse_keyword_query(query))
        if clauses is None:
            return None
        required = [" | ".join(term.text for term in clause) for clause in clauses.required]
        return required, [term.text for term in clauses.excluded]

    assert texts("voirie") == (["voirie"], [])
    assert texts('voirie OR "eau potable"') == (["voirie | eau potable"], [])
    assert texts("(voirie OR chaussée) enrobés -entretien") == (["voirie | chaussée", "enrobés"], ["entretien"])
    assert texts('réseaux -(eau OR "gaz naturel")') == (["réseaux"], ["eau", "gaz naturel"])
    assert texts("(voirie enrobés) OR chaussée") is None  # an OR of ANDs would need distributing
    assert texts("réseaux -(eau potable)") is None  # an excluded AND is an OR of exclusions


def test_required_tokens_follow_the_given_frequencies() -> None:
    frequency = {"voiri": 120.0, "chaus": 40.0, "bitum": 90.0, "maitris": 300.0, "oeuv": 250.0}
    rarity: Callable[[str], float] = frequency.__getitem__
    assert required_tokens(parse_keyword_query('"maîtrise d\'œuvre"'), rarity) == frozenset({"oeuv"})
    assert required_tokens(parse_keyword_query("voirie bitume"), rarity) == frozenset({"bitum"})
    # 40 + 120 for the group is more than 90 for "bitume" alone; with "bitume" common, the group wins.
    assert required_tokens(parse_keyword_query("(voirie OR chaussée) bitume"), rarity) == frozenset({"bitum"})
    frequency["bitum"] = 500.0
    assert required_tokens(parse_keyword_query("(voirie OR chaussée) bitume"), rarity) == frozenset({"voiri", "chaus"})


# --- Properties: random queries over a small vocabulary, against a reference written here ---

_QUERY_WORDS = ["voirie", "voiries", "chaussée", "enrobés", "bitume", "entretien", "école", "travaux", "travail"]
_TEXT_WORDS = [*_QUERY_WORDS, "chaussées", "enrobé", "l'école", "de", "la", "réfection", "Voirie"]


@dataclass(frozen=True)
class _Node:
    """The test's own query tree: kind is word, phrase, not, and or or."""

    kind: str
    text: str = ""
    children: tuple[_Node, ...] = ()


def _render(node: _Node) -> str:
    if node.kind == "word":
        return node.text
    if node.kind == "phrase":
        return f'"{node.text}"'
    if node.kind == "not":
        (child,) = node.children
        return "-" + (f"({_render(child)})" if child.kind in ("and", "or") else _render(child))
    if node.kind == "and":  # groups inside an AND always parenthesised, so that flattening is exercised
        return " ".join(f"({_render(c)})" if c.kind in ("and", "or") else _render(c) for c in node.children)
    return " OR ".join(f"({_render(c)})" if c.kind == "or" else _render(c) for c in node.children)


def _reference(node: _Node, texts: list[list[str]]) -> list[tuple[str, bool]] | None:
    """None when the texts fail; else the (text, is a phrase) of the terms found in the parts that hold."""
    if node.kind in ("word", "phrase"):
        wanted = tokens(node.text)
        size = len(wanted)
        present = any(text[i : i + size] == wanted for text in texts for i in range(len(text) - size + 1))
        return [(node.text, node.kind == "phrase")] if present else None
    if node.kind == "not":
        return None if _reference(node.children[0], texts) is not None else []
    results = [_reference(child, texts) for child in node.children]
    held = [result for result in results if result is not None]
    if (node.kind == "and" and len(held) < len(results)) or not held:
        return None
    return [term for result in held for term in result]


def _all_of(looked_for: _Node, others: list[tuple[bool, _Node]], looked_for_last: bool) -> _Node:
    # One operand is always looked for (a part made only of exclusions is refused); the others may be excluded.
    operands = [_Node("not", children=(node,)) if excluded else node for excluded, node in others]
    return _Node("and", children=tuple([*operands, looked_for] if looked_for_last else [looked_for, *operands]))


def _positive_nodes() -> st.SearchStrategy[_Node]:
    words = st.sampled_from(_QUERY_WORDS)
    leaves = st.one_of(
        words.map(lambda text: _Node("word", text)),
        st.lists(words, min_size=1, max_size=3).map(lambda ws: _Node("phrase", " ".join(ws))),
    )

    def groups(children: st.SearchStrategy[_Node]) -> st.SearchStrategy[_Node]:
        all_of = st.builds(_all_of, children, st.lists(st.tuples(st.booleans(), children), max_size=2), st.booleans())
        any_of = st.lists(children, min_size=2, max_size=3).map(lambda cs: _Node("or", children=tuple(cs)))
        return st.one_of(all_of, any_of)

    return st.recursive(leaves, groups, max_leaves=6)


@settings(max_examples=300, deadline=None)
@given(
    node=_positive_nodes(),
    fields=st.lists(st.lists(st.sampled_from(_TEXT_WORDS), max_size=10), min_size=1, max_size=2),
    ranks=st.permutations(sorted({t for w in _QUERY_WORDS for t in tokens(w)})),
)
def test_parse_describe_match_and_index_keys_agree(node: _Node, fields: list[list[str]], ranks: list[str]) -> None:
    query = parse_keyword_query(_render(node))
    assert parse_keyword_query(describe(query)) == query

    texts = [SearchText.of(" ".join(field)) for field in fields]
    found = matched_terms(query, texts)
    expected = _reference(node, [tokens(" ".join(field)) for field in fields])
    expected_unique = list(dict.fromkeys(expected)) if expected is not None else None
    assert (None if found is None else [(term.text, term.phrase) for term in found]) == expected_unique

    frequency = {token: float(rank) for rank, token in enumerate(ranks)}
    for keys in (required_tokens(query), required_tokens(query, frequency.__getitem__)):
        assert keys is not None  # a parsed query always looks for a word
        if found is not None:
            assert any(text.words & keys for text in texts)

    clauses = as_clauses(query)
    if clauses is not None:  # said as clauses, the query holds on exactly the same texts

        def contained(term: Term) -> bool:
            return any(text.contains(term.tokens) for text in texts)

        holds = all(any(map(contained, clause)) for clause in clauses.required) and not any(
            map(contained, clauses.excluded)
        )
        assert holds is (found is not None)


# --- Search keys: what a store of notices narrows keyword queries on before matching ---

_NOW = datetime(2026, 3, 2, tzinfo=UTC)


def _keyword_filters(query: str, *, title_only: bool = False) -> CompiledFilters:
    return CompiledFilters.of(
        SubscriptionFilters.model_validate({"keywords": {"query": query, "title_only": title_only}})
    )


def test_search_keys_mark_the_title_and_title_only_queries_look_there() -> None:
    view = NoticeView.of(make_notice(title="Travaux de voirie", description="Réfection des enrobés"))
    assert search_keys(view) == frozenset({"travail", "voiri", "refection", "enrob", "^travail", "^voiri"})
    assert query_search_keys(_keyword_filters("voirie")) == frozenset({"voiri"})
    title_only = _keyword_filters("enrobés OR voiries", title_only=True)
    assert query_search_keys(title_only) == frozenset({"^enrob", "^voiri"})
    assert query_search_keys(_keyword_filters('"travaux de voirie" -entretien')) == frozenset({"travail"})
    assert query_search_keys(CompiledFilters.of(SubscriptionFilters())) is None
    # Only in the description: a title-only query on it neither matches nor finds a key.
    enrobes = _keyword_filters("enrobés", title_only=True)
    assert reasons(enrobes, view, _NOW) is None
    assert not query_search_keys(enrobes) & search_keys(view)  # type: ignore[operator]


@settings(max_examples=200, deadline=None)
@given(
    node=_positive_nodes(),
    title=st.lists(st.sampled_from(_TEXT_WORDS), min_size=1, max_size=8),
    description=st.lists(st.sampled_from(_TEXT_WORDS), max_size=10),
    title_only=st.booleans(),
)
def test_a_notice_a_query_matches_has_one_of_the_query_search_keys(
    node: _Node, title: list[str], description: list[str], title_only: bool
) -> None:
    filters = _keyword_filters(_render(node), title_only=title_only)
    view = NoticeView.of(make_notice(title=" ".join(title), description=" ".join(description) or None))
    keys = query_search_keys(filters)
    assert keys  # a parsed query always looks for a word
    if reasons(filters, view, _NOW) is not None:
        assert keys & search_keys(view)
