"""Every workbook mailbot writes — the receive register, the daily log, the public licence
register — converted to CSV by LibreOffice headless: Thai text round-trips and no cell is a
formula (a formula would come out computed; ours must come out as the literal text)."""
from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from mailbot.config import yaml_load
from mailbot.thai import BANGKOK

from .conftest import letter

pytestmark = pytest.mark.slow   # LibreOffice converts every workbook


def soffice() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


def to_csv(path: Path, out: Path) -> list[list[str]]:
    out.mkdir(parents=True, exist_ok=True)
    # UTF-8 CSV: filter options 44 (comma), 34 (quote), 76 (UTF-8); all sheets are not needed
    subprocess.run([soffice(), "--headless", f"-env:UserInstallation=file://{out}/profile", "--convert-to",
                    "csv:Text - txt - csv (StarCalc):44,34,76", "--outdir", str(out), str(path)],
                   check=True, capture_output=True, timeout=180)
    text = (out / (path.stem + ".csv")).read_text(encoding="utf-8")
    return list(csv.reader(io.StringIO(text)))


def test_all_workbooks_convert_with_thai_intact_and_no_formulas(env, tmp_path):
    if soffice() is None:
        assert os.environ.get("CI") != "true", "CI must install libreoffice-calc-nogui"
        pytest.skip("LibreOffice not installed here")
    tricky = ["=1+2", "+3+4", "-5+6", "@SUM(1)", '=HYPERLINK("http://evil.example","คลิก")']
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร บ้านเลขที่ ๑๒"), *[letter(s) for s in tricky])
    env.cycle()
    day = env.clock().astimezone(BANGKOK).date()
    assert env.cli("report").returncode == 0
    # a licence in the public register
    from mailbot.clock import utcnow
    from mailbot.documents.certs import make_demo_pki

    pki = make_demo_pki(env.root / "certs", "เทศบาลตำบลบ้านตัวอย่าง")
    env.set_config(signing={"pkcs12": "certs/agency-demo.p12", "password": pki.password}, results={"stable_seconds": 0})
    rules = yaml_load((env.root / "rules.yaml").read_text(encoding="utf-8"))
    rules["services"][0]["licence"] = True
    (env.root / "rules.yaml").write_text(yaml.safe_dump(rules, allow_unicode=True), encoding="utf-8")
    year = day.year + 543
    assert env.cli("results", "letter", f"1/{year}", "--outcome", "approved", "--location", "หมู่ 3").returncode == 0
    assert utcnow

    books = {
        "register": env.root / "registers" / f"ทะเบียนรับ-{year}.xlsx",
        "daily": env.root / "registers" / "daily" / f"{year}-{day.month:02d}-{day.day:02d}.xlsx",
        "licences": env.root / "registers" / "public" / "ทะเบียนใบอนุญาต.xlsx",
    }
    for name, path in books.items():
        rows = to_csv(path, tmp_path / name)
        flat = [cell for row in rows for cell in row]
        assert any("\u0e00" <= ch <= "\u0e7f" for cell in flat for ch in cell), name     # Thai survived
        assert all("\ufffd" not in cell for cell in flat), name
        if name in ("register", "daily"):
            for text in tricky:
                assert text in flat, (name, text)           # literal text, not a computed value
            assert "3" not in flat and "7" not in flat      # =1+2 / +3+4 were not evaluated
        if name == "register":
            assert "ขออนุญาตก่อสร้างอาคาร บ้านเลขที่ ๑๒" in flat
        if name == "licences":
            assert "หมู่ 3" in flat and "คุณสมชาย ใจดี" in flat   # the holder as the letter addresses them
