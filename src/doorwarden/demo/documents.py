"""Small real PDFs for the demo's legal documents: a page of text each, which the
server's parser (pypdf) accepts and a browser shows. Each one names its case and the
moment it was made, so no two are the same file (the server refuses a replayed one)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import UTC, datetime

from pypdf import PdfWriter
from pypdf.generic import ContentStream, DictionaryObject, NameObject

_SAFE = {ord(c): f"\\{c}" for c in "\\()"}


def _text(line: str) -> bytes:
    return line.encode("ascii", "replace").decode().translate(_SAFE).encode()


def text_pdf(title: str, lines: Sequence[str]) -> bytes:
    """One US-letter page: `title` in bold, then `lines` in Helvetica."""
    writer = PdfWriter()
    page = writer.add_blank_page(width=612, height=792)

    def font(base: str) -> DictionaryObject:
        return DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Font"),
                NameObject("/Subtype"): NameObject("/Type1"),
                NameObject("/BaseFont"): NameObject(base),
            }
        )

    fonts = DictionaryObject(
        {NameObject("/F1"): font("/Helvetica-Bold"), NameObject("/F2"): font("/Helvetica")}
    )
    page[NameObject("/Resources")] = DictionaryObject({NameObject("/Font"): fonts})
    body = b"BT /F1 16 Tf 72 720 Td 20 TL (" + _text(title) + b") Tj /F2 11 Tf 16 TL T*"
    for line in lines:
        body += b" T* (" + _text(line) + b") Tj"
    content = ContentStream(None, writer)
    content.set_data(body + b" ET")
    page.replace_contents(content)
    writer.add_metadata({"/Title": title, "/Producer": "doorwarden demo"})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def warrant_document(
    case: str,
    court: str,
    judge: str,
    agency: str,
    addresses: Sequence[str],
    window: tuple[datetime, datetime],
) -> bytes:
    start, end = (moment.astimezone(UTC).isoformat(timespec="seconds") for moment in window)
    return text_pdf(
        f"SEARCH WARRANT  {case}",
        [
            court,
            f"To {agency}: you may obtain the recorded video of the cameras at",
            f"{' and '.join(addresses)}, Demo Borough, between",
            f"{start} and {end}.",
            f"Signed {datetime.now(UTC):%d %B %Y} by {judge}.",
            "(A demonstration document.)",
        ],
    )
