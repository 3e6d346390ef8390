from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from schemas.notice import Buyer, BuyerCategory
from services.classifier.buyers import buyer_category
from services.ingest.sources import parse_document

FIXTURES = Path(__file__).parents[2] / "fixtures"

STATE = BuyerCategory.STATE
REGION = BuyerCategory.REGION
DEPARTMENT = BuyerCategory.DEPARTMENT
MUNICIPALITY = BuyerCategory.MUNICIPALITY
HOSPITAL = BuyerCategory.HOSPITAL
UTILITY = BuyerCategory.UTILITY
OTHER = BuyerCategory.OTHER_PUBLIC

# The buyer of every real fixture notice with its expected category (the notice's first buyer, as parsed).
FIXTURE_BUYERS: list[tuple[str, str, BuyerCategory | None]] = [
    ("boamp/json-dila-api-v1/20-152081.json", "Commune de Berre l'Etang", MUNICIPALITY),
    ("boamp/opendatasoft/record-fnsimple-16-652.json", "CHU St Etienne", HOSPITAL),
    ("boamp/opendatasoft/record-mapa-16-138580.json", "Communauté d'Agglomération de Saintes", MUNICIPALITY),
    ("boamp/opendatasoft/record-rectificatif-16-4711.json", "CHU St Etienne", HOSPITAL),
    ("boamp/xml-v230/test-attribution-10.xml", "ville de Fécamp", MUNICIPALITY),
    ("boamp/xml-v230/test-attribution-11.xml", "Inter Rhône", None),  # an interprofession, private
    ("boamp/xml-v230/test-attribution-12.xml", "C.C.A.S. de Toulon", MUNICIPALITY),  # filed as 'ra' by BOAMP
    ("boamp/xml-v230/test-attribution-2.xml", "Communauté d'Agglomération de Saintes", MUNICIPALITY),
    ("boamp/xml-v230/test-attribution-3.xml", "Université paris Sud", OTHER),  # filed as 'cga' by BOAMP
    ("boamp/xml-v230/test-attribution-4.xml", "Ville de Troyes", MUNICIPALITY),
    ("boamp/xml-v230/test-attribution-5.xml", "Bordeaux Métropole", MUNICIPALITY),
    ("boamp/xml-v230/test-attribution-6.xml", "Communauté d'agglomérat. du gapençais", MUNICIPALITY),
    ("boamp/xml-v230/test-attribution-7.xml", "Ville de Suresnes", MUNICIPALITY),
    ("boamp/xml-v230/test-attribution-8.xml", "CHU St Etienne", HOSPITAL),
    ("boamp/xml-v230/test-attribution-9.xml", "DEPARTEMENT DES HAUTES-ALPES", DEPARTMENT),  # filed as 'ra'
    ("boamp/xml-v230/test-pub-2.xml", "Grand Port Maritime de Marseille", UTILITY),
    ("boamp/xml-v230/test-pub-3.xml", "SEMMY", None),  # a mixed-economy company, no type declared
    ("boamp/xml-v230/test-pub-4.xml", "COMMUNE DE LES ANDELYS", MUNICIPALITY),
    ("boamp/xml-v230/test-pub-5.xml", "MTSFP", STATE),
    ("boamp/xml-v230/test-pub-7.xml", "Cté de Cnes Pyrénées Audoises", MUNICIPALITY),
    ("boamp/xml-v230/test-pub-8.xml", "COMMUNE DE CARCANS", MUNICIPALITY),  # filed as 'ra'
    ("boamp/xml-v230/test-pub-9.xml", "CHU St Etienne", HOSPITAL),
    ("boamp/xml-v230/test-pub.xml", "Ville de Paris", MUNICIPALITY),
    ("eforms/sdk-examples/E4_minimal.xml", "Rouen Habitat", None),  # no legal type in the minimal example
    ("eforms/sdk-examples/can-desg_24.xml", "ZenithNova Innovations", None),  # org-sub-la: subsidised
    ("eforms/sdk-examples/can-modif_24_value.xml", "London South Bank University", OTHER),
    ("eforms/sdk-examples/can-social_24.xml", "ZenithNova Innovations Ltd.", STATE),
    ("eforms/sdk-examples/can_24_FRA_comments.xml", "Rouen Habitat", OTHER),
    ("eforms/sdk-examples/can_25_ITA.xml", "Rete Ferroviaria italiana", UTILITY),
    ("eforms/sdk-examples/can_81_FRA.xml", "Commissariat à l'énergie atomique et aux énergies alternatives", OTHER),
    ("eforms/sdk-examples/change-cn_24_open_dates.xml", "Renfrewshire Council", MUNICIPALITY),
    ("eforms/sdk-examples/change-cn_24_void.xml", "Publications Office of the European Union", OTHER),
    (
        "eforms/sdk-examples/cn-desg_24.xml",
        "Communauté de Communes de la Vallée de la Doller et du Soultzbach",
        MUNICIPALITY,
    ),
    ("eforms/sdk-examples/cn-social_24.xml", "Scotland Excel", OTHER),
    ("eforms/sdk-examples/cn_23.xml", "Communauté de communes Loches sud Touraine", MUNICIPALITY),
    ("eforms/sdk-examples/cn_24_FRA_comments.xml", "Rouen Habitat", OTHER),
    ("eforms/sdk-examples/cn_24_multilingual.xml", "Office des publications de l'Union européenne", OTHER),
    ("eforms/sdk-examples/cn_24_open.xml", "Renfrewshire Council", MUNICIPALITY),
    ("eforms/sdk-examples/cn_24_open_accel.xml", "Comando generale dell'Arma dei carabinieri", STATE),
    ("eforms/sdk-examples/cn_81_FRA.xml", "Commissariat à l'énergie atomique et aux énergies alternatives", OTHER),
    ("eforms/sdk-examples/pin-buyer_24.xml", "IRCCS Policlinico ospedale San Martino", HOSPITAL),
    ("eforms/sdk-examples/pin-cfc-social_24.xml", "ZenithNova Innovations Ltd.", MUNICIPALITY),  # la
    ("eforms/sdk-examples/pin-cfc_25.xml", "Flughafen Stuttgart GmbH", UTILITY),
    ("eforms/sdk-examples/pin-only_24.xml", "PartyName1234", OTHER),
    ("eforms/sdk-examples/pin-only_25.xml", "ZenithNova Innovations", UTILITY),  # water
    ("eforms/sdk-examples/pin-only_81_FRA.xml", "Marine/DCSSF/DSSF Toulon", STATE),  # def-cont, named Marine
    ("eforms/sdk-examples/pin-rtl_24.xml", "ZenithNova Innovations", OTHER),
    ("eforms/sdk-examples/qu-sy_25.xml", "Acque Bresciane srl", UTILITY),
    ("eforms/sdk-examples/t01_PRT.xml", "Município de Águeda", MUNICIPALITY),  # filed as 'ra'
    ("eforms/sdk-examples/t02_ESP.xml", "Ministerio de Transportes, Movilidad y Agenda Urbana", STATE),
    ("eforms/sdk-examples/veat_23.xml", "Stadt Neckargemünd", MUNICIPALITY),
    ("eforms/ted/2023-OJS167-00524889.xml", "Centre commun de recherche", OTHER),
    ("eforms/ted/2024-OJS015-00041387.xml", "Région Nouvelle-Aquitaine", REGION),
    ("eforms/ted/2024-OJS017-00047522.xml", "Communauté de Communes du Piémont Cévenol", MUNICIPALITY),
    ("eforms/ted/2024-OJS044-00127505.xml", "Ministerie van Defensie", STATE),
    ("eforms/ted/2024-OJS044-00128154.xml", '"Koleje Mazowieckie - KM" Sp. z o.o.', UTILITY),  # rail
    ("eforms/ted/2024-OJS044-00129266.xml", "EPDAHAA", OTHER),
    ("eforms/ted/2024-OJS065-00191534.xml", "SPF Intérieur", STATE),
    ("eforms/ted/2024-OJS074-00219998.xml", "Communauté d'agglomération CAP Excellence", MUNICIPALITY),
    ("eforms/ted/2024-OJS197-00607986.xml", "Régie des Bâtiments", STATE),  # a régie, but not of a network
    ("ocds/fictional-example-1.1/ocds-213czf-000-00001.json", "London Borough of Barnet", MUNICIPALITY),
    ("ocds/real-examples/moldova/ocds-ngfbwp-19651579.json", "CONSILIUL RAIONAL CIMIŞLIA", None),
    ("ocds/real-examples/moldova/ocds-ngfbwp-19750186.json", "SECRETARIATUL PARLAMENTULUI REPUBLICII MOLDOVA", None),
    (
        "ocds/real-examples/nigeria/ocds-gyl66f-borbda-27yetd-ocds-gyl66f-borbda-27yetd.json",
        "benin-owena river basin development authority",
        None,
    ),
]


