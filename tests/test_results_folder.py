"""The results folder as the officers use it, in process (no subprocess): a file another program
holds open never stops a cycle and is taken once it is free, a licence is recorded only for a
file named as an approval, and a second file of the same name never overwrites a signed copy."""
from __future__ import annotations

from mailbot.config import yaml_load
from mailbot.documents.certs import make_demo_pki

from .conftest import letter
from .test_results import db, make_pdf


def signed(env):  # type: ignore[no-untyped-def]
    pki = make_demo_pki(env.root / "certs", "เทศบาลตำบลบ้านตัวอย่าง")
    env.set_config(signing={"pkcs12": "certs/agency-demo.p12", "password": pki.password},
                   results={"stable_seconds": 0})


def test_a_result_file_that_cannot_be_moved_never_stops_the_cycle(env, monkeypatch):
    import mailbot.casework.results as results

    signed(env)
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร", sender="a@example.com"))
    [h] = env.cycle().handled
    path = env.root / "results" / "outbox" / f"{h.receipt.replace('/', '-')} อนุมัติ.pdf"
    path.write_bytes(make_pdf())

    def locked(self, src, dst):  # type: ignore[no-untyped-def]
        raise PermissionError(13, "The process cannot access the file because it is being used by another process",
                              str(src))

    # the results desk's own move only (shutil.move is the whole process's: the register writer uses it too)
    monkeypatch.setattr(results.Results, "_move", locked)
    env.deliver(letter("ร้องเรียนถนนชำรุด", sender="b@example.com"))
    report = env.cycle()
    assert [x.outcome for x in report.handled] == ["registered"]
    assert report.results is not None and report.results.stuck and path.exists()
    assert any("เปิดค้าง" in w for w in report.warnings)
    monkeypatch.undo()
    report = env.cycle()
    assert not path.exists() and report.results.already                 # moved now; not signed twice
    assert db(env).execute("SELECT count(*) FROM results").fetchone()[0] == 1


def test_licences_only_for_approvals_and_signed_copies_never_overwritten(env):
    import yaml

    signed(env)
    rules = yaml_load((env.root / "rules.yaml").read_text(encoding="utf-8"))
    rules["services"][0].update(licence=True)
    (env.root / "rules.yaml").write_text(yaml.safe_dump(rules, allow_unicode=True, sort_keys=False), encoding="utf-8")
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร", sender="a@example.com"))
    [h] = env.cycle().handled
    outbox = env.root / "results" / "outbox"
    n = h.receipt.replace("/", "-")
    (outbox / f"{n}.pdf").write_bytes(make_pdf("plain"))                  # no outcome in the name
    env.cycle()
    assert db(env).execute("SELECT count(*) FROM licences").fetchone()[0] == 0
    (outbox / f"{n}.pdf").write_bytes(make_pdf("second version"))        # the same name again
    env.cycle()
    sent = sorted(p.name for p in (env.root / "results" / "sent").glob("*ลงนามแล้ว*"))
    assert len(sent) == 2, sent
    (outbox / f"{n} อนุมัติ.pdf").write_bytes(make_pdf("approved"))
    env.cycle()
    assert db(env).execute("SELECT count(*) FROM licences").fetchone()[0] == 1
