"""Device client: a delete that replaces an unsent edit deletes the version the pad showed."""

from __future__ import annotations

from tests.test_sync_client_waiting import _server, _two_pads


def test_delete_replacing_unsent_edit_deletes_the_version_the_pad_showed(
    login, client, world, tmp_path
):
    """pad0's findings "B" waits unsent (base v1). pad1 sets legal_basis "X" (v2); pad0 pulls
    v2 and shows it; the officer deletes the draft. The delete was made over v2 (docs: "a
    delete edit[s] the version the pad showed"), so it deletes the record."""
    run, pads, clocks, inspection_id = _two_pads(client, tmp_path, world)
    clocks[0] += 1
    pads[0].save("inspection", inspection_id, {"findings": "B"})
    clocks[1] += 2
    pads[1].save("inspection", inspection_id, {"legal_basis": "X"})
    pads[1].sync()
    pads[0].pull()
    assert pads[0].get("inspection", inspection_id)["legal_basis"] == "X"
    clocks[0] += 5
    pads[0].save("inspection", inspection_id, {}, op="delete")
    results = pads[0].push()

    assert [r["status"] for r in results] == ["applied"], results
    assert _server(login, run, inspection_id).status_code == 404
