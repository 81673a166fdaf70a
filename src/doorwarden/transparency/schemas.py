"""The coverage map as JSON: a GeoJSON FeatureCollection (RFC 7946) whose foreign members
carry the totals, the suppression thresholds and the subsidised-camera programmes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from doorwarden.transparency.coverage import Coverage


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
    agency: str = Field(description="The agency that runs the subsidised-camera programme.")
    cameras: int = Field(description="Cameras enrolled through its programmes.")


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
    def of(cls, coverage: Coverage) -> CoverageOut:
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
            # No camera programme is on record anywhere yet: agency programmes and their
            # municipal approvals belong to the governance domain (src/doorwarden/governance/,
            # not built yet). Until it exists this list is empty, and the page says so.
            programmes=[],
            generated_at=coverage.generated_at,
        )
