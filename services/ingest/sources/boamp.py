"""BOAMP notices (the French official bulletin of public procurement) turned into canonical notices.

Three shapes carry the same content:

- the DILA XML feed, schema Boamp_v230: an ANNONCE with a GESTION block (identity, type, indexation) and a
  DONNEES block (buyer, object, procedure, award);
- the old DILA JSON API: the same tree with lower-cased names stripped of `_` and `-`, every alternative of a
  choice present as null, empty elements written as an XML string, and dates in epoch milliseconds;
- the Opendatasoft record: flat fields (`idweb`, `objet`, `famille`, `code_departement`, `dateparution`, ...)
  plus `donnees`, a JSON string whose root names the form: MAPA or FNSimple (the DONNEES tree) or EFORMS (an
  eForms UBL notice written as JSON, parsed by the eForms parser).

All three are read through one name-normalised tree (`_Node`), so each field is located once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from lxml import etree

from schemas.notice import Address, Buyer, ContractNature, Lot, Money, Notice, NoticeFlags, NoticeKind, Place
from services.ingest.sources._errors import DocumentError
from services.ingest.sources.eforms import is_eforms, parse_eforms

SOURCE = "boamp"

_NOTICE_URL = "https://www.boamp.fr/avis/detail/{}"
# BOAMP is published in Paris time: a date or time written without a zone is Paris-local.
_PARIS = ZoneInfo("Europe/Paris")
_IDWEB = re.compile(r"^\d{2}-\d+$")
_IDWEB_ANYWHERE = re.compile(r"(?<![\d-])(\d{2}-\d{1,7})(?![\d-])")
_CPV = re.compile(r"^(?P<code>\d{8})(-\d)?$")
_DEPARTMENT = re.compile(r"^(?:0?[1-9]|1\d|2[1-9AB]|[3-8]\d|9[0-5]|97[1-6])$")  # no "20": Corsica is 2A and 2B
_DATE = re.compile(r"^(?P<date>\d{4}-\d{2}-\d{2})(?P<zone>Z|[+-]\d{2}:\d{2})?$")
_EPOCH_MILLISECONDS = re.compile(r"^-?\d{11,}$")

# Paths in the normalised tree: names lower-cased without `_` or `-` (TYPE_AVIS -> typeavis, CMP-2006 -> cmp2006).
_IDWEB_PATH = "gestion/reference/idweb"
_TYPE_AVIS = "gestion/reference/typeavis"
_INDEXATION = "gestion/indexation"
_PRIOR_NOTICES = "gestion/marche/annonceanterieur/reference"
_BUYER = "donnees/identite"

_KIND_BY_NATURE = {
    "appeloffre": NoticeKind.COMPETITION,
    "attribution": NoticeKind.RESULT,
    "intentionconclure": NoticeKind.RESULT,  # voluntary ex-ante transparency: the contractor is chosen
    "modification": NoticeKind.RESULT,  # modification of a contract already awarded
    "soustraitance": NoticeKind.RESULT,
    "preinformation": NoticeKind.PLANNING,
    "avisprealable": NoticeKind.PLANNING,
    "periodique": NoticeKind.PLANNING,  # periodic indicative notice
    "profilacheteur": NoticeKind.PLANNING,  # prior information published on a buyer profile
}
_CORRECTING_NATURES = {"rectificatif", "annulation"}

_CONTRACT_NATURES = {
    "travaux": ContractNature.WORKS,
    "fournitures": ContractNature.SUPPLIES,
    "service": ContractNature.SERVICES,
    "services": ContractNature.SERVICES,
}
# To the eForms procedure-type codes, so that one subscription filter works across sources. An adapted procedure
# (MAPA) has no eForms code of its own: French buyers' eForms notices declare it as another single-stage one.
_PROCEDURES = {
    "ouvert": "open",
    "restreint": "restricted",
    "negocie": "neg-w-call",
    "dialoguecompetitif": "comp-dial",
    "partenariatinnovation": "innovation",
    "procedureadapte": "oth-single",
    "attribuesanspubjoue": "neg-wo-call",
}
# To the eForms buyer-legal-type codes (Buyer.buyer_type); "autre" says nothing and maps to nothing.
_BUYER_TYPES = {
    "etat": "cga",
    "minautoritenationale": "cga",
    "region": "ra",
    "departement": "ra",
    "autoriteregional": "ra",
    "autotriteregional": "ra",  # sic: the real feed misspells it
    "commune": "la",
    "ept": "body-pl",  # établissement public territorial
    "epn": "body-pl",  # établissement public national
    "organismedroitpublic": "body-pl",
    "institutioneuropeenne": "eu-ins-bod-ag",
}
# To the eForms main-activity codes (Buyer.main_activity).
_MAIN_ACTIVITIES = {
    "actservadmpub": "gen-pub",
    "defense": "defence",
    "ordresecuritepublic": "pub-os",
    "environnement": "env-pro",
    "affaireseco": "econ-aff",
    "sante": "health",
    "logdevcol": "hc-am",
    "protectionsociale": "soc-pro",
    "loisirs": "rcr",
    "education": "educ",
    "eau": "water",
    "serchemferrambus": "urttb",
}


def normalise_department(raw: str | int | None) -> str | None:
    """A French department code as INSEE writes it ("5" -> "05", "2a" -> "2A", "971"), or None if it is not one."""
    if raw is None:
        return None
    code = str(raw).strip().upper()
    if not _DEPARTMENT.match(code):
        return None
    return code.zfill(2)


def is_boamp_xml(root: etree._Element) -> bool:
    """Whether a parsed XML document is a BOAMP notice of the DILA feed (an ANNONCE with GESTION and DONNEES)."""
    return root.tag == "ANNONCE" and root.find("GESTION") is not None and root.find("DONNEES") is not None


def parse_boamp_xml(root: etree._Element) -> list[Notice]:
    """Map a BOAMP ANNONCE (root element of a document read by `parse_xml`) to its canonical notice.

    Raises DocumentError: `missing-field` without an IDWEB, title or buyer name, `invalid-value` for unreadable
    dates, amounts or CPV codes, `unsupported-notice` for a notice type that is not a procurement notice.
    """
    return [_notice(_Node.from_xml(root), _RecordFields())]


def is_boamp_record(value: Any) -> bool:
    """Whether a decoded JSON document is a BOAMP record: Opendatasoft (`idweb` + `donnees`), a list or a
    `results` export of them, or a record of the old DILA JSON API (`gestion` + `donnees`)."""
    if isinstance(value, dict) and isinstance(value.get("results"), list) and "total_count" in value:
        return all(_is_single_record(item) for item in value["results"])
    if isinstance(value, list):
        return bool(value) and all(_is_single_record(item) for item in value)
    return _is_single_record(value)


def parse_boamp_record(value: Any) -> list[Notice]:
    """Map BOAMP JSON records (see `is_boamp_record`) to canonical notices, one per record.

    Raises DocumentError like `parse_boamp_xml`, plus `malformed-json` when `donnees` is not valid JSON and
    `unknown-format` when the value is not a BOAMP record.
    """
    if not is_boamp_record(value):
        raise DocumentError(
            "unknown-format",
            "not a BOAMP record: expected an object with `idweb` and `donnees` (Opendatasoft), a list or "
            "`results` export of them, or an object with `gestion` and `donnees` (DILA JSON API)",
        )
    records = value["results"] if isinstance(value, dict) and "results" in value else value
    return [_record(record) for record in (records if isinstance(records, list) else [records])]


# --- records ---


def _is_single_record(value: Any) -> bool:
    if not isinstance(value, dict) or "donnees" not in value:
        return False
    return "idweb" in value or isinstance(value.get("gestion"), dict)


def _record(record: dict[str, Any]) -> Notice:
    if "idweb" not in record:  # the old DILA JSON API: the XML tree, lower-cased
        return _notice(_Node.from_json("annonce", record, null_is_empty=False), _RecordFields())
    idweb = str(record["idweb"]).strip()
    donnees = _decoded_donnees(record.get("donnees"), idweb)
    fields = _RecordFields.from_record(record)
    if donnees is None:
        return _notice(_Node("annonce", None, {}, ()), fields)
    form, content = donnees
    if form == "eforms":
        return _eforms_notice(content, fields)
    return _notice(_Node("annonce", None, {}, (_Node.from_json("donnees", content, null_is_empty=True),)), fields)


_DONNEES_SECTIONS = {"identite", "objet", "procedure", "attribution"}


def _decoded_donnees(raw: Any, idweb: str) -> tuple[str, Any] | None:
    """The form name (normalised: mapa, fnsimple, eforms, ...) and its content, from `donnees`."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise DocumentError(
                "malformed-json",
                f"record {idweb}: `donnees` is not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}; "
                "send the record as the API returned it",
            ) from None
    if isinstance(raw, dict) and len(raw) > 1 and _DONNEES_SECTIONS & {_normalised_name(key) for key in raw}:
        # No form root: the sections of the DILA DONNEES element themselves (IDENTITE, OBJET, ...), as older
        # exports and re-serialised records give them.
        return "donnees", raw
    if not isinstance(raw, dict) or len(raw) != 1:
        keys = sorted(raw) if isinstance(raw, dict) else type(raw).__name__
        raise DocumentError(
            "invalid-value",
            f"record {idweb}: `donnees` must be an object with one root (MAPA, FNSimple, EFORMS, ...), got {keys}",
        )
    ((form, content),) = raw.items()
    normalised = _normalised_name(form)
    if normalised == "donnees" and isinstance(content, dict):  # the DONNEES element itself, wrapped once more
        return _decoded_donnees(content, idweb)
    return normalised, content


