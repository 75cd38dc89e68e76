"""What an officer outside a record's scope can learn by pushing to it (nothing: one 403 for
every guess), an answer item code with a trailing newline on a frozen record, and a UTF-8 CSV
with one stray byte (refused at that byte, not read whole as GB18030 mojibake). Each was found
by a review of the change that made out-of-scope writes 403."""

from __future__ import annotations

import uuid

import pytest

from tests.evidence_helpers import inspection_with_photo, make_image, put_photo, sha
from tests.sync_helpers import FakeDevice


def _rejection(result: dict) -> tuple[int, str]:
    assert result["status"] == "rejected", result
    return result["error"]["code"], result["error"]["error"]


# -- sync: photo changes out of scope ----------------------------------------------------------


@pytest.fixture
def foreign_photo(world, login):
    """A photo of squadron 1 (officer1's inspection), its bytes uploaded; (inspection, photo,
    bytes)."""
    officer1 = login("officer1")
    data = make_image(64, 48)
    inspection_id, photo_id = inspection_with_photo(world, FakeDevice(officer1), data)
    assert put_photo(officer1, photo_id, data).status_code == 201
    return inspection_id, photo_id, data


def test_photo_out_of_scope_inspection_id_guess_is_answered_alike(login, foreign_photo):
    """officer3 (squadron 2) may neither read nor write squadron 1's photo. Guessing its
    inspection must not be answerable: a right and a wrong guess get the same refusal (403)."""
    inspection_id, photo_id, _ = foreign_photo
    device = FakeDevice(login("officer3"))
    right, wrong = device.push_ok(
        device.change("photo", photo_id, {"inspection_id": str(inspection_id)}),
        device.change("photo", photo_id, {"inspection_id": str(uuid.uuid4())}),
    )
    assert _rejection(right) == (403, "forbidden")
    assert _rejection(wrong) == (403, "forbidden"), wrong


def test_photo_out_of_scope_digest_guess_is_answered_alike(login, foreign_photo):
    """Nor may officer3 learn whether the photo's bytes are uploaded, or test a digest."""
    _, photo_id, data = foreign_photo
    device = FakeDevice(login("officer3"))
    right, wrong = device.push_ok(
        device.change("photo", photo_id, {"sha256": sha(data)}),
        device.change("photo", photo_id, {"sha256": "0" * 64}),
    )
    assert _rejection(right) == (403, "forbidden")
    assert _rejection(wrong) == (403, "forbidden"), wrong


# -- answers: item codes (Pattern) ------------------------------------------------------------


def test_amendment_answer_item_code_with_trailing_newline_is_refused(world, login):
    """ITEM_CODE became a Pattern so that "S03\\n" is no item code; the answers loader still
    calls ``ITEM_CODE.regex.match``, which lets the newline through. On an approved record
    (no checklist check, only load_inspection) the amendment is taken into the conflict log."""
    from tests.review_helpers import push_inspection, review_ok

    officer = login("officer1")
    device = FakeDevice(officer)
    inspection_id = push_inspection(world, device)
    approved = review_ok(login("leader1"), inspection_id, "approve")
    answers = {"S03\n": {"result": "fail", "note": "油烟直排", "photo_ids": []}}
    [result] = device.push_ok(
        device.change(
            "inspection",
            inspection_id,
            {"answers": answers},
            base_version=approved["version"],
        )
    )
    assert result["status"] == "rejected", result
    assert result["error"]["code"] == 422


# -- targets import: the GB18030 fallback ----------------------------------------------------------


def test_import_of_utf8_csv_with_one_stray_byte_does_not_garble_every_name(app, world, tmp_path):
    """A UTF-8 file with one Latin-1 byte in it is read whole as GB18030: every Chinese name
    and address is imported as mojibake, silently. It should be refused (as a file in no one
    encoding) or read as UTF-8."""
    import sqlalchemy as sa

    from fieldapp.db import db
    from fieldapp.targets.importer import ImportError_, import_targets
    from fieldapp.targets.models import Target
    from tests.conftest import SYSTEM

    squadron = world.squadrons[0].id
    text = (
        "kind,name,address,squadron,lon,lat,business_type\n"
        f"shop,老王面馆,淞滨路一百号,{squadron},121.47,31.37,catering\n"
        f"shop,Pâtisserie,共康路十八号,{squadron},121.47,31.37,catering\n"
    )
    raw = text.encode("utf-8").replace("Pâtisserie".encode(), "Pâtisserie".encode("latin-1"))
    path = tmp_path / "shops.csv"
    path.write_bytes(raw)
    with app.app_context():
        with pytest.raises(ImportError_) as refused:
            import_targets(SYSTEM, path)
        assert db.session.scalar(sa.select(Target).where(Target.address == "淞滨路一百号")) is None
    assert refused.value.problems[0].startswith("line 3: "), refused.value.problems
