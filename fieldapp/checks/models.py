"""The flags the automatic case-file checks raise (computed, not stored: a flag always reflects
the record and the thresholds as they are now)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class FlagCode(enum.StrEnum):
    """Every automatic flag of API.md, in the order they are listed to a supervisor."""

    single_officer = "single_officer"  # 双人执法: one officer only
    location_far_from_target = "location_far_from_target"
    outside_jurisdiction = "outside_jurisdiction"
    low_accuracy = "low_accuracy"
    photo_location_mismatch = "photo_location_mismatch"
    photo_time_outside_inspection = "photo_time_outside_inspection"
    missing_photos = "missing_photos"  # a failed item without a photo
    photos_missing_upload = "photos_missing_upload"
    late_submission = "late_submission"
    rectification_overdue = "rectification_overdue"
    impossible_travel = "impossible_travel"
    clock_skew = "clock_skew"


ORDER = {code: position for position, code in enumerate(FlagCode)}


@dataclass(frozen=True)
class Flag:
    """One raised flag: its code, a sentence a supervisor can read, and the numbers behind it
    (for reports and for anyone who wants to recheck the sentence)."""

    flag: FlagCode
    detail: str
    facts: dict[str, Any] = field(default_factory=dict)
