from __future__ import annotations

from pathlib import Path

import pytest

from services.classifier.cpv import CpvVocabulary
from services.classifier.sectors import SectorTaxonomy


@pytest.fixture(scope="module")
def taxonomy() -> SectorTaxonomy:
    return SectorTaxonomy.load()


@pytest.fixture(scope="module")
def vocabulary() -> CpvVocabulary:
    return CpvVocabulary.load()


def test_the_taxonomy_has_between_20_and_30_sectors_with_both_labels(taxonomy: SectorTaxonomy) -> None:
    assert 20 <= len(taxonomy.sectors) <= 30
    batiment = taxonomy.get("batiment")
    assert batiment is not None
    assert (batiment.label_fr, batiment.label_en) == ("Bâtiment", "Building works")
    assert taxonomy.get("maitrise-oeuvre") is not None
    assert taxonomy.get("unknown") is None


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
        ("45314320", ["batiment", "telecoms", "electricite-eclairage"]),  # network cabling (BOAMP 17-5219)
        ("71240000", ["maitrise-oeuvre"]),  # BOAMP 16-181902
        ("71000000", ["maitrise-oeuvre"]),  # design contest, TED 2024-OJS015-00041387
        ("90911200", ["nettoyage"]),  # building cleaning, TED 2024-OJS197-00607986
        ("90500000", ["environnement-dechets"]),  # waste disposal site, TED 2024-OJS074-00219998
        ("90511100", ["environnement-dechets"]),  # glass and paper collection, TED 2024-OJS017-00047522
        ("90000000", ["nettoyage", "environnement-dechets", "eau-assainissement"]),
        ("65100000", ["eau-assainissement"]),  # drinking water concession (BOAMP 17-40964)
        ("65110000", ["eau-assainissement"]),
        ("09000000", ["energie"]),  # service-station concession (BOAMP 17-22464)
        ("79625000", ["interim-recrutement"]),  # locum anaesthetists (BOAMP 16-652)
        ("79952000", ["communication-evenementiel"]),  # events (BOAMP 16-186359)
        ("77310000", ["espaces-verts"]),  # eForms SDK cn_24_FRA_comments
        ("72230000", ["informatique"]),
        ("30200000", ["informatique"]),  # computer equipment (Moldova OCDS)
        ("30192000", ["fournitures-bureau"]),
        ("30000000", ["informatique", "fournitures-bureau"]),
        ("34110000", ["vehicules"]),  # car leasing, TED 2024-OJS044-00128154
        ("85312110", ["sante", "action-sociale"]),  # eForms SDK cn_23
        ("33157000", ["sante"]),
        ("15890000", ["restauration"]),  # food supplies (BOAMP 17-2599)
        ("55523100", ["restauration"]),  # school catering
        ("80500000", ["formation"]),  # training, TED 2023-OJS167-00524889
        ("79410000", ["conseil"]),
        ("79713000", ["securite"]),
        ("50118110", ["vehicules"]),  # vehicle towing (BOAMP 16-186394)
        ("60112000", ["transport"]),
        ("64210000", ["telecoms"]),
        ("66510000", ["assurance-finance"]),
        ("24542000", []),  # chemicals: no sector, still matchable by CPV
    ],
)
def test_real_codes_fall_in_the_expected_sectors(taxonomy: SectorTaxonomy, code: str, sectors: list[str]) -> None:
    assert taxonomy.sectors_of([code]) == sectors


def test_several_codes_give_the_union_of_their_sectors_in_taxonomy_order(taxonomy: SectorTaxonomy) -> None:
    assert taxonomy.sectors_of(["90911200", "45211000", "71240000"]) == ["batiment", "maitrise-oeuvre", "nettoyage"]
    assert taxonomy.sectors_of([]) == []


def test_a_taxonomy_with_a_bad_prefix_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "sectors.json"
    bad.write_text('{"sectors": [{"id": "btp", "label_fr": "BTP", "label_en": "Works", "cpv_prefixes": ["4"]}]}')
    with pytest.raises(ValueError, match=r"sector 'btp' needs CPV prefixes of 2 to 8 digits; got \['4'\]"):
        SectorTaxonomy.from_json(bad)
