"""The risk model as pure functions: facts about a target in, factors, score and level out.

Nothing here reads the database or the clock; ``fieldapp/risk/operations.py`` gathers the facts
(:class:`Facts`) and stores what comes out. Every point of a score is a :class:`Factor` with its
reason and its source record, so a score can always be explained and recomputed. Who inspected
is never among the facts. The days named in reasons and floors are Shanghai days (``local_date``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from fieldapp.localtime import local_date


class RiskLevel(enum.StrEnum):
    """风险等级, lowest first."""

    low = "low"  # 低
    medium = "medium"  # 中
    elevated = "elevated"  # 较高
    high = "high"  # 高

    @property
    def rank(self) -> int:
        return _RANK[self]


_ORDER = (RiskLevel.low, RiskLevel.medium, RiskLevel.elevated, RiskLevel.high)
_RANK = {level: n for n, level in enumerate(_ORDER)}


@dataclass(frozen=True)
class FailedItem:
    code: str
    severity: str
    #: the site phases the item applies to (empty: every phase)
    phases: tuple[str, ...] = ()


#: The only outcome that finds nothing to act on: every other one acts on a violation
#: (corrected on site, rectification ordered, case opened, penalty waived; docs/review.md).
COMPLIANT = "compliant"


@dataclass(frozen=True)
class InspectionFact:
    """An approved inspection, as far as risk cares."""

    id: str
    at: datetime
    failed: tuple[FailedItem, ...] = ()
    #: the inspection's outcome (``Outcome``'s value)
    outcome: str | None = COMPLIANT

    @property
    def penalty_waived(self) -> bool:
        """首违不罚 / 轻微不罚: the finding stands, but it is no record of repeat offending."""
        return self.outcome == "penalty_waived"


@dataclass(frozen=True)
class Facts:
    """What is known about one target at one moment."""

    target_id: str
    kind: str
    credit_class: str
    sensitive_surroundings: bool = False
    business_type: str | None = None
    scale: str | None = None
    phase: str | None = None
    #: approved inspections, newest first (within the history window, and the latest always)
    inspections: tuple[InspectionFact, ...] = ()
    #: how many approved inspections the target has had in all
    inspection_count: int = 0
    #: when the target came under supervision (opened, registered or imported)
    created_at: datetime | None = None
    #: (case id, opened at) of cases opened within the history window
    cases: tuple[tuple[str, datetime], ...] = ()
    #: (complaint id, found true at) of substantiated complaints, newest first: when the
    #: decision found it true, not when the hotline received it (a check may take weeks)
    complaints: tuple[tuple[str, datetime], ...] = ()
    #: when the latest submitted inspection was made (for the schedule): its start, or when the
    #: server received it if that was earlier (a device clock running ahead)
    last_inspected_at: datetime | None = None


@dataclass(frozen=True)
class Factor:
    factor: str  # inherent, compliance, history, complaints, credit
    points: int
    reason: str
    source: dict | None = None  # {"entity": ..., "id": ...}

    def as_dict(self) -> dict:
        return {
            "factor": self.factor,
            "points": self.points,
            "reason": self.reason,
            "source": self.source,
        }


@dataclass(frozen=True)
class Floor:
    level: RiskLevel
    reason: str
    #: the Shanghai day the floor lifts: it holds on the days before, not on this one
    until: date | None = None
    source: dict | None = None

    def as_dict(self) -> dict:
        return {
            "level": self.level.value,
            "reason": self.reason,
            "until": self.until.isoformat() if self.until else None,
            "source": self.source,
        }


@dataclass(frozen=True)
class LevelState:
    """Where a target stands: its level and since when (None for a target never scored)."""

    level: RiskLevel | None = None
    since: datetime | None = None


@dataclass(frozen=True)
class Assessment:
    score: int
    factors: tuple[Factor, ...]
    floors: tuple[Floor, ...]
    level: RiskLevel
    since: datetime
    #: why the level is what it is (the score, a floor, or what holds a downgrade back)
    reason: str
    #: why the level changed, for the level history (the same as ``reason`` when unchanged)
    change_reason: str
    changed: bool
    next_due: date | None
    held: dict = field(default_factory=dict)


def _capped(factor: str, cap: int, entries: list[tuple[int, str, dict | None]]) -> list[Factor]:
    """Entries in order, the last ones cut down so that their points never exceed ``cap``."""
    out, left = [], cap
    for points, reason, source in entries:
        given = min(points, left)
        if given <= 0:
            break
        out.append(
            Factor(factor, given, reason if given == points else f"{reason} (capped)", source)
        )
        left -= given
    return out


def _source(entity: str, record_id) -> dict:
    return {"entity": entity, "id": str(record_id)}


def applies(item: FailedItem, facts: Facts) -> bool:
    """Site items score only in the phases they belong to."""
    return facts.kind != "site" or not item.phases or facts.phase in item.phases


def score_factors(facts: Facts, settings: dict, now: datetime) -> list[Factor]:
    """Every point of the target's score, with its reason and source."""
    factors: list[Factor] = []

    inherent = settings["inherent"]
    entries = []
    if facts.kind == "shop":
        table = inherent["business_type"]
        kind = facts.business_type if facts.business_type in table else "other"
        entries.append((table.get(kind, 0), f"business type {facts.business_type}", None))
    else:
        entries.append((inherent["scale"].get(facts.scale, 0), f"site scale {facts.scale}", None))
        entries.append((inherent["phase"].get(facts.phase, 0), f"site phase {facts.phase}", None))
    if facts.sensitive_surroundings:
        entries.append((inherent["sensitive_surroundings"], "sensitive surroundings", None))
    factors += _capped("inherent", inherent["cap"], entries)

    compliance = settings["compliance"]
    if facts.inspections:
        latest = facts.inspections[0]
        entries = [
            (
                compliance["severity"].get(item.severity, 0),
                f"item {item.code} ({item.severity}) failed on {local_date(latest.at).isoformat()}",
                _source("inspection", latest.id),
            )
            for item in sorted(latest.failed, key=_severity_first)
            if applies(item, facts)
        ]
        factors += _capped("compliance", compliance["cap"], entries)

    history = settings["history"]
    window = now - timedelta(days=30.44 * history["months"])
    entries = [
        (
            history["case"],
            f"case opened on {local_date(opened).isoformat()}",
            _source("case", case_id),
        )
        for case_id, opened in sorted(facts.cases, key=lambda c: c[1], reverse=True)
        if opened >= window
    ]
    # Repeats: every time an item failed again within the window, in any of its inspections,
    # not only the latest's items: one clean inspection does not wipe out a year of repeat
    # offending (compliance already says what the latest found). Each repeat names the
    # inspection that failed again, and the day of the earlier failure. Waived findings
    # (首违不罚 / 轻微不罚) count in compliance, not in history, neither as a repeat nor as the
    # failure it repeats.
    counted = [i for i in facts.inspections if not i.penalty_waived and i.at >= window]
    failed_last: dict[str, InspectionFact] = {}  # item code -> its latest failure so far
    repeats: list = []  # newest inspection first, as the cases: the cap cuts the oldest
    for inspection in reversed(counted):  # oldest first
        found = []
        for item in inspection.failed:
            before = failed_last.get(item.code)
            if before is not None and applies(item, facts):
                found.append(
                    (
                        history["repeat"],
                        f"item {item.code} failed again on {local_date(inspection.at).isoformat()}"
                        f" (also on {local_date(before.at).isoformat()})",
                        _source("inspection", inspection.id),
                    )
                )
            failed_last[item.code] = inspection
        repeats[:0] = found
    entries += repeats
    factors += _capped("history", history["cap"], entries)

    complaints = settings["complaints"]
    since = now - timedelta(days=complaints["days"])
    entries = [
        (
            complaints["each"],
            f"complaint found true on {local_date(found_true).isoformat()}",
            _source("complaint", complaint_id),
        )
        for complaint_id, found_true in facts.complaints
        if since <= found_true <= now
    ]
    factors += _capped("complaints", complaints["cap"], entries)

    credit = settings["credit"]
    factors += _capped(
        "credit",
        credit["cap"],
        [(credit["class"].get(facts.credit_class, 0), f"credit class {facts.credit_class}", None)],
    )
    return factors


