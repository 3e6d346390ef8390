from __future__ import annotations

import time
from pathlib import Path

import pytest

from schemas.codelists.data import data_file
from schemas.notice import Notice, NoticeText
from services.classifier.inference import CpvInferrer, texts_for_inference
from services.ingest.sources import parse_document

FIXTURES = Path(__file__).parents[2] / "fixtures"


@pytest.fixture(scope="module")
def inferrer() -> CpvInferrer:
    return CpvInferrer.load()


def _notice(relative_path: str) -> Notice:
    path = FIXTURES / relative_path
    [notice] = parse_document(path.read_bytes(), filename=path.name)
    return notice


def _infer(inferrer: CpvInferrer, notice: Notice) -> list[str]:
    return [candidate.code for candidate in inferrer.infer(*texts_for_inference(notice))]


def test_waste_collection_notice_infers_division_90(inferrer: CpvInferrer) -> None:
    notice = _notice("eforms/ted/2024-OJS017-00047522.xml")
    assert notice.title.startswith("Prestations de collecte des colonnes de verre et de papier")

    codes = _infer(inferrer, notice)

    assert codes[0] == "90511000"  # Services de collecte des ordures


def test_title_alone_is_enough_for_waste_collection(inferrer: CpvInferrer) -> None:
    [best, *_] = inferrer.infer("Prestations de collecte des colonnes de verre et de papier", None, "fr")

    assert best.code[:2] == "90"


def test_project_management_notice_infers_division_71(inferrer: CpvInferrer) -> None:
    notice = _notice("eforms/ted/2024-OJS044-00129266.xml")
    assert notice.title.startswith("Mission de maîtrise d'oeuvre")

    assert _infer(inferrer, notice)[0][:2] == "71"


def test_maitrise_d_oeuvre_outweighs_the_works_it_designs(inferrer: CpvInferrer) -> None:
    [best, *_] = inferrer.infer("Mission de maîtrise d'œuvre pour la réhabilitation de l'école", None, "fr")

    assert best.code == "71000000"


def test_road_works(inferrer: CpvInferrer) -> None:
    [best, *_] = inferrer.infer("Travaux de voirie", None, "fr")

    assert best.code == "45233140"  # Travaux routiers
    assert best.confidence > 0.9


def test_food_supplies_notice_infers_division_15(inferrer: CpvInferrer) -> None:
    notice = _notice("boamp/xml-v230/test-attribution-12.xml")
    assert notice.title.startswith("Fourniture de denrées alimentaires")

    assert _infer(inferrer, notice)[0][:2] == "15"


def test_english_inspection_notice_infers_its_code(inferrer: CpvInferrer) -> None:
    notice = _notice("eforms/sdk-examples/cn_24_open.xml")
    assert notice.language == "en"

    assert _infer(inferrer, notice)[0] == "71630000"  # Technical inspection and testing services


def test_english_social_care_notice_infers_division_85(inferrer: CpvInferrer) -> None:
    notice = _notice("eforms/sdk-examples/cn-social_24.xml")
    assert notice.title == "Secure Care Services"

    assert _infer(inferrer, notice)[0][:2] == "85"


def test_english_titles(inferrer: CpvInferrer) -> None:
    assert inferrer.infer("Provision of cleaning services for council offices", None, "en")[0].code == "90910000"
    assert inferrer.infer("Road resurfacing", None, "en")[0].code == "45233220"  # Road-surfacing works


def test_keywords_absent_from_the_labels_are_understood(inferrer: CpvInferrer) -> None:
    # No CPV label says "intérim" nor "cartes accréditives"; the keyword table does.
    assert inferrer.infer("Prestation d'intérim médical", None, "fr")[0].code == "79620000"
    assert inferrer.infer("Fourniture de carburants par cartes accréditives", None, "fr")[0].code == "09100000"


def test_candidates_are_sorted_bounded_and_never_nested(inferrer: CpvInferrer) -> None:
    notice = _notice("boamp/xml-v230/test-pub.xml")
    candidates = inferrer.infer(*texts_for_inference(notice), k=5)

    assert len(candidates) == 5
    confidences = [c.confidence for c in candidates]
    assert confidences == sorted(confidences, reverse=True)
    assert all(0.0 <= c <= 1.0 for c in confidences)
    codes = [c.code for c in candidates]
    assert len(set(codes)) == 5
    for code in codes:
        assert not any(other != code and other.startswith(code.rstrip("0")) for other in codes)


