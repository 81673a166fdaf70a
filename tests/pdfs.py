"""Real PDF files for the legal tests, made with pypdf (a real parser must accept them)."""

from __future__ import annotations

import io

from pypdf import PdfWriter


def pdf_bytes(title: str = "Search warrant", pages: int = 1) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=612, height=792)
    writer.add_metadata({"/Title": title})  # each document's bytes (and SHA-256) its own
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
