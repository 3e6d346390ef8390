"""The canonical notice, independent of the source format it was published in."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

NOTICE_SCHEMA_VERSION: Final = 1


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class NoticeKind(StrEnum):
    """Where a notice stands in the procurement cycle."""

    PLANNING = "planning"  # programmation, prior information notice, purchase plan
    COMPETITION = "competition"  # call for tender
    RESULT = "result"  # award, modification, direct award


class ContractNature(StrEnum):
    WORKS = "works"
    SUPPLIES = "supplies"
    SERVICES = "services"


class Money(_Model):
    amount: Decimal = Field(ge=0)
    currency: str = Field(min_length=3, max_length=3, description="ISO 4217 code")


class Address(_Model):
    street: str | None = None
    city: str | None = None
    postal_code: str | None = None
    nuts: str | None = Field(default=None, description="NUTS code as published (any level)")
    department: str | None = Field(default=None, description="French department code as published, e.g. '5', '2A'")
    country: str | None = Field(default=None, description="country code as published (alpha-2 or alpha-3)")


class Buyer(_Model):
    name: str
    national_id: str | None = Field(default=None, description="SIRET or other national registration number")
    buyer_type: str | None = Field(default=None, description="eForms buyer-legal-type code, e.g. 'la', 'body-pl'")
    main_activity: str | None = None
    address: Address | None = None
    email: str | None = None
    url: str | None = None


class Place(_Model):
    """A place of performance."""

    nuts: str | None = None
    department: str | None = Field(default=None, description="French department code as published, e.g. '5', '2A'")
    postal_code: str | None = None
    city: str | None = None
    country: str | None = None
    description: str | None = None


class NoticeText(_Model):
    """A notice's title and description in one language."""

    title: str
    description: str | None = None


class Lot(_Model):
    lot_id: str
    title: str | None = None
    description: str | None = None
    cpv_main: str | None = None
    cpv_additional: list[str] = Field(default_factory=list)
    places: list[Place] = Field(default_factory=list)
    estimated_value: Money | None = None


class NoticeFlags(_Model):
    sme_suitable: bool | None = None
    reserved: bool = False
    social_criteria: bool = False
    environmental_criteria: bool = False


class Notice(_Model):
    """A procurement notice in canonical form (DESIGN.md §2)."""

    schema_version: Literal[1] = NOTICE_SCHEMA_VERSION
    notice_id: str = Field(description="'{source}:{source_id}', stable across re-publication")
    version: str = Field(description="source revision, or a content hash")
    source: str = Field(description="source format, e.g. 'eforms'")
    source_id: str
    source_url: str | None = None
    procedure_id: str | None = Field(default=None, description="identifier shared by a procedure's notices")
    kind: NoticeKind
    notice_type: str | None = Field(default=None, description="the source's own notice type, e.g. 'cn-standard'")
    is_change: bool = Field(default=False, description="corrects or updates an earlier notice")
    cancelled: bool = False
    change_of: str | None = Field(default=None, description="source identifier of the notice this one changes")
    change_description: str | None = None
    title: str
    description: str | None = None
    language: str = Field(description="ISO 639-1 code of the text chosen for title and description")
    translations: dict[str, NoticeText] = Field(
        default_factory=dict, description="title and description in the notice's other languages, by ISO 639-1 code"
    )
    buyer: Buyer
    contract_nature: ContractNature | None = None
    procedure: str | None = Field(default=None, description="procedure type code, e.g. 'open'")
    cpv_main: str | None = Field(default=None, description="8-digit CPV code")
    cpv_additional: list[str] = Field(default_factory=list)
    places: list[Place] = Field(default_factory=list)
    estimated_value: Money | None = None
    published_at: datetime | None = None
    deadline: datetime | None = None
    planned_date: date | None = Field(default=None, description="when a planned purchase should be launched")
    lots: list[Lot] = Field(default_factory=list)
    flags: NoticeFlags = Field(default_factory=NoticeFlags)
    links: list[str] = Field(default_factory=list)
    descriptors: list[str] = Field(
        default_factory=list, description="the source's own subject codes, e.g. BOAMP '274:Prestations de services'"
    )

    def all_cpv(self) -> list[str]:
        """Every CPV code of the notice and its lots, main code first, without repeats."""
        codes = [self.cpv_main, *self.cpv_additional]
        for lot in self.lots:
            codes += [lot.cpv_main, *lot.cpv_additional]
        return list(dict.fromkeys(c for c in codes if c))

    def all_places(self) -> list[Place]:
        return [*self.places, *(p for lot in self.lots for p in lot.places)]


class CpvProvenance(StrEnum):
    GIVEN = "given"
    INFERRED = "inferred"
    NONE = "none"


class CpvCandidate(_Model):
    """A CPV code inferred from a notice's text, with how sure the classifier is."""

    code: str = Field(description="8-digit CPV code")
    confidence: float = Field(ge=0, le=1)


class BuyerCategory(StrEnum):
    STATE = "state"  # State services and their agencies
    REGION = "region"
    DEPARTMENT = "department"  # conseil départemental
    MUNICIPALITY = "municipality"  # commune, intercommunalité, métropole
    HOSPITAL = "hospital"
    UTILITY = "utility"  # network utilities: water, energy, transport, post
    OTHER_PUBLIC = "other-public"


class GeographySource(StrEnum):
    PLACES = "places"  # the places of performance
    BUYER = "buyer"  # only the buyer's address was known
    NONE = "none"


class SearchTokens(_Model):
    """The notice's title and description as the keyword normaliser makes them (`schemas.filtering.text`), made once
    by the classifier so that the matcher and the api do not tokenise the text again."""

    normaliser: str = Field(description="the normaliser that made them; readers with another one tokenise again")
    title: list[str] = Field(default_factory=list)
    description: list[str] = Field(default_factory=list)


class ClassifiedNotice(Notice):
    """A notice with what the classifier derived from it (DESIGN.md §4)."""

    sectors: list[str] = Field(default_factory=list, description="sector ids from the sector taxonomy")
    cpv_provenance: CpvProvenance = CpvProvenance.NONE
    cpv_confidence: float = Field(default=0.0, ge=0, le=1)
    cpv_inferred: list[CpvCandidate] = Field(
        default_factory=list, description="top CPV codes inferred from the text when the notice gives none, best first"
    )
    departments: list[str] = Field(default_factory=list, description="INSEE department codes, e.g. '31', '2A'")
    regions: list[str] = Field(default_factory=list, description="INSEE region codes, e.g. '76'")
    countries: list[str] = Field(default_factory=list, description="ISO 3166-1 alpha-2 codes")
    geography_source: GeographySource = GeographySource.NONE
    buyer_category: BuyerCategory | None = None
    value_eur: Decimal | None = Field(
        default=None, description="the estimated value (or the sum of the lots') in euros, static conversion table"
    )
    value_band: str | None = None
    duplicate_group: str | None = Field(
        default=None, description="shared by the notices that publish the same procedure (across sources)"
    )
    warnings: list[str] = Field(default_factory=list, description="what the classifier could not use, and why")
    search_tokens: SearchTokens | None = Field(
        default=None, description="the title and description tokenised for keyword matching; absent: tokenise them"
    )
    classified_at: datetime
