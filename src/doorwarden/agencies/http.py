"""The HTTP side of agencies' documents, for the API and the pages of agencies and legal
process alike: an uploaded file read within its size bound, the JSON `details` part
that goes with it in a multipart submission, and a stored PDF sent back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TypeVar

from fastapi import UploadFile
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ValidationError

from doorwarden.agencies.documents import DocumentTooLarge, Upload
from doorwarden.agencies.models import LegalDocument
from doorwarden.crypto import strict_json
from doorwarden.crypto.errors import MalformedError
from doorwarden.errors import DomainError, InvalidInput
from doorwarden.storage.base import ClipStore

Model = TypeVar("Model", bound=BaseModel)
# What a JSON body may be (the default max_body_bytes); Starlette caps a form part at it too.
DETAILS_MAX_BYTES = 1024 * 1024


class DetailsInvalid(DomainError):
    """The details part failed validation: the same answer as a JSON body would get."""

    status_code = 422
    code = "validation_error"


async def read_upload(file: UploadFile | None, max_bytes: int, what: str) -> Upload | None:
    """The file's bytes (at most `max_bytes`, else DocumentTooLarge), or None when the
    form had no file (browsers send an empty part for an empty file input)."""
    if file is None:
        return None
    data = await file.read(max_bytes + 1)
    if not data and not file.filename:
        return None
    if len(data) > max_bytes:
        raise DocumentTooLarge(
            f"The {what} is larger than {max_bytes} bytes.", details={"max_bytes": max_bytes}
        )
    return Upload(data=data, filename=file.filename, content_type=file.content_type)


async def require_upload(
    file: UploadFile | None, max_bytes: int, what: str, *, missing: str
) -> Upload:
    """As read_upload, for a file the submission cannot go without (`missing` says so:
    a page and the API name the file each in their own way)."""
    upload = await read_upload(file, max_bytes, what)
    if upload is None:
        raise InvalidInput(missing)
    return upload


def parse_json_part(text: str, model: type[Model]) -> Model:
    """The `details` part of a multipart submission, validated like a JSON body. Its
    size and nesting are bounded before it is parsed (a part nested thousands deep would
    exhaust the parser's recursion), and its numbers are ones every JSON reader agrees on."""
    try:
        value = strict_json.loads(text, max_bytes=DETAILS_MAX_BYTES)
    except MalformedError as exc:
        raise InvalidInput(f"The details part is not JSON we accept: {exc}.") from None
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        details = [
            {"loc": [str(p) for p in e["loc"]], "msg": e["msg"], "type": e["type"]}
            for e in exc.errors()
        ]
        raise DetailsInvalid("The request is not valid.", details=details) from None


async def stored(store: ClipStore, key: str) -> AsyncIterator[bytes]:
    async for block in store.stream(key):
        yield block


def pdf_response(store: ClipStore, document: LegalDocument) -> StreamingResponse:
    return StreamingResponse(
        stored(store, document.object_key),
        media_type="application/pdf",
        headers={
            "content-disposition": f'attachment; filename="{document.filename}"',
            "content-length": str(document.size),
            "cache-control": "no-store",
        },
    )