@cache
def _buyers(relative_path: str) -> dict[str, Buyer]:
    path = FIXTURES / relative_path
    return {notice.buyer.name: notice.buyer for notice in parse_document(path.read_bytes(), filename=path.name)}


@pytest.mark.parametrize(("relative_path", "name", "expected"), FIXTURE_BUYERS)
def test_the_buyer_of_a_real_notice(relative_path: str, name: str, expected: BuyerCategory | None) -> None:
    buyer = _buyers(relative_path)[name]
    assert buyer_category(buyer) == expected


def test_every_eforms_and_boamp_fixture_has_an_expected_buyer() -> None:
    listed = {relative_path for relative_path, _, _ in FIXTURE_BUYERS}
    for folder in ("eforms", "boamp/xml-v230"):
        for path in (FIXTURES / folder).rglob("*.xml"):
            assert path.relative_to(FIXTURES).as_posix() in listed


def test_the_ministries_of_a_real_armenian_release_package_are_the_state() -> None:
    buyers = _buyers("ocds/real-examples/armenia/6.json")
    categories = {name: buyer_category(buyer) for name, buyer in buyers.items()}
    assert categories["Ministry of Finance of the RA"] == STATE
    assert (
        categories[
            "MINISTRY OF TERRITORIAL ADMINISTRATION AND DEVELOPMENT OF REPUBLIC OF ARMENIA  STATE MIGRATION SERVICE"
        ]
        == STATE
    )
    assert categories["Constitutional Court RA"] is None
    assert categories["Ararat Regional Administration of the RA"] is None  # no French or eForms evidence
    assert {name for name, category in categories.items() if category == STATE} == {
        name for name in buyers if "ministry" in name.lower()
    }


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Mairie de Toulouse", MUNICIPALITY),
        ("MAIRIE", MUNICIPALITY),
        ("Commune d'Albi", MUNICIPALITY),
        ("Ville d'Annecy", MUNICIPALITY),
        ("Communauté urbaine de Dunkerque", MUNICIPALITY),
        ("Toulouse Métropole", MUNICIPALITY),
        ("SIVOM de la vallée", MUNICIPALITY),
        ("Syndicat intercommunal des eaux de la Veyle", MUNICIPALITY),
        ("Centre communal d'action sociale de Lyon", MUNICIPALITY),
        ("Conseil départemental de la Haute-Garonne", DEPARTMENT),
        ("Conseil général du Nord", DEPARTMENT),
        ("Département du Gard", DEPARTMENT),
        ("Département d'Ille-et-Vilaine", DEPARTMENT),
        ("Collectivité européenne d'Alsace", DEPARTMENT),
        ("Région Occitanie", REGION),
        ("REGION ILE DE FRANCE", REGION),
        ("Conseil régional de Bretagne", REGION),
        ("Collectivité de Corse", REGION),
        ("CHU de Toulouse", HOSPITAL),
        ("C.H.U. de Nantes", HOSPITAL),
        ("CHRU de Lille", HOSPITAL),
        ("Centre Hospitalier de Cahors", HOSPITAL),
        ("Hôpital Necker", HOSPITAL),
        ("Hospices Civils de Lyon", HOSPITAL),
        ("AP-HP", HOSPITAL),
        ("Assistance Publique - Hôpitaux de Paris", HOSPITAL),
        ("GHT Cœur Grand Est", HOSPITAL),
        ("EHPAD Les Tilleuls", HOSPITAL),
        ("Ministère des Armées", STATE),
        ("Préfecture de la Gironde", STATE),
        ("DIRECCTE Occitanie", STATE),
        ("Armée de l'Air et de l'Espace", STATE),
        ("SNCF Réseau", UTILITY),
        ("RATP", UTILITY),
        ("EDF", UTILITY),
        ("Enedis", UTILITY),
        ("GRDF", UTILITY),
        ("La Poste", UTILITY),
        ("Régie des eaux de Grenoble", UTILITY),
        ("Université de Bordeaux", OTHER),
        ("Agence de l'eau Adour-Garonne", None),  # no legal type given: no evidence it is public
        ("Rue de la Poste SARL", None),
        ("Commissariat à l'énergie atomique", None),  # not a police station
        ("Cheval Blanc", None),  # 'ch' alone is no hospital
    ],
)
def test_a_name_pattern(name: str, expected: BuyerCategory | None) -> None:
    assert buyer_category(Buyer(name=name)) == expected


