"""Whether a change of privacy zones uncovers anything (docs/camera-settings.md).

A privacy zone is a safeguard for someone else (a neighbour's window, a path): a change
that stops blacking out any part of the image that was blacked out before is reduced,
and the whole household is told. So "reduced" is geometric, not a count: every earlier
zone must lie inside the union of the new ones (zones may be redrawn, merged or split
freely). A tolerance of TOLERANCE (normalised image units, far below a pixel) absorbs
rounding.
"""

from __future__ import annotations

from collections.abc import Sequence

from shapely.geometry import Polygon
from shapely.ops import unary_union

TOLERANCE = 1e-6
Zones = Sequence[Sequence[Sequence[float]]]


def _polygon(points: Sequence[Sequence[float]]) -> Polygon:
    # buffer(0) mends a self-intersecting ring (a bow tie) into the area it encloses.
    return Polygon([(float(x), float(y)) for x, y in points]).buffer(0)


def reduced(before: Zones, after: Zones) -> bool:
    """Some part of `before`'s zones is not covered by `after`'s."""
    old = [p for p in (_polygon(z) for z in before) if not p.is_empty]
    if not old:
        return False
    covered = unary_union([_polygon(z) for z in after]).buffer(TOLERANCE)
    return any(not covered.contains(p) for p in old)
