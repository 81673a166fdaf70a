"""When a change of privacy zones counts as reduced (devices/settings/zones.py)."""

from __future__ import annotations

import pytest

from doorwarden.devices.settings.service import InvalidSettings, validate
from doorwarden.devices.settings.zones import reduced

A = [[0.1, 0.1], [0.4, 0.1], [0.4, 0.4], [0.1, 0.4]]
LEFT = [[0.1, 0.1], [0.25, 0.1], [0.25, 0.4], [0.1, 0.4]]
RIGHT = [[0.25, 0.1], [0.4, 0.1], [0.4, 0.4], [0.25, 0.4]]
BIG = [[0.0, 0.0], [0.5, 0.0], [0.5, 0.5], [0.0, 0.5]]
ELSEWHERE = [[0.6, 0.6], [0.9, 0.6], [0.9, 0.9], [0.6, 0.9]]


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        ([], [A], False),  # added
        ([A], [A], False),
        ([A], [BIG], False),  # grown
        ([A], [LEFT, RIGHT], False),  # split in two that cover it together
        ([LEFT, RIGHT], [A], False),  # merged
        ([A], [list(reversed(A))], False),  # the same area, drawn the other way round
        ([A], [[[x + 1e-7, y] for x, y in A]], False),  # rounding: within the tolerance
        ([A], [LEFT], True),  # shrunk
        ([A], [], True),  # removed
        ([A], [ELSEWHERE], True),  # moved off what it covered
        ([A, ELSEWHERE], [BIG], True),  # one of two dropped
        ([A], [[[x + 0.01, y] for x, y in A]], True),  # shifted by 1 % of the image
    ],
)
def test_reduced_means_something_covered_before_is_not_now(
    before: list[list[list[float]]], after: list[list[list[float]]], expected: bool
) -> None:
    assert reduced(before, after) is expected


def test_a_self_intersecting_zone_counts_for_the_area_it_encloses() -> None:
    bow_tie = [[0.1, 0.1], [0.4, 0.4], [0.4, 0.1], [0.1, 0.4]]
    assert not reduced([bow_tie], [A])
    assert reduced([A], [bow_tie])
    flat = [[0.1, 0.1], [0.2, 0.2], [0.3, 0.3]]  # no area: hid nothing
    assert not reduced([flat], [])


def test_validation_names_the_field_and_rounds_coordinates() -> None:
    with pytest.raises(InvalidSettings) as caught:
        validate({"privacy_zones": [[[0.1, 0.1], [0.2, -0.1], [0.3, 0.1]]]})
    assert caught.value.details == {"field": "privacy_zones.0.1.1"}
    with pytest.raises(InvalidSettings) as caught:
        validate(["not", "an", "object"])
    assert caught.value.details == {"field": ""}
    stored = validate({"motion.zones": [[[0.1234567891, 0.1], [0.2, 0.2], [0.3, 0.1]]]})
    assert stored == {"motion.zones": [[[0.123457, 0.1], [0.2, 0.2], [0.3, 0.1]]]}