@dataclass(frozen=True)
class _RecordFields:
    """The flat fields of an Opendatasoft record; they win over the same facts read in `donnees`."""

    idweb: str | None = None
    title: str | None = None
    family: str | None = None
    nature_as_published: str | None = None
    nature: str | None = None
    status: str | None = None
    published: str | None = None
    deadline: str | None = None
    buyer_name: str | None = None
    contract_nature: str | None = None
    prior_idwebs: tuple[str, ...] = ()
    url: str | None = None
    procedure: str | None = None
    publication_departments: tuple[str, ...] = ()
    performance_departments: tuple[str, ...] = ()
    descriptors: tuple[str, ...] = ()

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> _RecordFields:
        def flat(name: str) -> str | None:
            value = record.get(name)
            if isinstance(value, list):
                value = value[0] if value else None
            text = str(value).strip() if value is not None else ""
            return text or None

        prior = [record.get("annonce_lie"), record.get("annonces_anterieures")]
        prior_idwebs = [match for value in prior if value for match in _IDWEB_ANYWHERE.findall(json.dumps(value))]
        own = flat("idweb")
        return cls(
            idweb=own,
            title=flat("objet"),
            family=flat("famille"),
            nature_as_published=flat("nature"),
            nature=_normalised_name(flat("nature") or "") or None,
            status=_normalised_name(flat("etat") or "") or None,
            published=flat("dateparution"),
            deadline=flat("datelimitereponse"),
            buyer_name=flat("nomacheteur"),
            contract_nature=_normalised_name(flat("type_marche") or "") or None,
            prior_idwebs=tuple(idweb for idweb in dict.fromkeys(prior_idwebs) if idweb != own),
            url=flat("url_avis"),
            procedure=_normalised_name(flat("type_procedure") or "") or None,
            publication_departments=tuple(_listed(record.get("code_departement"))),
            performance_departments=tuple(_listed(record.get("code_departement_prestation"))),
            descriptors=tuple(
                f"{code}:{label}"
                for code, label in zip(
                    _listed(record.get("descripteur_code")), _listed(record.get("descripteur_libelle")), strict=False
                )
            ),
        )


