"""双随机: draw targets per risk level and officer pairs, reproducibly, and publish the results.

The draw itself (:func:`run_draw`) is a pure function of a frozen roster and a seed. The roster
is stored with the draw and fingerprinted (:func:`roster_hash`), so anyone holding the stored
roster can run the draw again and must get the same targets and pairs:

1. ``rng = random.Random(seed)`` (Python's Mersenne Twister; integer seeds are portable).
2. For each level, lowest first: the roster's targets at that level, sorted by id, and
   ``k = ceil(rate × n)`` of them, at least one when the level has any target and a rate above
   zero (low risk is never exempt), drawn with ``rng.sample``. The product is exact: the rate is
   read as the decimal it is written as (``Fraction(repr(rate))``), so 7% of 100 is 7, where
   floating point (0.07 × 100 = 7.000000000000001) would round up to 8. Draws stored before this
   rule counted in floating point; :func:`verify_draw` re-runs those that way.
3. For each drawn target, in that order: two officers drawn with ``rng.sample`` from its
   squadron's officers (sorted by id), leaving out those who inspected it last time. Where
   fewer than two are left (a small squadron, or one whose officers all inspected it), those
   left are kept and the pair is completed by ``rng.sample`` from the last inspectors (sorted
   by id): two officers always go (双人执法), chosen at random as the draw promises, and no
   drawn target waits for a leader to assign it by hand. Draws stored before this rule gave
   such a target no pair; :func:`verify_draw` re-runs those that way too.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import secrets
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from fractions import Fraction
from types import SimpleNamespace

import sqlalchemy as sa

from fieldapp.actor import Actor
from fieldapp.audit import operations as audit
from fieldapp.auth.models import Role, User
from fieldapp.db import change_counter, db, new_uuid
from fieldapp.draws.models import Draw
from fieldapp.errors import validation_error
from fieldapp.inspections.models import Inspection, InspectionStatus, inspection_officers
from fieldapp.org.models import Squadron
from fieldapp.risk.models import TargetRisk
from fieldapp.risk.operations import load_settings
from fieldapp.risk.scoring import RiskLevel
from fieldapp.targets.models import Target, TargetKind
from fieldapp.tasks.models import Task, TaskOrigin
from fieldapp.tasks.operations import build_task, creation_entry
from sync.sequence import hold

LEVELS = [level.value for level in RiskLevel]

#: Days the officers have to carry out a drawn inspection.
DRAW_TASK_DAYS = 30


def roster_hash(roster: dict) -> str:
    """SHA-256 of the roster's canonical JSON (sorted keys, no spaces, UTF-8)."""
    text = json.dumps(roster, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def draw_count(rate: float, n: int, *, exact: bool = True) -> int:
    """How many of ``n`` targets a level's ``rate`` draws: ``ceil(rate × n)``, at least one,
    at most all; exact on the rate's decimal unless ``exact`` is false (draws stored before)."""
    share = Fraction(repr(rate)) * n if exact else rate * n
    return min(n, max(1, math.ceil(share)))


def run_draw(
    roster: dict, seed: int, *, exact_counts: bool = True, complete_pairs: bool = True
) -> list[dict]:
    """The draw: ``[{target_id, level, officer_ids}]`` in the order drawn (see module doc).
    ``exact_counts`` and ``complete_pairs`` false: the rules of draws stored before them."""
    rng = random.Random(seed)
    by_level: dict[str, list[dict]] = {level: [] for level in LEVELS}
    for target in sorted(roster["targets"], key=lambda t: t["id"]):
        by_level[target["level"]].append(target)
    drawn = []
    for level in LEVELS:
        candidates, rate = by_level[level], roster["rates"][level]
        if not candidates or rate <= 0:
            continue
        k = draw_count(rate, len(candidates), exact=exact_counts)
        drawn += rng.sample(candidates, k)
    result = []
    for target in drawn:
        officers = sorted(roster["officers"][str(target["squadron_id"])])
        previous = set(roster["previous_inspectors"].get(target["id"], ()))
        eligible = [o for o in officers if o not in previous]
        if len(eligible) >= 2:
            pair = sorted(rng.sample(eligible, 2))
        elif complete_pairs:
            last_inspectors = [o for o in officers if o in previous]
            pair = sorted(eligible + rng.sample(last_inspectors, 2 - len(eligible)))
        else:
            pair = []
        result.append({"target_id": target["id"], "level": target["level"], "officer_ids": pair})
    return result


def freeze_roster(
    kind: TargetKind, squadron_ids: list[int], rates: dict, now: datetime | None = None
) -> dict:
    """Everything the draw depends on, read now: targets with their levels, officers by
    squadron, and each target's previous inspectors (never drawn to inspect it again), as of
    ``now`` when given (the demo draws in its past)."""
    targets = db.session.execute(
        sa.select(Target.id, Target.squadron_id, TargetRisk.level)
        .join(TargetRisk, TargetRisk.target_id == Target.id)
        .where(
            Target.kind == kind,
            Target.active.is_(True),
            Target.squadron_id.in_(squadron_ids),
        )
        .order_by(Target.id)
    ).all()
    officers: dict[str, list[str]] = {str(s): [] for s in squadron_ids}
    for user_id, squadron_id in db.session.execute(
        sa.select(User.id, User.squadron_id).where(
            User.role == Role.officer, User.active.is_(True), User.squadron_id.in_(squadron_ids)
        )
    ):
        officers[str(squadron_id)].append(str(user_id))
    for roster in officers.values():
        roster.sort()
    # Last by when each inspection counts as made, as risk and the schedule read it: by its
    # start alone, one from a pad whose clock runs ahead would not be made yet, and the same
    # officers could be drawn to inspect the shop again.
    made = Inspection.counted_at
    latest = (
        sa.select(Inspection.target_id, sa.func.max(made).label("at"))
        .join(Target, Target.id == Inspection.target_id)
        .where(
            Inspection.status == InspectionStatus.submitted,
            Target.kind == kind,
            Target.squadron_id.in_(squadron_ids),
            sa.true() if now is None else made <= now,
        )
        .group_by(Inspection.target_id)
        .subquery()
    )
    previous: dict[str, list[str]] = {}
    for target_id, user_id in db.session.execute(
        sa.select(Inspection.target_id, inspection_officers.c.user_id)
        .join(
            latest,
            sa.and_(latest.c.target_id == Inspection.target_id, latest.c.at == made),
        )
        .join(inspection_officers, inspection_officers.c.inspection_id == Inspection.id)
    ):
        previous.setdefault(str(target_id), []).append(str(user_id))
    return {
        "kind": kind.value,
        "rates": rates,
        "targets": [
            {"id": str(t.id), "squadron_id": t.squadron_id, "level": t.level.value} for t in targets
        ],
        "officers": officers,
        "previous_inspectors": {k: sorted(set(v)) for k, v in sorted(previous.items())},
    }


def _squadrons_short_of_a_pair(roster: dict, squadrons: list[Squadron]) -> list[str]:
    """What to say of each squadron that has targets the draw may pick but fewer than two active
    officers to pair. A squadron with nothing to draw from needs no pair. Whether the draw
    would happen to pick one of its targets is not asked: that would make the answer a matter
    of the seed, and drawing again until the short squadron's targets escape would exempt them.
    """
    drawable: dict[int, int] = {}
    for target in roster["targets"]:
        if roster["rates"][target["level"]] > 0:
            drawable[target["squadron_id"]] = drawable.get(target["squadron_id"], 0) + 1
    return [
        f"{s.name} (squadron {s.id}) has {drawable[s.id]} {roster['kind']}(s) to draw from"
        f" but {len(roster['officers'][str(s.id)])} active officer(s)"
        for s in squadrons
        if drawable.get(s.id) and len(roster["officers"][str(s.id)]) < 2
    ]


def create_draw(
    actor: Actor,
    kind: TargetKind,
    squadrons: list[Squadron],
    district_id: int,
    rates: dict | None,
    seed: int | None,
    now: datetime,
    new_id: Callable[[], uuid.UUID] = new_uuid,
    *,
    whole_district: bool = False,
) -> Draw:
    """Freeze the roster, draw, store the draw with its audit entry, and give each drawn
    target a task for its officer pair (devices pull it), all dated ``now``.

    ``whole_district``: the caller asked for district ``district_id`` (``squadrons`` are all of
    its squadrons), otherwise for the one squadron in ``squadrons``. It is said, not guessed
    from how many squadrons there are: a district with one squadron still makes a district
    draw, and a refusal names the field that was sent.

    ``new_id`` gives the draw's and its tasks' ids; the demo passes ids from its seed, so that
    a seed builds the same district row for row."""
    defaults = load_settings()["draw"]["rates"]
    rates = {level: float((rates or {}).get(level, defaults[level])) for level in LEVELS}
    rates[RiskLevel.high.value] = 1.0  # high risk is always drawn entirely, whatever is asked
    if rates["low"] <= 0:
        raise validation_error({"rates": {"low": ["low risk is never exempt: rate above 0"]}})
    # The change counter before the roster is read, as every writer that reads rows to decide
    # what to write (sync.sequence.hold): a target deactivated or moved, or an officer
    # disabled, while the draw runs is either seen or changed after the draw's tasks are
    # committed (and then cancels them, or takes them along). Read before, a drawn target could
    # close or move in between, leaving its task open on a closed shop or in the old squadron.
    hold(db.session, change_counter)
    roster = freeze_roster(kind, [s.id for s in squadrons], rates, now)
    if not roster["targets"]:
        raise validation_error({"kind": [f"no active {kind.value} with a risk level to draw from"]})
    short = _squadrons_short_of_a_pair(roster, squadrons)
    if short:
        field = "district_id" if whole_district else "squadron_id"
        raise validation_error(
            {field: short},
            "a pair needs two officers (双人执法); " + "; ".join(short),
        )
    seed = secrets.randbits(63) if seed is None else seed
    drawn = run_draw(roster, seed)
    draw = Draw(
        id=new_id(),
        squadron_id=None if whole_district else squadrons[0].id,
        district_id=district_id,
        kind=kind,
        seed=seed,
        rates=rates,
        roster=roster,
        roster_hash=roster_hash(roster),
        targets=drawn,
        created_by_id=actor.user_id,
        created_at=now,
    )
    db.session.add(draw)
    db.session.flush()
    squadron_of = {t["id"]: t["squadron_id"] for t in roster["targets"]}
    officers = {
        str(user.id): user
        for user in db.session.scalars(
            sa.select(User).where(
                User.id.in_({uuid.UUID(o) for item in drawn for o in item["officer_ids"]})
            )
        )
    }
    tasks = [
        build_task(
            target_id=uuid.UUID(item["target_id"]),
            squadron_id=squadron_of[item["target_id"]],
            origin=TaskOrigin.draw,
            due=now + timedelta(days=DRAW_TASK_DAYS),
            note=f"双随机抽查 ({item['level']})",
            draw_id=draw.id,
            created_by_id=actor.user_id,
            assignees=[officers[o] for o in item["officer_ids"]],
            # Made with the draw, at ``now`` as the draw is: a draw made in the past (the
            # demo's) has tasks of that day, not of today.
            now=now,
        )
        for item in drawn
    ]
    for task in tasks:
        task.id = new_id()
        task.updated_at = now
    db.session.flush()
    audit.record(
        actor,
        "draw.create",
        "draw",
        draw.id,
        after={
            "kind": kind.value,
            "seed": seed,
            "roster_hash": draw.roster_hash,
            "targets": len(drawn),
            "squadron_id": draw.squadron_id,
            "district_id": draw.district_id,
        },
    )
    audit.append([creation_entry(actor, task) for task in tasks])
    return draw


def verify_draw(draw: Draw) -> dict:
    """Run the draw again from its stored roster and seed: both must match what was stored."""
    verification = {
        "roster_hash_matches": roster_hash(draw.roster) == draw.roster_hash,
        "targets_match": run_draw(draw.roster, draw.seed) == draw.targets,
    }
    if verification["targets_match"]:
        return verification
    # Drawn under an earlier rule: it stands if that rule gives it again, and says which.
    for exact_counts, complete_pairs in ((True, False), (False, True), (False, False)):
        legacy = run_draw(
            draw.roster, draw.seed, exact_counts=exact_counts, complete_pairs=complete_pairs
        )
        if legacy == draw.targets:
            verification["targets_match"] = True
            if not exact_counts:
                verification["counted_in_floating_point"] = True
            if not complete_pairs:
                verification["paired_without_last_inspectors"] = True
            break
    return verification


def part_seen_by(draw: Draw, squadron_id: int | None) -> Draw | SimpleNamespace:
    """``draw`` as a member of squadron ``squadron_id`` is shown it (see :func:`parts_seen_by`);
    ``None``: the whole draw."""
    return parts_seen_by([draw], squadron_id)[0]


def parts_seen_by(draws: list[Draw], squadron_id: int | None) -> list[Draw | SimpleNamespace]:
    """``draws`` as a member of squadron ``squadron_id`` is shown them: of the roster, that
    squadron's targets, officers and previous inspectors; of what was drawn, that squadron's
    targets and pairs; kind, rates, seed and hash whole. ``None``: the whole draws.

    Officers and leaders read nothing of other squadrons (their targets answer 404), and a
    district draw must not tell them what it drew there, at which level, and who inspected it
    last. They need not re-run the draw: :func:`verify_draw` runs server-side on the whole
    stored draw. A copy: the stored draw is left as it is (the request commits what it loaded).

    A drawn target that moved to the squadron since, with its open task (``task.move``), is
    the squadron's to carry out: the squadron sees it too, with its roster entry and its pair,
    whichever squadron's draw it was. Its previous inspectors stay out: the inspections that
    made them so stay with the squadron that made them. The tasks are read in one query for
    all of ``draws`` (a page of the list).
    """
    if squadron_id is None:
        return list(draws)
    held: dict[uuid.UUID, set[str]] = {}
    if draws:
        for draw_id, target_id in db.session.execute(
            sa.select(Task.draw_id, Task.target_id).where(
                Task.squadron_id == squadron_id, Task.draw_id.in_([d.id for d in draws])
            )
        ):
            held.setdefault(draw_id, set()).add(str(target_id))
    return [_part(draw, squadron_id, held.get(draw.id, set())) for draw in draws]


def _part(draw: Draw, squadron_id: int, held: set[str]) -> SimpleNamespace:
    """The part of ``draw`` squadron ``squadron_id`` sees; ``held``: the ids of the drawn
    targets whose tasks the squadron holds now (see :func:`parts_seen_by`)."""
    roster = draw.roster
    own_ids = {t["id"] for t in roster["targets"] if t["squadron_id"] == squadron_id}
    seen = own_ids | held
    part = {attr.key: getattr(draw, attr.key) for attr in sa.inspect(Draw).column_attrs}
    part["roster"] = {
        **roster,
        "targets": [t for t in roster["targets"] if t["id"] in seen],
        "officers": {s: ids for s, ids in roster["officers"].items() if s == str(squadron_id)},
        "previous_inspectors": {
            t: ids for t, ids in roster["previous_inspectors"].items() if t in own_ids
        },
    }
    part["targets"] = [item for item in draw.targets if item["target_id"] in seen]
    return SimpleNamespace(**part)
