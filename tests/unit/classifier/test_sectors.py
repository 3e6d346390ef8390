from __future__ import annotations

from pathlib import Path

import pytest

from schemas.codelists.cpv import CpvVocabulary
from schemas.codelists.sectors import SectorTaxonomy


@pytest.fixture(scope="module")
def taxonomy() -> SectorTaxonomy:
    return SectorTaxonomy.load()


@pytest.fixture(scope="module")
def vocabulary() -> CpvVocabulary:
    return CpvVocabulary.load()


def test_the_taxonomy_has_between_15_and_25_sectors_with_both_labels(taxonomy: SectorTaxonomy) -> None:
    assert 15 <= len(taxonomy.sectors) == 22 <= 25
    batiment = taxonomy.get("batiment")
    assert batiment is not None
    assert (batiment.label_fr, batiment.label_en) == ("Bâtiment", "Building works")
    it = taxonomy.get("informatique-telecoms")
    assert it is not None
    assert (it.label_fr, it.label_en) == ("Informatique et télécommunications", "IT and telecoms")
    assert taxonomy.get("maitrise-oeuvre") is not None
    assert taxonomy.get("unknown") is None


def test_every_cpv_2008_code_falls_in_at_least_one_sector(taxonomy: SectorTaxonomy, vocabulary: CpvVocabulary) -> None:
    assert len(vocabulary) == 9454
    homeless = [code for code in vocabulary if not taxonomy.sectors_of([code])]
    assert homeless == []


def test_every_sector_covers_codes_of_its_own(taxonomy: SectorTaxonomy, vocabulary: CpvVocabulary) -> None:
    # No sector is a mere subset of the others: each is the only sector of some codes.
    sole = {sector.id: 0 for sector in taxonomy.sectors}
    for code in vocabulary:
        sectors = taxonomy.sectors_of([code])
        if len(sectors) == 1:
            sole[sectors[0]] += 1
    assert [sector_id for sector_id, count in sole.items() if count == 0] == []


def test_every_prefix_is_a_cpv_2008_code_of_the_hierarchy(taxonomy: SectorTaxonomy, vocabulary: CpvVocabulary) -> None:
    missing = [
        (sector.id, prefix)
        for sector in taxonomy.sectors
        for prefix in sector.cpv_prefixes
        if prefix.ljust(8, "0") not in vocabulary
    ]
    assert missing == []


def test_no_prefix_is_already_covered_by_another_prefix_of_its_sector(taxonomy: SectorTaxonomy) -> None:
    redundant = [
        (sector.id, prefix, other)
        for sector in taxonomy.sectors
        for prefix in sector.cpv_prefixes
        for other in sector.cpv_prefixes
        if other != prefix and len(other) < 8 and prefix.startswith(other)
    ]
    assert redundant == []