def _listed(value: Any) -> list[str]:
    """An Opendatasoft multi-valued field: a list, or one value."""
    values = value if isinstance(value, list) else [value]
    return [text for item in values if (text := _scalar_text(item)) is not None]


# --- the notice ---


def _notice(annonce: _Node, fields: _RecordFields) -> Notice:
    idweb = fields.idweb or annonce.text_at(_IDWEB_PATH)
    if idweb is None:
        raise _missing("IDWEB", "/ANNONCE/GESTION/REFERENCE/IDWEB (or the record's `idweb`)")
    nature = fields.nature or _choice(annonce, f"{_TYPE_AVIS}/nature")
    status = fields.status or _choice(annonce, f"{_TYPE_AVIS}/statut")
    prior = _prior_notices(annonce, fields)
    correcting = nature in _CORRECTING_NATURES or status in _CORRECTING_NATURES
    cancelled = "annulation" in (nature, status)
    kind = _kind(idweb, nature, prior if correcting else [])
    original = prior[0][0] if correcting and prior else None
    objet = annonce.first("donnees/objet")
    title = fields.title or _title(annonce, objet)
    if title is None:
        raise _missing("title", "/ANNONCE/DONNEES/OBJET/TITRE_MARCHE or OBJET_COMPLET (or the record's `objet`)")
    calls = [prior_idweb for prior_idweb, prior_nature in prior if prior_nature == "appeloffre"]
    return Notice(
        notice_id=f"{SOURCE}:{original or idweb}",
        version="",  # BOAMP gives no revision: a content hash is filled in
        source=SOURCE,
        source_id=idweb,
        source_url=fields.url or _NOTICE_URL.format(idweb),
        procedure_id=calls[0] if calls else idweb,
        kind=kind,
        notice_type=_notice_type(annonce, fields),
        is_change=correcting,
        cancelled=cancelled,
        change_of=original,
        change_description=_text_of(annonce, "donnees/rectif", "donnees/annulation"),
        title=title,
        description=_description(objet, title),
        language="fr",
        buyer=_buyer(annonce, fields),
        contract_nature=_CONTRACT_NATURES.get(fields.contract_nature or _choice(objet, "typemarche") or ""),
        procedure=_PROCEDURES.get(_choice(annonce, "donnees/procedure/typeprocedure") or fields.procedure or ""),
        cpv_main=_cpv_main(objet),
        cpv_additional=_cpv_additional(objet),
        places=[*_places(objet), *_department_places(annonce, fields)],
        estimated_value=_estimated_value(annonce, objet),
        published_at=_datetime(fields.published or annonce.text_at(f"{_INDEXATION}/datepublication"), "publication"),
        deadline=_deadline(annonce, fields),
        lots=_lots(objet),
        flags=_flags(annonce),
        links=_links(annonce, idweb),
        descriptors=list(fields.descriptors) or _descriptors(annonce),
    )


