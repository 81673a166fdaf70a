"""Disclosure packages: the only way recorded footage (or subscriber information)
reaches an agency. A package is built once, stored as a ZIP signed by the instance,
and downloadable by the requesting agency's officers until its link expires."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index
from sqlalchemy.orm import Mapped, mapped_column

from doorwarden.db import Base, CreatedAt, SafeString, UUIDPrimaryKey, str_enum


class PackageKind(StrEnum):
    content = "content"  # clips under a warrant or an emergency
    subscriber = "subscriber"  # names, addresses, account dates under a subpoena
    community = "community"  # clips residents chose to share


class Package(UUIDPrimaryKey, CreatedAt, Base):
    __tablename__ = "legal_packages"
    __table_args__ = (Index("ix_legal_packages_created_at", "created_at"),)  # the report

    request_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("legal_requests.id", ondelete="RESTRICT"), index=True
    )
    agency_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("agencies.id", ondelete="RESTRICT"), index=True
    )
    kind: Mapped[PackageKind] = mapped_column(str_enum(PackageKind))
    # Emergency disclosures stand only if the agency files its proof in time.
    provisional: Mapped[bool] = mapped_column(default=False)
    object_key: Mapped[str] = mapped_column(SafeString(300))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(SafeString(64))
    clips: Mapped[int] = mapped_column(default=0)
    clips_without_content: Mapped[int] = mapped_column(default=0)  # end-to-end encrypted
    devices: Mapped[int] = mapped_column(default=0)
    households: Mapped[int] = mapped_column(default=0)
    expires_at: Mapped[datetime]
    downloads: Mapped[int] = mapped_column(default=0)


class PackageClip(Base):
    """Which clips a package holds: what each household is told was disclosed, and what
    the transparency report counts."""

    __tablename__ = "legal_package_clips"

    package_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("legal_packages.id", ondelete="CASCADE"), primary_key=True
    )
    clip_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("clips.id", ondelete="RESTRICT"), primary_key=True
    )
    household_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("households.id", ondelete="CASCADE"), index=True
    )
    device_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    # False for an end-to-end encrypted clip: metadata and ciphertext only.
    content_available: Mapped[bool]