def test_a_specific_name_wins_over_the_legal_type() -> None:
    assert buyer_category(Buyer(name="Département des Landes", buyer_type="ra")) == DEPARTMENT
    assert buyer_category(Buyer(name="Commune de Carcans", buyer_type="ra")) == MUNICIPALITY
    assert buyer_category(Buyer(name="Université de Lille", buyer_type="cga")) == OTHER


@pytest.mark.parametrize(
    ("buyer_type", "main_activity", "expected"),
    [
        ("cga", None, STATE),
        ("ra", None, REGION),
        ("la", None, MUNICIPALITY),
        ("LA", None, MUNICIPALITY),
        ("la", "water", MUNICIPALITY),  # a government level outranks its activity
        ("body-pl", "water", UTILITY),
        (None, "electricity", UTILITY),
        ("pub-undert-ra", "urttb", UTILITY),
        ("spec-rights-entity", "gas-heat", UTILITY),
        ("spec-rights-entity", None, None),
        ("body-pl", "health", OTHER),  # health alone names no hospital
        ("body-pl-cga", None, OTHER),
        ("pub-undert", "hc-am", OTHER),
        ("grp-p-aut", None, OTHER),
        ("int-org", None, OTHER),
        ("org-sub", None, None),
        ("def-cont", "defence", None),
        ("not-a-code", None, None),
        (None, None, None),
    ],
)
def test_legal_type_and_main_activity(
    buyer_type: str | None, main_activity: str | None, expected: BuyerCategory | None
) -> None:
    assert buyer_category(Buyer(name="Acme", buyer_type=buyer_type, main_activity=main_activity)) == expected


def test_a_clinic_is_a_hospital_only_when_its_activity_is_health() -> None:
    assert buyer_category(Buyer(name="Clinique du Parc", buyer_type="body-pl", main_activity="health")) == HOSPITAL
    assert buyer_category(Buyer(name="Clinique du Parc", buyer_type="body-pl")) == OTHER