def _eforms_notice(content: Any, fields: _RecordFields) -> Notice:
    root = _eforms_xml(content)
    if not is_eforms(root):
        raise DocumentError(
            "invalid-value",
            f"record {fields.idweb}: the EFORMS `donnees` root {etree.QName(root).localname!r} is not an eForms "
            "notice (ContractNotice, ContractAwardNotice, PriorInformationNotice)",
        )
    notice = parse_eforms(root)
    idweb = fields.idweb or ""
    original = fields.prior_idwebs[0] if notice.is_change and fields.prior_idwebs else None
    return notice.model_copy(
        update={
            "notice_id": f"{SOURCE}:{original or idweb}",
            "version": "",
            "source": SOURCE,
            "source_id": idweb,
            "source_url": fields.url or _NOTICE_URL.format(idweb),
            "change_of": original if notice.is_change else None,
            "title": fields.title or notice.title,
            "published_at": _datetime(fields.published, "publication") or notice.published_at,
            "deadline": notice.deadline or _datetime(fields.deadline, "deadline", end_of_day=True),
            "links": list(dict.fromkeys([_NOTICE_URL.format(idweb), *notice.links])),
            "places": [*notice.places, *_department_places(_Node("annonce", None, {}, ()), fields)],
            "descriptors": list(fields.descriptors),
        }
    )


# --- identity, kind and changes ---


def _chosen(node: _Node | None, path: str) -> _Node | None:
    """The chosen alternative of a choice element, e.g. the APPEL_OFFRE element of NATURE."""
    element = node.first(path) if node is not None else None
    return element.children[0] if element is not None and element.children else None


def _choice(node: _Node | None, path: str) -> str | None:
    """The normalised name of the chosen alternative of a choice element, e.g. NATURE/APPEL_OFFRE -> "appeloffre"."""
    chosen = _chosen(node, path)
    return chosen.name if chosen is not None else None


