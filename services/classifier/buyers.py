"""Buyer category (state, region, department, municipality, hospital, utility, other public body) of a buyer.

Evidence, strongest first:

1. The buyer's name, when it names the kind of institution itself: "Commune de", "Ville de", "Communauté de
   communes", "Métropole" (municipality); "Conseil départemental", "Département de" (department); "Région",
   "Conseil régional" (region); "CHU", "Centre hospitalier", "Hôpital", "EHPAD" (hospital); "Ministère",
   "Préfecture" (State); "SNCF", "EDF", "Régie des eaux" (utility); "Université" (other public body). It wins over
   the declared legal type, which is coarse: the BOAMP feed files departments and communal social-action centres
   (CCAS) as regional authorities and intercommunalities as public bodies, and one real notice files a university
   as the State. Patterns are mostly French, with the few foreign words our real notices use (Município, Stadt,
   Ministry, Ospedale ...).
2. The eForms buyer-legal-type code (BT-11; `Buyer.buyer_type`, which the BOAMP parser also fills) when it names a
   level of government: `cga` -> State, `ra` -> region, `la` -> municipality.
3. The eForms main activity (BT-10/BT-610) of a network utility: water, energy, transport, ports, airports, post.
4. The main activity `health` with a weaker hospital word (clinique, policlinico, IRCCS): hospital. `health` alone
   is not enough: ministries and agencies declare it too.
5. Any other public-body code (`body-pl*`, `pub-undert*`, `grp-p-aut`, `eu-ins-bod-ag`, `eu-int-org`, `int-org`):
   other public body. Subsidised organisations (`org-sub*`), defence contractors (`def-cont`), entities with
   special rights (`spec-rights-entity`, outside a utility activity) and unknown codes give no category.

Decisions: a CCAS or CIAS counts as municipal (the mayor or the intercommunality's president chairs it by law);
an EHPAD counts as a hospital (public ones are health or medico-social establishments, often run by a hospital,
buying the same supplies); universities and EU institutions are other public bodies, not the State (they are
autonomous public bodies); an intercommunal syndicate counts as municipal even when it runs water or waste.
"""

from __future__ import annotations

import re
import unicodedata

from schemas.notice import Buyer, BuyerCategory

# Checked in this order; the first category with a matching pattern wins (a CHU before a university, a "régie des
# eaux de la ville" as a utility before a municipality). Patterns apply to `_normalised` names.
_NAME_PATTERNS: tuple[tuple[BuyerCategory, re.Pattern[str]], ...] = tuple(
    (category, re.compile("|".join(patterns)))
    for category, patterns in (
        (
            BuyerCategory.HOSPITAL,
            (
                r"\bch[ru]u?\b",  # CHU, CHR, CHRU
                r"\bcentre hospitalier",
                r"\bgroupe(ment)? hospitalier",
                r"\bhopita(l|ux)\b",
                r"\bhospices? civils\b",
                r"\bassistance publique hopitaux\b",
                r"\bap hp\b",
                r"\bap hm\b",
                r"\bght\b",  # groupement hospitalier de territoire
                r"\betablissement public de sante\b",
                r"\behpad\b",
                r"\bhospital\b",
                r"\bospedale\b",
                r"\bkrankenhaus\b",
                r"\bklinikum\b",
                r"\bziekenhuis\b",
            ),
        ),
        (
            BuyerCategory.UTILITY,
            (
                r"\bsncf\b",
                r"\bratp\b",
                r"\bedf\b",
                r"\benedis\b",
                r"\bgrdf\b",
                r"\bgrtgaz\b",
                r"^la poste\b",
                r"\bregie\b.*\b(eaux?|assainissement|electricite|gaz|chaleur|transports?)\b",
                r"\bgrand port maritime\b",
                r"\bport autonome\b",
                r"\baeroports?\b",
            ),
        ),
        (
            BuyerCategory.DEPARTMENT,
            (
                r"^conseil departemental\b",
                r"^conseil general\b",  # the name of departmental councils until 2015
                r"^departement (de|du|des|d)\b",
                r"\bcollectivite europeenne d alsace\b",
            ),
        ),
        (
            BuyerCategory.REGION,
            (
                r"^region\b",
                r"^conseil regional\b",
                r"^collectivite (territoriale )?de (corse|martinique|guyane)\b",
            ),
        ),
        (
            BuyerCategory.MUNICIPALITY,
            (
                r"\bmairie\b",
                r"^commune (de|du|des|d)\b",
                r"^ville (de|du|des|d)\b",
                r"\bcommunaute (de communes|urbaine)\b",
                r"\bcommunaute d agglo",  # also the abbreviated "Communauté d'agglomérat."
                r"\bcte de cnes\b",  # "Cté de Cnes"
                r"\bmetropole\b",
                r"\bsivom\b",
                r"\bsivu\b",
                r"\bsyndicat intercommunal\b",
                r"\b(ccas|cias)\b",
                r"\bcentre (communal|intercommunal) d action sociale\b",
                r"^municipio\b",  # Spanish, Portuguese (Município)
                r"\bmunicipality of\b",
                r"^comune di\b",
                r"^(stadt|gemeinde|gemeente)\b",
                r"\bborough\b",
            ),
        ),
        (
            BuyerCategory.STATE,
            (
                r"^ministere\b",
                r"\bministere (de|des|du|d)\b",
                r"^prefecture\b",
                r"\bprefecture (de|du|des|d)\b",
                r"\b(direccte|dreets|dreal|ddtm?|ddfip|drfip|dgfip|sgami|sgar)\b",
                r"^rectorat\b",
                r"^armee\b",
                r"\barmees?\b.*\b(terre|air|espace)\b",
                r"^marine\b",  # the Navy's services sign "Marine/..."
                r"\bgendarmerie nationale\b",
                r"\bpolice nationale\b",
                r"^etat\b",
                r"\bministry\b",
                r"^(ministerio|ministero|ministerie|ministerstwo|bundesministerium)\b",
            ),
        ),
        (BuyerCategory.OTHER_PUBLIC, (r"\buniversit(e|y|a|at|ad|eit)\b",)),
    )
)