_SEVERITY_RANK = {"severe": 0, "moderate": 1, "minor": 2}


def _severity_first(item: FailedItem):
    return (_SEVERITY_RANK.get(item.severity, 3), item.code)


def level_of_score(score: int, thresholds: dict) -> RiskLevel:
    if score >= thresholds["high"]:
        return RiskLevel.high
    if score >= thresholds["elevated"]:
        return RiskLevel.elevated
    if score >= thresholds["medium"]:
        return RiskLevel.medium
    return RiskLevel.low


def floors(facts: Facts, settings: dict, now: datetime) -> list[Floor]:
    """The minimum levels the worst single facts impose."""
    rules = settings["floors"]
    found = []
    severe = rules["severe_finding"]
    # Counted in Shanghai days, as the floor's `until` is: the day of the finding is the first
    # of its `days`, and `until` the day it lifts. Counted in hours, two findings of one day
    # lifted at different times of the day `until` names.
    today = local_date(now)
    for inspection in facts.inspections:
        found_on = local_date(inspection.at)
        until = found_on + timedelta(days=severe["days"])
        if today >= until:
            break
        if any(i.severity == "severe" and applies(i, facts) for i in inspection.failed):
            found.append(
                Floor(
                    RiskLevel(severe["level"]),
                    f"severe finding on {found_on.isoformat()}",
                    until,
                    _source("inspection", inspection.id),
                )
            )
            break
    if facts.credit_class == "D":
        found.append(Floor(RiskLevel(rules["credit_d"]["level"]), "credit class D"))
    new = rules["new_target"]
    # New: came under supervision within the period and not yet inspected enough to judge.
    # An established target that is rarely inspected is judged on its record instead.
    recent = facts.created_at is None or facts.created_at >= now - timedelta(days=new["days"])
    if recent and facts.inspection_count < new["inspections"]:
        found.append(
            Floor(
                RiskLevel(new["level"]),
                f"new target: {facts.inspection_count} of {new['inspections']} inspections so far",
            )
        )
    return found