def _prior_notices(annonce: _Node, fields: _RecordFields) -> list[tuple[str, str | None]]:
    """(IDWEB, nature) of each earlier notice this one refers to, most recent reference first as published."""
    found = [
        (idweb, _choice(reference, "typeavis/nature"))
        for reference in annonce.all(_PRIOR_NOTICES)
        if (idweb := reference.text_at("idweb")) is not None and _IDWEB.match(idweb)
    ]
    known = {idweb for idweb, _ in found}
    return found + [(idweb, None) for idweb in fields.prior_idwebs if idweb not in known]


def _kind(idweb: str, nature: str | None, corrected: list[tuple[str, str | None]]) -> NoticeKind:
    if nature in _KIND_BY_NATURE:
        return _KIND_BY_NATURE[nature]
    if nature in _CORRECTING_NATURES:
        # A correction is a stage of the notice it corrects; without that notice, the usual case is a call.
        corrected_natures = [prior_nature for _, prior_nature in corrected if prior_nature in _KIND_BY_NATURE]
        return _KIND_BY_NATURE[corrected_natures[0]] if corrected_natures else NoticeKind.COMPETITION
    if nature is None:
        raise _missing("notice nature", "/ANNONCE/GESTION/REFERENCE/TYPE_AVIS/NATURE (or the record's `nature`)")
    raise DocumentError(
        "unsupported-notice",
        f"notice {idweb} has nature {nature!r}, which is not a procurement notice (accepted: "
        f"{', '.join(sorted([*_KIND_BY_NATURE, *_CORRECTING_NATURES]))})",
    )


def _notice_type(annonce: _Node, fields: _RecordFields) -> str | None:
    """BOAMP's own type, e.g. "JOUE/APPEL_OFFRE/STANDARD": the family, the nature and its variant."""
    family = _chosen(annonce, f"{_TYPE_AVIS}/famille")
    nature = _chosen(annonce, f"{_TYPE_AVIS}/nature")
    variant = nature.children[0] if nature is not None and nature.children else None
    parts = [node.original for node in (family, nature, variant) if node is not None]
    if not parts:
        parts = [part.upper() for part in (fields.family, fields.nature_as_published) if part]
    return "/".join(parts) or None


# --- what is bought ---


def _title(annonce: _Node, objet: _Node | None) -> str | None:
    if objet is not None:
        title = _text_of(objet, "titremarche", "objetcomplet")
        if title is not None:
            return title
    return annonce.text_at(f"{_INDEXATION}/resumeobjet")


def _description(objet: _Node | None, title: str) -> str | None:
    if objet is None:
        return None
    parts = [
        text
        for path in ("objetcomplet", "caracteristiques/principales", "caracteristiques/quantite")
        if (text := objet.text_at(path)) is not None and text != title
    ]
    return "\n\n".join(dict.fromkeys(parts)) or None


def _cpv_main(node: _Node | None) -> str | None:
    codes = _cpv_codes(node, "cpv/principal")
    return codes[0] if codes else None


def _cpv_additional(node: _Node | None) -> list[str]:
    main = _cpv_main(node)
    return [code for code in dict.fromkeys(_cpv_codes(node, "cpv/secondaire")) if code != main]


def _cpv_codes(node: _Node | None, path: str) -> list[str]:
    if node is None:
        return []
    codes = []
    for raw in node.texts(path):
        match = _CPV.match(raw)
        if match is None:
            raise DocumentError("invalid-value", f"CPV code {raw!r} at OBJET/{path.upper()} is not 8 digits")
        codes.append(match["code"])
    return codes


def _places(objet: _Node | None) -> list[Place]:
    if objet is None:
        return []
    places = []
    for location in objet.all("lieuexeclivr"):
        place = Place(
            nuts=location.text_at("codenuts"),
            postal_code=location.text_at("cp"),
            city=location.text_at("ville"),
            description=location.text_at("adresse"),
        )
        if place.model_dump(exclude_none=True):
            places.append(place)
    return places