def test_k_limits_the_candidates(inferrer: CpvInferrer) -> None:
    assert len(inferrer.infer("Travaux de voirie", None, "fr", k=2)) == 2
    with pytest.raises(ValueError, match="k must be at least 1"):
        inferrer.infer("Travaux de voirie", None, "fr", k=0)


def test_inference_is_deterministic(inferrer: CpvInferrer) -> None:
    notice = _notice("eforms/ted/2024-OJS197-00607986.xml")
    first = inferrer.infer(*texts_for_inference(notice))

    assert inferrer.infer(*texts_for_inference(notice)) == first
    assert CpvInferrer.load().infer(*texts_for_inference(notice)) == first


def test_empty_or_unknown_text_infers_nothing(inferrer: CpvInferrer) -> None:
    assert inferrer.infer("", None, "fr") == []
    assert inferrer.infer("   ", "", "en") == []
    assert inferrer.infer("de la et pour les", None, "fr") == []  # function words only
    assert inferrer.infer("Ավտոպահեստամասերի ձեռքբերում", None, "hy") == []  # no CPV label in Armenian


def test_accents_case_and_elision_do_not_matter(inferrer: CpvInferrer) -> None:
    plain = inferrer.infer("MAITRISE D OEUVRE", None, "fr")
    accented = inferrer.infer("Maîtrise d’œuvre", None, "fr")

    assert [c.code for c in plain][:1] == [c.code for c in accented][:1] == ["71000000"]


def test_text_for_inference_prefers_a_french_or_english_translation() -> None:
    notice = _notice("eforms/sdk-examples/pin-cfc_25.xml")
    assert notice.language == "de"
    english = NoticeText(title="Maintenance of fire doors", description="Maintenance and repair of fire doors")
    translated = notice.model_copy(update={"translations": {"en": english}})

    assert texts_for_inference(notice)[2] == "de"
    assert texts_for_inference(translated) == (english.title, english.description, "en")


def test_text_for_inference_adds_the_lot_titles() -> None:
    notice = _notice("eforms/ted/2024-OJS197-00607986.xml")
    lot_titles = [lot.title for lot in notice.lots if lot.title and lot.title != notice.title]
    assert lot_titles

    _title, description, _language = texts_for_inference(notice)

    assert description is not None
    assert all(title in description for title in lot_titles)


def test_works_with_french_labels_only() -> None:
    french_only = CpvInferrer.from_files(data_file("cpv_2008_fr.csv"), None, data_file("inference_keywords.csv"))

    assert french_only.infer("Travaux de voirie", None, "fr")[0].code == "45233140"


def test_a_keyword_with_an_unknown_code_is_refused(tmp_path: Path) -> None:
    keywords = tmp_path / "keywords.csv"
    keywords.write_text("keyword,code\nvoirie,45999999\n", encoding="utf-8")

    with pytest.raises(ValueError, match=r"keyword codes \['45999999'\] are not CPV 2008 codes"):
        CpvInferrer.from_files(data_file("cpv_2008_fr.csv"), None, keywords)


def test_two_keywords_that_read_the_same_are_refused(tmp_path: Path) -> None:
    keywords = tmp_path / "keywords.csv"
    keywords.write_text("keyword,code\nvéhicules,34100000\nvehicule,34100000\n", encoding="utf-8")

    with pytest.raises(ValueError, match="read the same once normalised"):
        CpvInferrer.from_files(data_file("cpv_2008_fr.csv"), None, keywords)


def test_inference_is_fast(inferrer: CpvInferrer) -> None:
    notice = _notice("eforms/ted/2024-OJS044-00129266.xml")
    texts = texts_for_inference(notice)
    started = time.perf_counter()
    for _ in range(50):
        inferrer.infer(*texts)
    assert (time.perf_counter() - started) / 50 < 0.05  # measured about 1-2 ms