@pytest.mark.parametrize(
    ("code", "sectors"),
    [
        # main CPV codes of the real notices in the shared test data
        ("45233140", ["travaux-publics"]),  # road works
        ("45211000", ["batiment"]),  # "construction de 63 logements" (BOAMP 16-186063)
        ("45000000", ["batiment", "travaux-publics"]),  # construction work in general (Moldova OCDS)
        ("45212100", ["batiment"]),  # skatepark (BOAMP 16-185754)
        ("45314320", ["batiment", "informatique-telecoms"]),  # network cabling (BOAMP 17-5219)
        ("71240000", ["maitrise-oeuvre"]),  # BOAMP 16-181902
        ("71000000", ["maitrise-oeuvre"]),  # design contest, TED 2024-OJS015-00041387
        ("90911200", ["nettoyage"]),  # building cleaning, TED 2024-OJS197-00607986
        ("90500000", ["eau-dechets-environnement"]),  # waste disposal site, TED 2024-OJS074-00219998
        ("90511100", ["eau-dechets-environnement"]),  # glass and paper collection, TED 2024-OJS017-00047522
        ("90000000", ["nettoyage", "eau-dechets-environnement"]),
        ("65100000", ["eau-dechets-environnement"]),  # drinking water concession (BOAMP 17-40964)
        ("65110000", ["eau-dechets-environnement"]),  # eForms SDK veat_23
        ("65000000", ["eau-dechets-environnement", "energie"]),
        ("09000000", ["energie"]),  # service-station concession (BOAMP 17-22464)
        ("09399855", ["energie"]),  # outside CPV 2008, kept by its division (Nigeria OCDS)
        ("79625000", ["conseil"]),  # locum anaesthetists (BOAMP 16-652)
        ("79952000", ["conseil", "communication-evenementiel"]),  # events (BOAMP 16-186359)
        ("77310000", ["espaces-verts"]),  # eForms SDK cn_24_FRA_comments
        ("72230000", ["informatique-telecoms"]),
        ("30200000", ["informatique-telecoms"]),  # computer equipment (Moldova OCDS)
        ("30192000", ["fournitures-mobilier"]),
        ("30000000", ["informatique-telecoms", "fournitures-mobilier"]),
        ("39143100", ["fournitures-mobilier"]),  # eForms SDK cn_24_open_accel
        ("34110000", ["transport"]),  # car leasing, TED 2024-OJS044-00128154
        ("60112000", ["transport"]),  # eForms SDK t01_PRT
        ("85312110", ["sante", "action-sociale"]),  # eForms SDK cn_23
        ("98910000", ["action-sociale"]),  # eForms SDK pin-only_25
        ("33157000", ["sante"]),  # eForms SDK pin-buyer_24
        ("15890000", ["restauration"]),  # food supplies (BOAMP 17-2599)
        ("55523100", ["restauration"]),  # school catering (purchase plan)
        ("80500000", ["formation"]),  # training, TED 2023-OJS167-00524889
        ("79410000", ["conseil"]),  # eForms SDK can-modif_24_value
        ("73000000", ["conseil"]),  # UK Contracts Finder OCDS
        ("79713000", ["securite"]),
        ("35520000", ["securite"]),  # eForms SDK pin-only_81_FRA
        ("75121000", ["conseil"]),  # eForms SDK can-social_24
        ("50118110", ["transport", "maintenance-installation"]),  # vehicle towing (BOAMP 16-186394)
        ("50712000", ["maintenance-installation"]),  # eForms SDK pin-cfc_25
        ("64210000", ["informatique-telecoms"]),
        ("66510000", ["finance-assurance-immobilier"]),
        ("70000000", ["finance-assurance-immobilier"]),
        ("24542000", ["industrie-equipements"]),  # chemicals (BOAMP 17-1515)
        ("42000000", ["industrie-equipements"]),
        ("18100000", ["habillement-textile"]),
        ("92000000", ["culture-sport-loisirs"]),
        ("22000000", ["communication-evenementiel"]),
    ],
)
def test_real_codes_fall_in_the_expected_sectors(taxonomy: SectorTaxonomy, code: str, sectors: list[str]) -> None:
    assert taxonomy.sectors_of([code]) == sectors


def test_several_codes_give_the_union_of_their_sectors_in_taxonomy_order(taxonomy: SectorTaxonomy) -> None:
    assert taxonomy.sectors_of(["90911200", "45211000", "71240000"]) == ["batiment", "maitrise-oeuvre", "nettoyage"]
    assert taxonomy.sectors_of(["45314320", "45314320"]) == ["batiment", "informatique-telecoms"]
    assert taxonomy.sectors_of([]) == []


def test_a_taxonomy_with_a_bad_prefix_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "sectors.json"
    bad.write_text('{"sectors": [{"id": "btp", "label_fr": "BTP", "label_en": "Works", "cpv_prefixes": ["4"]}]}')
    with pytest.raises(ValueError, match=r"sector 'btp' needs CPV prefixes of 2 to 8 digits; got \['4'\]"):
        SectorTaxonomy.from_json(bad)