def _department_places(annonce: _Node, fields: _RecordFields) -> list[Place]:
    """The departments of performance, else the departments BOAMP files the notice under (its publication
    departments, usually the buyer's), as places a classifier can locate."""
    performance = list(fields.performance_departments) or annonce.texts(f"{_INDEXATION}/depprestation")
    publication = list(fields.publication_departments) or annonce.texts(f"{_INDEXATION}/deppublication")
    departments = [normalise_department(raw) for raw in performance or publication]
    return [Place(department=code, country="FR") for code in dict.fromkeys(departments) if code is not None]


def _descriptors(annonce: _Node) -> list[str]:
    """BOAMP's own subject descriptors as "code:label", e.g. "274:Prestations de services"."""
    return [
        f"{code}:{descriptor.text_at('libelle') or ''}".rstrip(":")
        for descriptor in annonce.all(f"{_INDEXATION}/descripteurs/descripteur")
        if (code := descriptor.text_at("code")) is not None
    ]


def _lots(objet: _Node | None) -> list[Lot]:
    if objet is None:
        return []
    lots = []
    for position, lot in enumerate(objet.all("lots/lot"), start=1):
        place = Place(nuts=lot.text_at("codenuts"), description=lot.text_at("lieuprincipal"))
        lots.append(
            Lot(
                lot_id=lot.text_at("num") or str(position),
                title=lot.text_at("intitule"),
                description=lot.text_at("description"),
                cpv_main=_cpv_main(lot),
                cpv_additional=_cpv_additional(lot),
                places=[place] if place.model_dump(exclude_none=True) else [],
                estimated_value=_money(lot, "valeur"),
            )
        )
    return lots


def _estimated_value(annonce: _Node, objet: _Node | None) -> Money | None:
    # A call states the value of the whole contract; an award states the total awarded, the best value known.
    if objet is not None:
        for path in ("caracteristiques/valeurtotale", "caracteristiques/valeur", "caracteristiques/valeurmax"):
            value = _money(objet, path)
            if value is not None:
                return value
    return _money(annonce, "donnees/attribution/valeurtotale")


def _money(node: _Node, path: str) -> Money | None:
    amount = node.first(path)
    if amount is None or amount.text is None:
        return None
    currency = amount.attributes.get("devise", "EUR")
    try:
        value = Decimal(amount.text.replace(" ", "").replace(",", "."))
    except InvalidOperation:
        value = Decimal(-1)
    if len(currency) != 3 or not value.is_finite() or value < 0:
        raise DocumentError(
            "invalid-value",
            f"amount {amount.text!r} (DEVISE={currency!r}) at {path.upper()} is not a non-negative number "
            "with a 3-letter currency",
        )
    return Money(amount=value, currency=currency)


# --- buyer ---


def _buyer(annonce: _Node, fields: _RecordFields) -> Buyer:
    identity = annonce.first(_BUYER)
    name = (identity.text_at("denomination") if identity is not None else None) or fields.buyer_name
    if name is None:
        raise _missing("buyer name", "/ANNONCE/DONNEES/IDENTITE/DENOMINATION (or the record's `nomacheteur`)")
    if identity is None:
        return Buyer(name=name)
    address = Address(
        street=identity.text_at("adresse"),
        city=identity.text_at("ville"),
        postal_code=identity.text_at("cp"),
        nuts=identity.text_at("adjudicateurnuts"),
        country=identity.text_at("pays") or "FR",  # BOAMP only publishes for French buyers unless PAYS says otherwise
    )
    buyer_type = _choice(annonce, "donnees/typepouvoiradjudicateur") or _choice(annonce, "donnees/typeorganisme")
    # ACTIVITE_PRINCIPALE holds POUVOIR_ADJUDICATEUR or ENTITE_ADJUDICATRICE, which holds the activity.
    main_activity = _choice(_chosen(annonce, "donnees/activiteprincipale"), ".")
    return Buyer(
        name=name,
        national_id=identity.text_at("codeidentnational"),
        buyer_type=_BUYER_TYPES.get(buyer_type or ""),
        main_activity=_MAIN_ACTIVITIES.get(main_activity or ""),
        address=address,
        email=identity.text_at("mel"),
        url=identity.text_at("url"),
    )


# --- dates ---