def _clean(inspection: InspectionFact, facts: Facts) -> bool:
    """Whether the inspection found nothing wrong: its outcome is compliant and no item that
    applies to the target failed. An outcome that acts on a violation (corrected on site,
    rectification ordered, case opened, penalty waived) is no clean inspection, although the
    violation may be on no checklist item. A failed site item outside the site's current
    phase counts for nothing here, as in the score."""
    return inspection.outcome == COMPLIANT and not any(
        applies(item, facts) for item in inspection.failed
    )


def assess(facts: Facts, state: LevelState, settings: dict, now: datetime) -> Assessment:
    """Score the target and move its level by the rules.

    Up at once to the higher of the score's level and the floors; down one level at a time,
    and only after enough clean inspections at the current level, enough days at it and no
    complaint found true for a while.
    """
    factors = score_factors(facts, settings, now)
    score = sum(f.points for f in factors)
    found = floors(facts, settings, now)
    by_score = level_of_score(score, settings["levels"])
    wanted = max([by_score, *(f.level for f in found)], key=lambda level: level.rank)
    reason = f"score {score}" if wanted == by_score else _floor_reason(found, wanted)
    current = state.level
    held: dict = {}
    change_reason = reason
    if current is None:
        level = wanted
    elif wanted.rank > current.rank:
        level, change_reason = wanted, f"up: {reason}"
    elif wanted.rank == current.rank:
        level = current
    else:
        held = _downgrade_blocks(facts, state, settings, now)
        if held:
            level = current
            reason = f"held at {current.value} ({reason}): " + "; ".join(held.values())
        else:
            level = _ORDER[current.rank - 1]
            change_reason = f"down one level: {reason}"
            if level != wanted:
                # Said as the next assessment will say it: the next step waits its turn.
                held = _downgrade_blocks(facts, LevelState(level, now), settings, now)
                reason = f"held at {level.value} ({reason}): " + "; ".join(held.values())
    changed = level != current
    since = now if changed or state.since is None else state.since
    return Assessment(
        score=score,
        factors=tuple(factors),
        floors=tuple(found),
        level=level,
        since=since,
        reason=reason,
        change_reason=change_reason,
        changed=changed,
        next_due=next_due(facts, level, settings),
        held=held,
    )


def assess_after_correction(
    facts: Facts,
    state: LevelState,
    before: LevelState,
    settings: dict,
    now: datetime,
    corrected: str,
) -> Assessment:
    """Assess a target after a correction took away or changed ``corrected`` (a record's
    name), which its latest level change, a rise from ``before``, counted.

    Judged from ``state`` alone, a rise the record no longer gives a reason for would be held
    by the downgrade rules (clean inspections and days at the level, counted from the rise),
    although what caused it is gone. Judged from ``before`` as well, the lower of the two
    stands: the target is where it would be had the record counted as it is now from the
    start. Where the rise still has a reason (the record as corrected, or another fact),
    judging from ``before`` rises again and ``state`` stands, its days at the level with it.
    """
    result = assess(facts, state, settings, now)
    again = assess(facts, before, settings, now)
    if state.level is None or again.level.rank >= result.level.rank:
        return result
    change_reason = f"down: {corrected} corrected, judged as before the rise it caused: "
    return replace(again, changed=True, change_reason=change_reason + again.reason)


def _floor_reason(found: list[Floor], level: RiskLevel) -> str:
    return next(f.reason for f in found if f.level == level)


def _downgrade_blocks(facts: Facts, state: LevelState, settings: dict, now: datetime) -> dict:
    """What keeps the level from falling now (empty: nothing)."""
    rules = settings["downgrade"]
    blocks = {}
    since = state.since or now
    needed = rules["clean_inspections"][facts.kind]
    clean = 0
    for inspection in facts.inspections:  # newest first: clean ones in a row, at this level
        if inspection.at < since or not _clean(inspection, facts):
            break
        clean += 1
    if clean < needed:
        blocks["clean_inspections"] = f"{clean} of {needed} clean inspections at this level"
    days = (now - since).days
    if days < rules["days_at_level"]:
        blocks["days_at_level"] = f"{days} of {rules['days_at_level']} days at this level"
    quiet = now - timedelta(days=rules["complaint_free_days"])
    recent = [found_true for _, found_true in facts.complaints if quiet < found_true <= now]
    if recent:
        blocks["complaint_free_days"] = (
            f"complaint found true on {local_date(max(recent)).isoformat()}, within "
            f"{rules['complaint_free_days']} days"
        )
    return blocks


def next_due(facts: Facts, level: RiskLevel, settings: dict) -> date | None:
    """The level's minimum frequency, counted from the latest inspection (None: due now)."""
    if facts.last_inspected_at is None:
        return None
    days = settings["frequency"][facts.kind][level.value]
    # A Shanghai day: an inspection at 07:00 in Shanghai is the day before in UTC.
    return local_date(facts.last_inspected_at + timedelta(days=days))
