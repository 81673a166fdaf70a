"""The officer's request forms: the fields every kind's form may have, and how the typed
fields become the API's own schemas (schemas.py), so a page and a script are checked
alike (which kind has which form and service: kinds.py)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from doorwarden.legal.requests.schemas import (
    MAX_SCOPE_ITEMS,
    CommunityIn,
    EmergencyIn,
    PreservationIn,
    SubpoenaIn,
    WarrantIn,
)
from doorwarden.legal.requests.service import AttestationRequired
from doorwarden.web.forms import blank_none, geojson, ids, lines, utc

LONG = 20_000  # a textarea: longer than any valid value, so the schema says what is wrong


class RequestFields(BaseModel):
    """Every field of every kind's form, as typed (strings; empty when not on the form)."""

    model_config = ConfigDict(extra="ignore")  # the CSRF field, the submit button

    case_number: str = Field("", max_length=500)
    issuing_court: str = Field("", max_length=500)
    judge: str = Field("", max_length=500)
    signed_on: str = Field("", max_length=40)
    expires_at: str = Field("", max_length=40)
    window_start: str = Field("", max_length=40)
    window_end: str = Field("", max_length=40)
    addresses: str = Field("", max_length=LONG)
    household_ids: str = Field("", max_length=LONG)
    camera_ids: str = Field("", max_length=LONG)
    justification: str = Field("", max_length=LONG)
    nondisclosure_until: str = Field("", max_length=40)
    description: str = Field("", max_length=LONG)
    attest_imminent_danger: str = Field("", max_length=8)
    public_text: str = Field("", max_length=LONG)
    area: str = Field("", max_length=200_000)


def scope_of(fields: RequestFields) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = [
        {"kind": "address", "address": a} for a in lines(fields.addresses)
    ]
    items += [
        {"kind": "household", "id": str(i)} for i in ids(fields.household_ids, "Household ids")
    ]
    items += [{"kind": "device", "id": str(i)} for i in ids(fields.camera_ids, "Camera ids")]
    return items[: MAX_SCOPE_ITEMS + 1]  # one more than allowed: the schema says so


def _window(fields: RequestFields) -> dict[str, Any]:
    return {
        "case_number": fields.case_number,
        "window_start": utc(fields.window_start),
        "window_end": utc(fields.window_end),
    }


def warrant(fields: RequestFields) -> WarrantIn:
    return WarrantIn.model_validate(
        {
            **_window(fields),
            "issuing_court": fields.issuing_court,
            "judge": fields.judge,
            "signed_on": blank_none(fields.signed_on),
            "expires_at": utc(fields.expires_at),
            "scope": scope_of(fields),
            "justification": fields.justification,
            "nondisclosure_until": utc(fields.nondisclosure_until),
        }
    )


def subpoena(fields: RequestFields) -> SubpoenaIn:
    return SubpoenaIn.model_validate(
        {
            **_window(fields),
            "issuing_court": fields.issuing_court,
            "signed_on": blank_none(fields.signed_on),
            "expires_at": utc(fields.expires_at),
            "scope": scope_of(fields),
            "justification": fields.justification,
            "nondisclosure_until": utc(fields.nondisclosure_until),
        }
    )


def preservation(fields: RequestFields) -> PreservationIn:
    return PreservationIn.model_validate(
        {
            **_window(fields),
            "scope": scope_of(fields),
            "justification": fields.justification,
            "nondisclosure_until": utc(fields.nondisclosure_until),
        }
    )


def emergency(fields: RequestFields) -> EmergencyIn:
    if fields.attest_imminent_danger != "yes":  # the API's wording names the JSON field
        raise AttestationRequired(
            "Attestation: tick the box to attest an imminent danger of death or serious "
            "physical injury; without it there is no emergency request."
        )
    return EmergencyIn.model_validate(
        {
            **_window(fields),
            "description": fields.description,
            "attest_imminent_danger": fields.attest_imminent_danger == "yes",
            "scope": scope_of(fields),
        }
    )


def community(fields: RequestFields) -> CommunityIn:
    return CommunityIn.model_validate(
        {
            **_window(fields),
            "public_text": fields.public_text,
            "area": geojson(fields.area, "Area"),
        }
    )