# The dots of initials ("C.H.U.") go, so that the acronym reads as one word.
_DOTTED_INITIALS = re.compile(r"(?<=\b[a-z])\.(?=[a-z]\b)")
# With the main activity `health` only: words too loose to name a hospital on their own.
_HEALTH_HOSPITAL = re.compile(r"\b(clinique|clinic|policlinico|poliklinik|klinik|irccs)\b")

_GOVERNMENT_LEVELS = {"cga": BuyerCategory.STATE, "ra": BuyerCategory.REGION, "la": BuyerCategory.MUNICIPALITY}
_UTILITY_ACTIVITIES = frozenset(
    {"water", "electricity", "gas-heat", "gas-oil", "solid-fuel", "rail", "urttb", "port", "airport", "post"}
)
_PUBLIC_BODIES = frozenset(
    {
        "body-pl",
        "body-pl-cga",
        "body-pl-la",
        "body-pl-ra",
        "pub-undert",
        "pub-undert-cga",
        "pub-undert-la",
        "pub-undert-ra",
        "grp-p-aut",
        "eu-ins-bod-ag",
        "eu-int-org",
        "int-org",
    }
)


def buyer_category(buyer: Buyer) -> BuyerCategory | None:
    """The category of a buyer from its name, eForms legal type and main activity (module docstring); None when
    nothing says it is a public buyer of a known kind."""
    name = _normalised(buyer.name)
    for category, pattern in _NAME_PATTERNS:
        if pattern.search(name):
            return category
    legal_type = (buyer.buyer_type or "").strip().lower()
    activity = (buyer.main_activity or "").strip().lower()
    if legal_type in _GOVERNMENT_LEVELS:
        return _GOVERNMENT_LEVELS[legal_type]
    if activity in _UTILITY_ACTIVITIES:
        return BuyerCategory.UTILITY
    if activity == "health" and _HEALTH_HOSPITAL.search(name):
        return BuyerCategory.HOSPITAL
    if legal_type in _PUBLIC_BODIES:
        return BuyerCategory.OTHER_PUBLIC
    return None


def _normalised(name: str) -> str:
    """Lower case, no accents, dotted initials joined, every run of punctuation or spaces one space:
    "Cté de Cnes" -> 'cte de cnes', "C.C.A.S. de Toulon" -> 'ccas de toulon'."""
    decomposed = unicodedata.normalize("NFKD", name)
    bare = "".join(char for char in decomposed if not unicodedata.combining(char)).casefold()
    return re.sub(r"[^a-z0-9]+", " ", _DOTTED_INITIALS.sub("", bare)).strip()