def _deadline(annonce: _Node, fields: _RecordFields) -> datetime | None:
    for raw in (
        fields.deadline,
        annonce.text_at("donnees/conditiondelai/receptoffres"),
        annonce.text_at(f"{_INDEXATION}/datelimitereponse"),
        annonce.text_at("donnees/conditiondelai/receptcandidat"),  # restricted procedures: requests to participate
    ):
        deadline = _datetime(raw, "deadline", end_of_day=True)
        if deadline is not None:
            return deadline
    return None


def _datetime(raw: str | None, what: str, *, end_of_day: bool = False) -> datetime | None:
    """An ISO date or date-time, zoned or Paris-local, or epoch milliseconds (DILA JSON API)."""
    if raw is None:
        return None
    if _EPOCH_MILLISECONDS.match(raw):
        return datetime.fromtimestamp(int(raw) / 1000, tz=UTC).astimezone(_PARIS)
    try:
        day = _DATE.match(raw)
        if day is not None:
            clock = time(23, 59, 59) if end_of_day else time(0, 0)
            value = datetime.combine(date.fromisoformat(day["date"]), clock)
            zone = day["zone"]
            return (
                value.replace(tzinfo=_PARIS) if zone is None else datetime.fromisoformat(f"{value.isoformat()}{zone}")
            )
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise DocumentError(
            "invalid-value",
            f"the {what} date {raw!r} is neither an ISO 8601 date or date-time (2017-02-07, "
            "2017-02-07T12:00:00+01:00) nor epoch milliseconds",
        ) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=_PARIS)


# --- flags and links ---


def _flags(annonce: _Node) -> NoticeFlags:
    donnees = annonce.first("donnees")
    criteria = annonce.first(f"{_INDEXATION}/criteressociauxenv")
    participation = donnees.first("conditionparticipation") if donnees is not None else None
    reserved = participation is not None and any(
        participation.first(name) is not None for name in ("marchereserveoui", "prestationreserveeoui")
    )
    return NoticeFlags(
        reserved=reserved,
        social_criteria=criteria is not None and criteria.first("sociaux") is not None,
        environmental_criteria=criteria is not None and criteria.first("environnementaux") is not None,
    )


def _links(annonce: _Node, idweb: str) -> list[str]:
    identity = annonce.first(_BUYER)
    documents = [identity.text_at("urldocument"), identity.text_at("urlprofilacheteur")] if identity is not None else []
    consultation = annonce.text_at("gestion/marche/urlconsultation")
    return list(dict.fromkeys(link for link in [_NOTICE_URL.format(idweb), consultation, *documents] if link))


# --- eForms written as JSON ---

_EFORMS_NAMESPACES = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
    "ext": "urn:oasis:names:specification:ubl:schema:xsd:CommonExtensionComponents-2",
    "efext": "http://data.europa.eu/p27/eforms-ubl-extensions/1",
    "efac": "http://data.europa.eu/p27/eforms-ubl-extension-aggregate-components/1",
    "efbc": "http://data.europa.eu/p27/eforms-ubl-extension-basic-components/1",
}


def _eforms_xml(content: Any) -> etree._Element:
    """Rebuild the eForms XML tree from its JSON form: one key per element (prefixed names), `@name` for an
    attribute, `#text` for text, a list for a repeated element."""
    if not isinstance(content, dict) or len(content) != 1:
        raise DocumentError(
            "invalid-value", "the EFORMS `donnees` must hold exactly one notice element, e.g. ContractNotice"
        )
    ((root_name, body),) = content.items()
    declared = {
        key.partition(":")[2]: value
        for key, value in (body.items() if isinstance(body, dict) else [])
        if key.startswith("@xmlns:")
    }
    namespaces = {**_EFORMS_NAMESPACES, **declared}
    local = root_name.partition(":")[2] or root_name
    default = body.get("@xmlns") if isinstance(body, dict) else None
    root = etree.Element(
        etree.QName(default or f"urn:oasis:names:specification:ubl:schema:xsd:{local}-2", local), nsmap=namespaces
    )
    _fill_eforms(root, body, namespaces)
    return root


