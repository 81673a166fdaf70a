"""The coverage map as JSON: a GeoJSON FeatureCollection (RFC 7946) whose foreign members
carry the totals, the suppression thresholds and the subsidised-camera programmes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from doorwarden.agencies.models import AgencyKind
from doorwarden.legal.disclosure.models import PackageKind
from doorwarden.legal.models import RequestKind
from doorwarden.transparency.coverage import Coverage
from doorwarden.transparency.report_model import (
    COMMUNITY_RULE,
    MIN_HOUSEHOLDS_FOR_RATE,
    MIN_HOUSEHOLDS_SHOWN,
    ProgrammeRow,
    Report,
    RequestCounts,
)


class Polygon(BaseModel):
    type: Literal["Polygon"] = "Polygon"
    coordinates: list[list[tuple[float, float]]] = Field(
        description="One closed ring of [longitude, latitude]: the cell's hexagon."
    )


class CellProperties(BaseModel):
    cell: str = Field(description="The H3 cell index.")
    cameras: int = Field(description="Cameras in service in this cell.")


class CellFeature(BaseModel):
    type: Literal["Feature"] = "Feature"
    id: str
    geometry: Polygon
    properties: CellProperties


class CoverageTotals(BaseModel):
    cameras_counted: int = Field(description="Cameras placed in a cell, shown or not.")
    cameras_shown: int = Field(description="Cameras in the cells on the map.")
    cameras_suppressed: int = Field(description="Cameras in cells too small to show.")
    cameras_unlocated: int = Field(
        description="Cameras whose household gave no location: on no map."
    )
    cells_shown: int
    cells_suppressed: int


class ProgrammeOut(BaseModel):
    """One subsidised-camera programme. Counted per agency and programme, never per place,
    so the cell rule above does not apply to it."""

    agency: str = Field(description="The agency that runs the subsidised-camera programme.")
    cameras: int = Field(description="Cameras in service enrolled through this programme.")
    programme: str = Field(description="The programme's name.")
    kind: str = Field(description="giveaway or discount")
    funding_source: str = Field(description="Who pays for the cameras.")
    approving_body: str = Field(description="The public body whose approval it runs under.")
    approval_reference: str = Field(description="That approval's ordinance or resolution.")
    ended_at: datetime | None = Field(description="When it stopped enrolling, if it has.")


class CoverageOut(BaseModel):
    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[CellFeature]
    resolution: int = Field(description="H3 resolution of the cells.")
    cell_area_km2: float = Field(description="Average area of a cell at this resolution.")
    min_cameras: int = Field(description="k: a cell with fewer cameras is not shown.")
    min_households: int = Field(description="A cell with fewer households is not shown.")
    totals: CoverageTotals
    programmes: list[ProgrammeOut] = Field(
        description="Cameras enrolled through agencies' subsidised programmes, per agency."
    )
    generated_at: datetime = Field(description="When the cameras were counted.")

    @classmethod
    def of(cls, coverage: Coverage, programmes: Sequence[ProgrammeRow] = ()) -> CoverageOut:
        return cls(
            features=[
                CellFeature(
                    id=cell.id,
                    geometry=Polygon(coordinates=[cell.ring]),
                    properties=CellProperties(cell=cell.id, cameras=cell.cameras),
                )
                for cell in coverage.cells
            ],
            resolution=coverage.resolution,
            cell_area_km2=round(coverage.cell_area_km2, 4),
            min_cameras=coverage.min_cameras,
            min_households=coverage.min_households,
            totals=CoverageTotals(
                cameras_counted=coverage.cameras_counted,
                cameras_shown=coverage.cameras_shown,
                cameras_suppressed=coverage.cameras_suppressed,
                cameras_unlocated=coverage.cameras_unlocated,
                cells_shown=len(coverage.cells),
                cells_suppressed=coverage.cells_suppressed,
            ),
            programmes=[
                ProgrammeOut(
                    agency=p.agency,
                    cameras=p.cameras,
                    programme=p.name,
                    kind=p.kind,
                    funding_source=p.funding_source,
                    approving_body=p.approving_body,
                    approval_reference=p.approval_reference,
                    ended_at=p.ended_at,
                )
                for p in programmes
            ],
            generated_at=coverage.generated_at,
        )


# -- the transparency report (transparency/report.py) ------------------------------------


def _count(description: str) -> Any:
    return Field(ge=0, description=description)


class PeriodOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: date = Field(alias="from", description="The first day counted (UTC).")
    to: date = Field(description="The last day counted (UTC), included.")
    start: datetime = Field(description="Midnight UTC starting the first day.")
    end: datetime = Field(description="Midnight UTC after the last day (excluded).")


class RequestCountsOut(BaseModel):
    """Requests of one kind submitted in the period, by what became of them."""

    kind: RequestKind
    total: int = _count("Requests of this kind submitted in the period.")
    pending: int = _count("Not decided yet (submitted or in review).")
    approved: int = _count("Approved as asked (whatever happened after).")
    narrowed: int = _count("Approved with fewer cameras or a shorter window than asked.")
    rejected: int = _count("Rejected by the legal reviewer.")
    withdrawn: int = _count("Withdrawn by the agency before a decision.")
    awaiting_proof: int = _count("Emergencies granted whose proof is not due yet.")
    ratified: int = _count("Emergencies proven in time (a warrant or the incident report).")
    unratified: int = _count("Emergencies not proven by the deadline; the agency is flagged.")
    open: int = _count("Community requests residents may still answer.")
    closed: int = _count("Community requests closed by the agency or by their deadline.")


class DisclosureCountsOut(BaseModel):
    packages: int = _count("Disclosure packages built in the period.")
    provisional: int = _count("Of those, emergency packages (standing only if proven).")
    clips: int = _count("Clips in those packages (a clip in two packages counts twice).")
    clips_without_content: int = _count(
        "Clips end-to-end encrypted: the package held their ciphertext and metadata only, "
        "the provider having no key."
    )
    devices: int = _count("Distinct cameras with at least one clip disclosed.")
    households: int = _count("Distinct households with at least one clip disclosed.")
    requests_with_e2e_content: int = _count(
        "Requests with at least one end-to-end encrypted clip in a package of the period."
    )
    subscriber_households: int = _count(
        "Distinct households whose subscriber information was disclosed (subpoenas)."
    )


class PackageKindOut(BaseModel):
    kind: PackageKind
    packages: int = _count("Packages of this kind built in the period.")
    provisional: int = _count("Of those, emergency packages.")
    clips: int = _count("Clips in them.")
    clips_without_content: int = _count("Of those, end-to-end encrypted.")


class DisclosuresOut(DisclosureCountsOut):
    by_kind: list[PackageKindOut] = Field(description="The same per package kind.")


class AgencyReportOut(BaseModel):
    name: str
    kind: AgencyKind
    verified: bool = Field(description="An operator checked the agency is what it says.")
    flagged: bool = Field(description="The agency let an emergency request go unratified.")
    flagged_at: datetime | None
    flag_reason: str | None
    requests: list[RequestCountsOut] = Field(description="Its requests of the period, by kind.")
    disclosures: DisclosureCountsOut = Field(description="What was disclosed to it.")


class NoticesOut(BaseModel):
    delivered: int = _count("Notices to households delivered in the period.")
    delayed: int = _count(
        "Notices made in the period but held back by a court's non-disclosure order."
    )
    delayed_pending: int = _count("Of those, not delivered yet (the order still runs).")
    delayed_until: list[DelayedEndOut] = Field(
        default_factory=list,
        description="Every delayed notice of the period, counted by the day its "
        "non-disclosure order ends; never which household.",
    )


class DelayedEndOut(BaseModel):
    ends_on: date = Field(description="The day (UTC) the non-disclosure order ends.")
    notices: int = _count("Notices of the period delayed until that day.")


class HoldsOut(BaseModel):
    preservations_granted: int = _count(
        "Preservation requests of the period approved or narrowed (holds placed)."
    )
    clips_held: int = _count("Clips put on hold by legal process in the period.")
    clips_held_now: int = _count("Of those, still held now.")


class CommunityOut(BaseModel):
    requests: int = _count("Community requests made in the period.")
    households_asked: int | None = Field(
        ge=0,
        description="Households asked by them (one asked by two requests counts twice); "
        "null when fewer than min_households_shown.",
    )
    households_shared: int | None = Field(
        ge=0, description="Households that shared at least one clip; null when too few asked."
    )
    response_rate: float | None = Field(
        ge=0, le=1, description="households_shared / households_asked; null when too few asked."
    )
    clips_shared: int = _count("Clips residents chose to share with them.")
    min_households_for_rate: int = Field(description="Fewest households asked to show a rate.")
    min_households_shown: int = Field(description="Fewest households asked to show the count.")
    rule: str = Field(description="Why a rate is not shown over a handful of homes.")


class ReportPolicyOut(BaseModel):
    community_requests_enabled: bool = Field(description="Agencies may make community requests.")
    require_municipal_approval: bool = Field(
        description="An agency needs a municipal approval on file to make any request."
    )
    warrant_max_devices: int = Field(description="More cameras in a warrant is overbroad.")
    warrant_max_hours: int = Field(description="A longer warrant window is overbroad.")
    emergency_max_devices: int
    emergency_max_hours: int
    emergency_proof_hours: int = Field(description="Hours an agency has to prove an emergency.")
    preservation_days: int = Field(description="How long a preservation holds clips.")
    community_max_square_miles: float
    community_max_hours: int
    community_open_days: int
    package_link_days: int = Field(description="Days an agency may download a package.")


class ApprovalOnFileOut(BaseModel):
    agency: str
    approving_body: str = Field(description="The public body that approved the agency's use.")
    reference: str = Field(description="Its ordinance or resolution.")
    approved_on: date
    expires_on: date | None
    revoked_at: datetime | None
    in_force: bool


class ReportProgrammeOut(BaseModel):
    agency: str
    programme: str
    kind: str = Field(description="giveaway or discount")
    funding_source: str
    approving_body: str
    approval_reference: str
    cameras: int = _count("Cameras in service enrolled in it now.")
    ended_at: datetime | None


class ReportOut(BaseModel):
    """The transparency report for a period: counts only, never a household or a person."""

    period: PeriodOut
    generated_at: datetime = Field(description="When it was counted.")
    requests_total: int = _count("Requests of every kind submitted in the period.")
    unratified_emergencies: int = _count(
        "Emergency requests of the period the agency never proved: disclosures that stood "
        "on the agency's word alone."
    )
    requests: list[RequestCountsOut] = Field(description="Per request kind.")
    agencies: list[AgencyReportOut] = Field(
        description="Agencies with a request or a package in the period, and flagged ones."
    )
    disclosures: DisclosuresOut
    notices: NoticesOut
    holds: HoldsOut
    community: CommunityOut
    policy: ReportPolicyOut = Field(description="The instance policy in force now.")
    approvals: list[ApprovalOnFileOut] = Field(description="Municipal approvals on file.")
    programmes: list[ReportProgrammeOut] = Field(
        description="Subsidised-camera programmes, with their cameras enrolled."
    )
    log_checkpoint_url: str = Field(description="The audit log's signed checkpoint.")

    @classmethod
    def of(cls, r: Report, *, log_checkpoint_url: str) -> ReportOut:
        def kinds(counts: dict[RequestKind, RequestCounts]) -> list[RequestCountsOut]:
            return [RequestCountsOut(kind=k, **asdict(c)) for k, c in counts.items()]

        c = r.community
        return cls(
            period=PeriodOut(
                from_=r.period.first, to=r.period.last, start=r.period.start, end=r.period.end
            ),
            generated_at=r.generated_at,
            requests_total=r.requests_total,
            unratified_emergencies=r.unratified_emergencies,
            requests=kinds(r.requests),
            agencies=[
                AgencyReportOut(
                    name=a.name,
                    kind=a.kind,
                    verified=a.verified,
                    flagged=a.flagged_at is not None,
                    flagged_at=a.flagged_at,
                    flag_reason=a.flag_reason,
                    requests=kinds(a.requests),
                    disclosures=DisclosureCountsOut(**asdict(a.disclosures)),
                )
                for a in r.agencies
            ],
            disclosures=DisclosuresOut(
                **asdict(r.disclosures),
                by_kind=[PackageKindOut(**asdict(k)) for k in r.packages],
            ),
            notices=NoticesOut(
                **asdict(r.notices),
                delayed_until=[DelayedEndOut(**asdict(d)) for d in r.delayed_until],
            ),
            holds=HoldsOut(**asdict(r.holds)),
            community=CommunityOut(
                requests=c.requests,
                households_asked=c.households_asked_shown,
                households_shared=c.households_shared,
                response_rate=c.response_rate,
                clips_shared=c.clips_shared,
                min_households_for_rate=MIN_HOUSEHOLDS_FOR_RATE,
                min_households_shown=MIN_HOUSEHOLDS_SHOWN,
                rule=COMMUNITY_RULE,
            ),
            policy=ReportPolicyOut(**asdict(r.policy)),
            approvals=[ApprovalOnFileOut(**asdict(a)) for a in r.approvals],
            programmes=[
                ReportProgrammeOut(
                    agency=p.agency,
                    programme=p.name,
                    kind=p.kind,
                    funding_source=p.funding_source,
                    approving_body=p.approving_body,
                    approval_reference=p.approval_reference,
                    cameras=p.cameras,
                    ended_at=p.ended_at,
                )
                for p in r.programmes
            ],
            log_checkpoint_url=log_checkpoint_url,
        )
