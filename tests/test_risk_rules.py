"""The risk model's rules, one table per rule, on the pure functions (no database)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldapp.inspections.models import Outcome
from fieldapp.localtime import SHANGHAI
from fieldapp.risk.defaults import DEFAULT_SETTINGS
from fieldapp.risk.scoring import (
    Facts,
    FailedItem,
    InspectionFact,
    LevelState,
    RiskLevel,
    assess,
    floors,
    level_of_score,
    score_factors,
)
from schemas.risk import check_settings

NOW = datetime(2026, 6, 30, 12, tzinfo=UTC)
SETTINGS = {key: entry["value"] for key, entry in DEFAULT_SETTINGS.items()}


def days_ago(n: float) -> datetime:
    return NOW - timedelta(days=n)


def shop(**overrides) -> Facts:
    values = {
        "target_id": "t1",
        "kind": "shop",
        "credit_class": "A",
        "business_type": "pharmacy",
        "inspection_count": 5,
    }
    return Facts(**(values | overrides))


def site(**overrides) -> Facts:
    values = {
        "target_id": "t2",
        "kind": "site",
        "credit_class": "A",
        "scale": "micro",
        "phase": "finishing",
        "inspection_count": 5,
    }
    return Facts(**(values | overrides))


def inspection(n: int, at: datetime, *failed: FailedItem, outcome: str | None = None):
    """An approved inspection; by default compliant when it failed nothing, and ordering
    rectification when it did."""
    if outcome is None:
        outcome = "rectification_ordered" if failed else "compliant"
    return InspectionFact(f"i{n}", at, tuple(failed), outcome)


MINOR, MODERATE, SEVERE = (
    FailedItem("S01", "minor"),
    FailedItem("S02", "moderate"),
    FailedItem("S03", "severe"),
)


def points(facts: Facts, factor: str) -> int:
    return sum(f.points for f in score_factors(facts, SETTINGS, NOW) if f.factor == factor)


# -- factors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        (shop(business_type="catering"), 16),
        (shop(business_type="pharmacy"), 3),
        (shop(business_type="tea_house"), 6),  # not in the table: "other"
        (shop(business_type="catering", sensitive_surroundings=True), 22),
        (site(scale="large", phase="earthwork"), 26),
        (site(scale="large", phase="earthwork", sensitive_surroundings=True), 30),  # capped
        (site(scale="micro", phase="finishing"), 8),
    ],
)
def test_inherent_risk_comes_from_what_the_target_is(facts, expected):
    assert points(facts, "inherent") == expected


@pytest.mark.parametrize(
    ("failed", "expected"),
    [
        ((), 0),
        ((MINOR,), 4),
        ((MODERATE,), 10),
        ((SEVERE,), 22),
        ((MINOR, MODERATE, SEVERE), 30),  # 36, capped at 30
    ],
)
def test_compliance_counts_the_latest_inspections_failed_items_by_severity(failed, expected):
    facts = shop(inspections=(inspection(2, days_ago(5), *failed), inspection(1, days_ago(50))))
    assert points(facts, "compliance") == expected


def test_only_the_latest_inspection_counts_for_compliance():
    facts = shop(inspections=(inspection(2, days_ago(5)), inspection(1, days_ago(50), SEVERE)))
    assert points(facts, "compliance") == 0


@pytest.mark.parametrize(("phase", "expected"), [("earthwork", 22), ("finishing", 0)])
def test_site_items_outside_the_current_phase_score_nothing(phase, expected):
    earthwork_only = FailedItem("C05", "severe", ("earthwork", "foundation"))
    facts = site(phase=phase, inspections=(inspection(1, days_ago(5), earthwork_only),))
    assert points(facts, "compliance") == expected
    assert any(f.level is RiskLevel.high for f in floors(facts, SETTINGS, NOW)) == bool(expected)


@pytest.mark.parametrize(
    ("opened_days_ago", "counted"), [(10, True), (365, True), (372, False), (500, False)]
)
def test_cases_count_for_twelve_months(opened_days_ago, counted):
    facts = shop(cases=(("c1", days_ago(opened_days_ago)),))
    assert points(facts, "history") == (8 if counted else 0)


def test_an_item_failed_again_is_a_repeat_unless_the_finding_was_waived():
    again = shop(
        inspections=(inspection(2, days_ago(5), MODERATE), inspection(1, days_ago(60), MODERATE))
    )
    assert points(again, "history") == 5
    # 首违不罚: the waived finding still counts in compliance, not in history.
    waived = shop(
        inspections=(
            inspection(2, days_ago(5), MODERATE, outcome="penalty_waived"),
            inspection(1, days_ago(60), MODERATE),
        )
    )
    assert points(waived, "history") == 0
    assert points(waived, "compliance") == 10
    earlier_waived = shop(
        inspections=(
            inspection(2, days_ago(5), MODERATE),
            inspection(1, days_ago(60), MODERATE, outcome="penalty_waived"),
        )
    )
    assert points(earlier_waived, "history") == 0
    other_item = shop(
        inspections=(inspection(2, days_ago(5), MINOR), inspection(1, days_ago(60), MODERATE))
    )
    assert points(other_item, "history") == 0


def test_repeats_within_twelve_months_stay_in_history_after_a_clean_inspection():
    """A shop failed S02 in March and again in April, and passed in May: compliance is what
    May found (nothing), but the year still holds a repeat, named by the inspection that
    failed again. Only the latest inspection's items used to count, so one clean visit wiped
    out the repeat and the shop scored as one that never failed anything."""
    facts = shop(
        inspections=(
            inspection(3, days_ago(40)),
            inspection(2, days_ago(80), MODERATE),
            inspection(1, days_ago(110), MODERATE),
        )
    )
    history = [f for f in score_factors(facts, SETTINGS, NOW) if f.factor == "history"]
    assert [(f.points, f.reason, f.source) for f in history] == [
        (
            5,
            "item S02 failed again on 2026-04-11 (also on 2026-03-12)",
            {"entity": "inspection", "id": "i2"},
        )
    ]
    assert points(facts, "compliance") == 0


def test_each_repeat_within_twelve_months_counts_and_the_oldest_go_past_the_cap():
    """S02 failed four times and S03 three times in the year: five repeats, newest first, of
    which the cap (20) keeps the four newest. A failure older than twelve months repeats
    nothing."""
    facts = shop(
        inspections=(
            inspection(5, days_ago(10), MODERATE, SEVERE),
            inspection(4, days_ago(50), MODERATE, SEVERE),
            inspection(3, days_ago(90), MODERATE),
            inspection(2, days_ago(130), MODERATE, SEVERE),
            inspection(1, days_ago(400), MINOR),
        )
    )
    inspection_ids = [
        f.source["id"] for f in score_factors(facts, SETTINGS, NOW) if f.factor == "history"
    ]
    assert inspection_ids == ["i5", "i5", "i4", "i4"]
    assert points(facts, "history") == 20
    once_a_year = shop(
        inspections=(inspection(2, days_ago(10), MINOR), inspection(1, days_ago(400), MINOR))
    )
    assert points(once_a_year, "history") == 0


@pytest.mark.parametrize(("received_days_ago", "counted"), [(1, True), (89, True), (91, False)])
def test_substantiated_complaints_count_for_ninety_days(received_days_ago, counted):
    facts = shop(complaints=(("k1", days_ago(received_days_ago)),))
    assert points(facts, "complaints") == (5 if counted else 0)


def test_complaints_are_capped():
    facts = shop(complaints=tuple((f"k{n}", days_ago(n + 1)) for n in range(5)))
    assert points(facts, "complaints") == 10


@pytest.mark.parametrize(("credit", "expected"), [("A", 0), ("B", 2), ("C", 6), ("D", 10)])
def test_credit_class(credit, expected):
    assert points(shop(credit_class=credit), "credit") == expected


def test_every_point_has_a_reason_and_its_source():
    facts = shop(
        inspections=(inspection(2, days_ago(5), MODERATE), inspection(1, days_ago(60), MODERATE)),
        cases=(("c1", days_ago(20)),),
        complaints=(("k1", days_ago(3)),),
    )
    sources = {
        (f.factor, (f.source or {}).get("entity"), (f.source or {}).get("id"))
        for f in score_factors(facts, SETTINGS, NOW)
    }
    assert sources >= {
        ("compliance", "inspection", "i2"),
        ("history", "case", "c1"),
        ("history", "inspection", "i2"),
        ("complaints", "complaint", "k1"),
    }
    assert all(f.reason for f in score_factors(facts, SETTINGS, NOW))


# -- levels --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("score", "level"),
    [
        (0, "low"),
        (29, "low"),
        (30, "medium"),
        (49, "medium"),
        (50, "elevated"),
        (69, "elevated"),
        (70, "high"),
        (100, "high"),
    ],
)
def test_thresholds(score, level):
    assert level_of_score(score, SETTINGS["levels"]) is RiskLevel(level)


@pytest.mark.parametrize(
    ("facts", "level"),
    [
        (shop(inspections=(inspection(1, days_ago(89), SEVERE),)), "high"),
        (shop(inspections=(inspection(1, days_ago(91), SEVERE),)), "low"),
        (shop(credit_class="D"), "elevated"),
        (shop(inspection_count=1), "medium"),
        (shop(inspection_count=2), "low"),
        (shop(inspection_count=0), "medium"),
    ],
)
def test_floors_set_a_minimum_level(facts, level):
    result = assess(facts, LevelState(), SETTINGS, NOW)
    assert result.level is RiskLevel(level)


def test_a_severe_finding_floor_lasts_ninety_days_and_says_until_when():
    facts = shop(inspections=(inspection(1, days_ago(10), SEVERE),))
    [floor] = floors(facts, SETTINGS, NOW)
    assert floor.level is RiskLevel.high
    assert floor.until == (days_ago(10) + timedelta(days=90)).date()
    assert floor.source == {"entity": "inspection", "id": "i1"}


FACTORS = ("inherent", "compliance", "history", "complaints", "credit")
#: 07:00 on 2 June in Shanghai: still 1 June in UTC.
EARLY_MORNING = datetime(2026, 6, 1, 23, 0, tzinfo=UTC)


def test_a_severe_finding_floor_runs_ninety_shanghai_days():
    """Found at 07:00 on 2 June in Shanghai: high until 31 August, and the floor says 2 June."""
    facts = shop(inspections=(inspection(1, EARLY_MORNING, SEVERE),))
    [floor] = floors(facts, SETTINGS, datetime(2026, 6, 10, tzinfo=UTC))
    assert floor.until == date(2026, 8, 31) == date(2026, 6, 2) + timedelta(days=90)
    assert floor.reason == "severe finding on 2026-06-02"


@pytest.mark.parametrize("hour", [0, 1, 12, 20, 23])
def test_a_severe_finding_floor_lifts_on_the_shanghai_day_it_names_whatever_the_hour(hour):
    """Two findings on 2 June in Shanghai, whatever their hour, keep a shop high on the 90
    days from 2 June to 30 August and both lift on 31 August, the day the floor names as
    `until`: counted by the hour, the one found at 20:00 was still high at noon on 31 August
    and the one found at 01:00 no longer was."""
    found = datetime(2026, 6, 2, hour, 0, tzinfo=SHANGHAI)
    facts = shop(inspections=(inspection(1, found, SEVERE),))
    last_day = datetime(2026, 8, 30, 23, 59, tzinfo=SHANGHAI)
    [floor] = floors(facts, SETTINGS, last_day)
    assert floor.level is RiskLevel.high and floor.until == date(2026, 8, 31)
    for moment in (datetime(2026, 8, 31, 0, 0), datetime(2026, 8, 31, 12, 0)):
        assert floors(facts, SETTINGS, moment.replace(tzinfo=SHANGHAI)) == []


def test_reasons_name_the_shanghai_day_of_what_they_count():
    """A finding, a case, a repeat and a complaint at 07:00 in Shanghai are that day's, not the
    day before (the UTC date)."""
    earlier = EARLY_MORNING - timedelta(days=7)
    facts = shop(
        inspections=(inspection(1, EARLY_MORNING, MODERATE), inspection(2, earlier, MODERATE)),
        cases=(("c1", EARLY_MORNING),),
        complaints=(("k1", EARLY_MORNING),),
    )
    now = datetime(2026, 6, 10, tzinfo=UTC)
    factors = score_factors(facts, SETTINGS, now)
    reasons = {name: [f.reason for f in factors if f.factor == name] for name in FACTORS}
    assert reasons["compliance"] == ["item S02 (moderate) failed on 2026-06-02"]
    assert reasons["history"] == [
        "case opened on 2026-06-02",
        "item S02 failed again on 2026-06-02 (also on 2026-05-26)",
    ]
    assert reasons["complaints"] == ["complaint found true on 2026-06-02"]
    held = assess(facts, LevelState(RiskLevel.high, now - timedelta(days=400)), SETTINGS, now)
    assert "complaint found true on 2026-06-02, within 60 days" in held.reason, held.reason


@pytest.mark.parametrize("current", ["low", "medium", "elevated"])
def test_an_upgrade_happens_at_once(current):
    facts = shop(credit_class="D", inspections=(inspection(1, days_ago(1), SEVERE),))
    state = LevelState(RiskLevel(current), days_ago(1))
    result = assess(facts, state, SETTINGS, NOW)
    assert result.level is RiskLevel.high and result.changed and result.since == NOW


def downgrade_case(*, clean=3, days_at_level=40, complaint_days_ago=None, kind="shop"):
    maker = shop if kind == "shop" else site
    inspections = tuple(inspection(n, days_ago(1 + n)) for n in range(clean))
    complaints = () if complaint_days_ago is None else (("k1", days_ago(complaint_days_ago)),)
    facts = maker(inspections=inspections, complaints=complaints)
    return assess(facts, LevelState(RiskLevel.high, days_ago(days_at_level)), SETTINGS, NOW)


@pytest.mark.parametrize(
    ("case", "falls", "blocked_by"),
    [
        ({}, True, None),
        ({"clean": 2}, False, "clean_inspections"),
        ({"kind": "site", "clean": 3}, False, "clean_inspections"),
        ({"kind": "site", "clean": 4}, True, None),
        ({"days_at_level": 29}, False, "days_at_level"),
        ({"days_at_level": 30}, True, None),
        ({"complaint_days_ago": 59}, False, "complaint_free_days"),
        ({"complaint_days_ago": 61}, True, None),
    ],
)
def test_a_downgrade_waits_for_every_condition(case, falls, blocked_by):
    result = downgrade_case(**case)
    assert result.level is (RiskLevel.elevated if falls else RiskLevel.high)
    assert result.changed is falls
    if blocked_by:
        assert set(result.held) == {blocked_by}
        assert result.reason.startswith("held at high")


def test_a_downgrade_is_one_level_at_a_time_and_restarts_the_clock():
    result = downgrade_case()
    assert result.score < 30  # the score alone says low
    assert result.level is RiskLevel.elevated
    assert result.since == NOW
    # Straight after, the next step waits again (no clean inspection at the new level yet).
    facts = shop(inspections=tuple(inspection(n, days_ago(1 + n)) for n in range(3)))
    again = assess(facts, LevelState(result.level, result.since), SETTINGS, NOW + timedelta(days=1))
    assert again.level is RiskLevel.elevated and set(again.held) == {
        "clean_inspections",
        "days_at_level",
    }


def test_a_failed_inspection_breaks_the_run_of_clean_ones():
    inspections = (
        inspection(4, days_ago(1)),
        inspection(3, days_ago(2)),
        inspection(2, days_ago(3), MINOR),
        inspection(1, days_ago(4)),
    )
    facts = shop(inspections=inspections)
    result = assess(facts, LevelState(RiskLevel.high, days_ago(40)), SETTINGS, NOW)
    assert result.level is RiskLevel.high and "clean_inspections" in result.held


@pytest.mark.parametrize(
    ("outcome", "clean"),
    [
        ("compliant", True),
        ("corrected_on_site", False),
        ("rectification_ordered", False),
        ("case_opened", False),
        ("penalty_waived", False),
    ],
)
def test_only_a_compliant_inspection_is_clean_toward_a_downgrade(outcome, clean):
    """An outcome that acts on a violation (docs/review.md) is no clean inspection, although
    no checklist item failed (the findings describe a violation on no item)."""
    inspections = (
        inspection(3, days_ago(1), outcome=outcome),
        inspection(2, days_ago(2)),
        inspection(1, days_ago(3)),
    )
    result = assess(
        shop(inspections=inspections), LevelState(RiskLevel.high, days_ago(40)), SETTINGS, NOW
    )
    assert result.level is (RiskLevel.elevated if clean else RiskLevel.high), result.reason
    if not clean:
        assert result.held == {"clean_inspections": "0 of 3 clean inspections at this level"}


def test_a_failed_item_outside_the_sites_phase_does_not_break_the_clean_run():
    """C05 belongs to earthwork: failed in the finishing phase it scores nothing, and the run
    of clean inspections goes on through it."""
    earthwork_only = FailedItem("C05", "moderate", ("earthwork", "foundation"))
    inspections = (
        inspection(4, days_ago(5), earthwork_only, outcome="compliant"),
        inspection(3, days_ago(10)),
        inspection(2, days_ago(15)),
        inspection(1, days_ago(20)),
    )
    facts = site(phase="finishing", inspections=inspections)
    result = assess(facts, LevelState(RiskLevel.elevated, days_ago(40)), SETTINGS, NOW)
    assert points(facts, "compliance") == 0
    assert result.level is RiskLevel.medium, result.reason
    # In its phase, the same failure breaks the run.
    earthwork = replace(facts, phase="earthwork")
    held = assess(earthwork, LevelState(RiskLevel.elevated, days_ago(40)), SETTINGS, NOW)
    assert held.level is RiskLevel.elevated, held.reason
    assert held.held == {"clean_inspections": "0 of 4 clean inspections at this level"}


def test_next_due_follows_the_level_frequency():
    facts = shop(last_inspected_at=days_ago(10))
    result = assess(facts, LevelState(), SETTINGS, NOW)
    assert result.level is RiskLevel.low
    assert result.next_due == (days_ago(10) + timedelta(days=180)).date()
    never = assess(shop(), LevelState(), SETTINGS, NOW)
    assert never.next_due is None  # never inspected: due now


def test_next_due_is_a_shanghai_day():
    """Inspected at 07:30 on 1 June in Shanghai (23:30 on 31 May in UTC): a low-risk shop is
    next due 180 days after 1 June, not after 31 May."""
    facts = shop(last_inspected_at=datetime(2026, 5, 31, 23, 30, tzinfo=UTC))
    result = assess(facts, LevelState(), SETTINGS, NOW)
    assert result.level is RiskLevel.low
    assert result.next_due == date(2026, 6, 1) + timedelta(days=180)


def test_the_inspector_is_never_a_fact():
    assert not any("officer" in name or "inspector" in name for name in Facts.__dataclass_fields__)


# -- properties ----------------------------------------------------------------------------------

_items = st.builds(
    FailedItem,
    st.sampled_from(["S01", "S02", "S03", "C01"]),
    st.sampled_from(["minor", "moderate", "severe"]),
    st.sampled_from([(), ("earthwork",), ("structure", "finishing")]),
)
_inspections = st.lists(
    st.builds(
        InspectionFact,
        st.text(min_size=1, max_size=4),
        st.floats(0, 800).map(days_ago),
        st.lists(_items, max_size=6).map(tuple),
        st.sampled_from([outcome.value for outcome in Outcome]),
    ),
    max_size=8,
).map(lambda found: tuple(sorted(found, key=lambda i: i.at, reverse=True)))
_facts = st.builds(
    Facts,
    target_id=st.just("t"),
    kind=st.sampled_from(["shop", "site"]),
    credit_class=st.sampled_from("ABCD"),
    sensitive_surroundings=st.booleans(),
    business_type=st.sampled_from(["catering", "retail", "unknown", None]),
    scale=st.sampled_from(["large", "medium", "small", "micro"]),
    phase=st.sampled_from(["earthwork", "foundation", "structure", "finishing"]),
    inspections=_inspections,
    inspection_count=st.integers(0, 20),
    cases=st.lists(st.tuples(st.just("c"), st.floats(0, 800).map(days_ago)), max_size=6).map(tuple),
    complaints=st.lists(st.tuples(st.just("k"), st.floats(0, 200).map(days_ago)), max_size=6).map(
        tuple
    ),
    last_inspected_at=st.none() | st.floats(0, 400).map(days_ago),
)
_weights = st.integers(0, 40)


@st.composite
def _settings(draw):
    """Random weights within caps that add up to at most 100, in their order (what
    check_settings allows)."""
    caps = draw(st.lists(st.integers(0, 20), min_size=5, max_size=5))
    values = {key: dict(entry) for key, entry in SETTINGS.items()}
    for key, cap in zip(
        ("inherent", "compliance", "history", "complaints", "credit"), caps, strict=True
    ):
        values[key] = {**values[key], "cap": cap}
    # In their order (a worse finding or credit class weighs at least as much), as check_settings
    # holds them to.
    severities = sorted(draw(st.lists(_weights, min_size=3, max_size=3)))
    values["compliance"]["severity"] = dict(
        zip(("minor", "moderate", "severe"), severities, strict=True)
    )
    classes = sorted(draw(st.lists(_weights, min_size=4, max_size=4)))
    values["credit"]["class"] = dict(zip("ABCD", classes, strict=True))
    values["history"] = {**values["history"], "case": draw(_weights), "repeat": draw(_weights)}
    assert check_settings(values) == {}
    return values


@settings(max_examples=300, deadline=None)
@given(_facts, _settings(), st.sampled_from([None, *RiskLevel]), st.floats(0, 400))
def test_the_score_is_the_sum_of_its_factors_and_within_0_100(facts, model, level, since):
    state = LevelState(level, days_ago(since) if level else None)
    result = assess(facts, state, model, NOW)
    assert result.score == sum(f.points for f in result.factors)
    assert 0 <= result.score <= 100
    assert all(f.points > 0 for f in result.factors)
    # Never below a floor; never more than one level down at a time.
    assert all(result.level.rank >= f.level.rank for f in result.floors)
    if level is not None:
        assert result.level.rank >= level.rank - 1


@settings(max_examples=300, deadline=None)
@given(_facts, st.sampled_from([None, *RiskLevel]), st.floats(0, 400))
def test_assessing_again_at_the_same_moment_changes_nothing(facts, level, since):
    """What recompute relies on to leave unchanged targets alone."""
    first = assess(facts, LevelState(level, days_ago(since) if level else None), SETTINGS, NOW)
    again = assess(facts, LevelState(first.level, first.since), SETTINGS, NOW)
    assert not again.changed
    assert (again.score, again.level, again.since, again.reason, again.next_due) == (
        first.score,
        first.level,
        first.since,
        first.reason,
        first.next_due,
    )