def _fill_eforms(element: etree._Element, value: Any, namespaces: Mapping[str, str]) -> None:
    if not isinstance(value, dict):
        element.text = None if value is None else str(value)
        return
    for key, child in value.items():
        if key == "#text":
            element.text = None if child is None else str(child)
        elif key.startswith("@"):
            if not key.startswith("@xmlns"):
                element.set(key[1:], str(child))
        else:
            prefix, _, local = key.rpartition(":")
            if prefix and prefix not in namespaces:
                raise DocumentError(
                    "invalid-value", f"the EFORMS `donnees` uses the namespace prefix {prefix!r}, which is not declared"
                )
            qname = etree.QName(namespaces[prefix], local) if prefix else etree.QName(local)
            for item in child if isinstance(child, list) else [child]:
                _fill_eforms(etree.SubElement(element, qname), item, namespaces)


# --- the name-normalised tree ---


def _normalised_name(name: str) -> str:
    """TYPE_AVIS, typeAvis and typeavis are one name; so are CMP-2006 and cmp2006."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


@dataclass(frozen=True)
class _Node:
    """An element of a BOAMP tree, read alike from XML and from either JSON form."""

    name: str
    text: str | None
    attributes: Mapping[str, str]
    children: tuple[_Node, ...]
    original: str = field(default="", compare=False)

    @classmethod
    def from_xml(cls, element: etree._Element) -> _Node:
        children = tuple(cls.from_xml(child) for child in element if isinstance(child.tag, str))
        text = (element.text or "").strip() or None if not children else None
        attributes = {_normalised_name(str(key)): str(value) for key, value in element.attrib.items()}
        tag = str(element.tag)
        return cls(_normalised_name(tag), text, attributes, children, tag)

    @classmethod
    def from_json(cls, name: str, value: Any, *, null_is_empty: bool) -> _Node:
        """`null_is_empty`: in Opendatasoft's `donnees` null is an empty element (<PROCEDURE_ADAPTE/>); in the DILA
        JSON API it is an alternative not taken, and an empty element is an XML string."""
        if isinstance(value, dict):
            children: list[_Node] = []
            attributes: dict[str, str] = {}
            text = None
            for key, child in value.items():
                if key == "#text":
                    text = _scalar_text(child)
                elif key.startswith("@"):
                    attributes[_normalised_name(key[1:])] = str(child)
                else:
                    children.extend(cls._json_children(key, child, null_is_empty))
            return cls(_normalised_name(name), text, attributes, tuple(children), name.upper())
        return cls(_normalised_name(name), _scalar_text(value), {}, (), name.upper())

    @classmethod
    def _json_children(cls, key: str, value: Any, null_is_empty: bool) -> Iterator[_Node]:
        # A list is a repeated element; a single one comes without a list.
        for item in value if isinstance(value, list) else [value]:
            if item is not None or null_is_empty:
                yield cls.from_json(key, item, null_is_empty=null_is_empty)

    def all(self, path: str) -> list[_Node]:
        nodes = [self]
        for step in path.split("/"):
            if step != ".":
                nodes = [child for node in nodes for child in node.children if child.name == step]
        return nodes

    def first(self, path: str) -> _Node | None:
        found = self.all(path)
        return found[0] if found else None

    def texts(self, path: str) -> list[str]:
        return [node.text for node in self.all(path) if node.text is not None]

    def text_at(self, path: str) -> str | None:
        texts = self.texts(path)
        return texts[0] if texts else None

    def original_name(self, path: str) -> str | None:
        """The name as published of the chosen alternative under `path`, e.g. APPEL_OFFRE."""
        node = self.first(path)
        if node is None or not node.children:
            return None
        return node.children[0].original or node.children[0].name.upper()


def _scalar_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value).strip()
    # The DILA JSON API writes an empty element as an XML document of its own ("<?xml ...?><MAPA/>").
    if not text or text.startswith("<?xml"):
        return None
    return text


def _text_of(node: _Node, *paths: str) -> str | None:
    for path in paths:
        text = node.text_at(path)
        if text is not None:
            return text
    return None


def _missing(what: str, where: str) -> DocumentError:
    return DocumentError(
        "missing-field", f"the {what} is missing: nothing at {where}; the notice must carry it to be published"
    )
