from __future__ import annotations

import pytest

from schemas.filtering.text import phrase_tokens, tokens
from schemas.notice import ClassifiedNotice


def test_lower_case_and_accents_are_folded() -> None:
    assert tokens("ÉCLAIRAGE Public") == tokens("eclairage public") == ["eclairag", "public"]
    assert tokens("Météo-France") == ["meteo", "franc"]


def test_ligatures_are_expanded() -> None:
    assert tokens("Maîtrise d'œuvre") == tokens("maitrise d'oeuvre") == ["maitris", "oeuv"]
    assert tokens("Cæcum") == ["caecum"]
    assert tokens("ﬁchier") == tokens("fichier")


@pytest.mark.parametrize("apostrophe", ["'", "’", "‘", "ʼ", "\x92"])
def test_elisions_are_removed_whatever_the_apostrophe(apostrophe: str) -> None:
    text = (
        f"l{apostrophe}eau d{apostrophe}arrosage qu{apostrophe}il n{apostrophe}est s{apostrophe}agit c{apostrophe}est"
    )
    assert tokens(text) == ["eau", "arrosag", "agit"]


def test_elision_only_at_the_start_of_a_word() -> None:
    # "aujourd'hui": the d' inside a word is not an article; the apostrophe still splits it.
    assert tokens("aujourd'hui") == ["aujourd", "hui"]
    assert tokens("jusqu'au 01/04/2021") == ["01", "04", "2021"]


def test_punctuation_splits_words() -> None:
    assert tokens("station-service") == ["station", "servic"]
    assert tokens("FT-IR (microscopie);fourniture,livraison") == ["ft", "ir", "microscopi", "fournitu", "livraison"]


def test_plurals_share_the_singular_stem() -> None:
    assert tokens("Travaux de voirie") == ["travail", "voiri"]
    assert phrase_tokens("voiries") == phrase_tokens("voirie") == ("voiri",)
    assert tokens("réseaux réseau") == ["reseau", "reseau"]
    assert tokens("hôpitaux hôpital") == ["hopital", "hopital"]
    assert tokens("lieux lieu jeux jeu") == ["lieu", "lieu", "jeu", "jeu"]
    assert tokens("lots lot cartes carte") == ["lot", "lot", "cart", "cart"]
    assert tokens("travail travaux") == ["travail", "travail"]


def test_feminine_participle_and_infinitive_share_a_stem() -> None:
    assert len(set(tokens("installée installé installés installer"))) == 1
    assert tokens("nouvelle nouvel") == ["nouvel", "nouvel"]
    assert tokens("régionale régional régionaux") == ["regional"] * 3


def test_stemming_is_conservative() -> None:
    # Short words, numbers, and mixed tokens are left alone; -ss is not a plural.
    assert tokens("gaz bus prix eau 116 20four15") == ["gaz", "bus", "prix", "eau", "116", "20four15"]
    assert tokens("process") == ["proces"]
    assert tokens("fourniture") != tokens("fournisseur")


def test_stop_words_are_removed() -> None:
    assert tokens("Fourniture de carburants pour les véhicules de la Ville et du CCAS") == [
        "fournitu",
        "carburant",
        "vehicul",
        "vill",
        "cca",
    ]
    assert tokens("the supply of fuel") == ["supply", "fuel"]


def test_phrase_tokens_use_the_same_normaliser() -> None:
    assert phrase_tokens("  Cartes accréditives ") == ("cart", "accreditiv")
    assert phrase_tokens("« voirie »") == ("voiri",)
    assert phrase_tokens("travaux de voirie") == tuple(tokens("Travaux sur la voirie"))
    assert phrase_tokens("de la") == ()


def test_real_boamp_text_with_cp1252_apostrophes(boamp_notices: dict[str, ClassifiedNotice]) -> None:
    description = boamp_notices["20-153663"].description
    assert description is not None and "d\x92eau" in description
    words = tokens(description)
    assert words[:6] == ["march", "objet", "realisation", "travail", "securisation", "ouvrag"]
    assert "l" not in words and "d" not in words
    at = words.index("production")
    assert words[at : at + 3] == ["production", "eau", "potabl"]
    assert words[at + 3] == "ensembl"


def test_real_boamp_titles_fold_case(boamp_notices: dict[str, ClassifiedNotice]) -> None:
    upper = boamp_notices["20-154405"].title
    assert upper.startswith("FOURNITURE DE COMPTEURS D'EAU")
    assert tokens(upper)[:4] == ["fournitu", "compteu", "eau", "exploitation"]


def test_plurals_in_aux_of_words_in_au() -> None:
    assert tokens("matériaux tuyaux noyaux") == tokens("matériau tuyau noyau")
    assert tokens("locaux") == tokens("local")
