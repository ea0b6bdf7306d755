"""Licences: the register of licences the law requires to be displayed, and its public version.

Owns: recording a licence when the result of a ``licence: true`` service is sent (number
``N/<BE year>``, holder (the name given with ``--holder``, else the requester), activity, location,
issue and expiry dates, receipt number), and
``mailbot publish``: the public register as XLSX, as a printable PDF and as CSV (UTF-8 with BOM, so Excel shows
Thai) with only the fields the law requires shown — never e-mail, phone or ID numbers — plus
CKAN-style metadata for the open-data portal. Written atomically, refreshed on every change.
"""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from ..casework.wording import licence_name
from ..documents.printable import Column, Table
from ..files import csv_bytes, make_public, write_atomic
from ..store import State, from_iso, iso
from ..thai import addressee, be_year, thai_date, to_bangkok
from .numbering import written
from .receive import write_table

PUBLIC_COLUMNS = [      # 147 units: the workbook's 16 pt prints at 12 pt or more
    Column("เลขที่ใบอนุญาต", 14, align="C", wrap=True), Column("ผู้ได้รับอนุญาต", 26, wrap=True),
    Column("ประเภทกิจการ/ใบอนุญาต", 33, wrap=True), Column("สถานที่", 30, wrap=True),
    Column("วันที่ออก", 15, align="C", wrap=True), Column("วันหมดอายุ", 15, align="C", wrap=True),
    Column("เลขทะเบียนรับ", 14, align="C", wrap=True),
]
TITLE = "ทะเบียนใบอนุญาต"
CSV_HEADER = ["licence_no", "holder", "activity", "location", "issued", "expires", "receipt_no"]
BASENAME = "ทะเบียนใบอนุญาต"


def record(state: State, case, service, now: datetime,
           pattern: str = "ใบอนุญาต {seq}/{year}") -> str:
    """Add the licence row for a case whose result was sent (inside the caller's transaction).
    Its number follows ``registers.licence_pattern``, so it is never mistaken for a receipt number."""
    local = to_bangkok(now)
    year = be_year(local)
    seq = state.next_licence_seq(year)
    number = written(pattern, seq, year)
    expires = None
    if service.licence_years:
        try:
            expires = local.replace(year=local.year + service.licence_years)
        except ValueError:  # 29 February
            expires = local.replace(year=local.year + service.licence_years, day=28)
    state.add_licence(number=number, year_be=year, seq=seq, holder=_holder(case),
                      activity=licence_name(service.name, service.licence_name),
                      location=case["location"] or "", issued=iso(now), expires=iso(expires) if expires else None,
                      receipt=case["receipt"], case_id=case["id"])
    return number


def _holder(case) -> str:
    """The holder named with ``results letter --holder`` (cases.holder), else the requester, named
    as the result letter addresses them (``thai.addressee``: their title, the one the officer set,
    else คุณ; an organisation by its name)."""
    keys = case.keys()
    named = case["holder"] if "holder" in keys else None
    if named:
        return addressee(named)
    return addressee(case["sender_name"] or "", case["sender_title"] if "sender_title" in keys else "")


def rows(state: State, iso_dates: bool = False) -> list[list[str]]:
    """The public rows; ``iso_dates``: the issue and expiry dates again as ISO dates (open data)."""
    out = []
    for r in state.licences():
        issued = to_bangkok(from_iso(r["issued"])).date()
        expires = to_bangkok(from_iso(r["expires"])).date() if r["expires"] else None
        row = [
            r["number"], r["holder"] or "", licence_name(r["activity"]), r["location"] or "",
            thai_date(issued), thai_date(expires) if expires else "ไม่มีกำหนด", r["receipt"],
        ]
        if iso_dates:
            row += [issued.isoformat(), expires.isoformat() if expires else ""]
        out.append(row)
    return out


def publish(state: State, folder: Path, agency: str, now: datetime) -> list[Path]:
    """Write the public register (xlsx, its printable PDF, csv, CKAN metadata); returns the files written."""
    data = rows(state)
    folder.mkdir(parents=True, exist_ok=True)
    table = Table(TITLE, agency, f"ข้อมูล ณ วันที่ {thai_date(now)}", PUBLIC_COLUMNS, data)
    xlsx, pdf = write_table(folder, BASENAME, table)
    header = [c.header for c in PUBLIC_COLUMNS] + ["วันที่ออก (ISO 8601)", "วันหมดอายุ (ISO 8601)"]
    csv_path = folder / f"{BASENAME}.csv"
    write_atomic(csv_path, csv_bytes(header, rows(state, iso_dates=True)))
    meta = {
        "name": "licence-register",
        "title": f"{BASENAME} {agency}",
        "notes": f"ทะเบียนใบอนุญาตที่ออกโดย{agency} ตามที่กฎหมายกำหนดให้เปิดเผย (ไม่มีข้อมูลติดต่อส่วนบุคคล)",
        "organization": agency,
        "license_id": "Open-Government-Licence-TH",
        "language": "th",
        "metadata_modified": to_bangkok(now).isoformat(timespec="seconds"),
        "num_rows": len(data),
        "resources": [
            {"name": csv_path.name, "format": "CSV", "encoding": "UTF-8 (BOM)", "url": csv_path.name,
             "fields": [{"id": key, "label": col.header} for key, col in zip(CSV_HEADER, PUBLIC_COLUMNS)]
             + [{"id": "issued_iso", "label": "วันที่ออก (ISO 8601)", "type": "date"},
                {"id": "expires_iso", "label": "วันหมดอายุ (ISO 8601)", "type": "date"}]},
            {"name": xlsx.name, "format": "XLSX", "url": xlsx.name},
            {"name": pdf.name, "format": "PDF", "url": pdf.name},
        ],
    }
    meta_path = folder / f"{BASENAME}.ckan.json"
    write_atomic(meta_path, json.dumps(meta, ensure_ascii=False, indent=2).encode("utf-8"))
    written = [xlsx, pdf, csv_path, meta_path]
    for path in written:        # open data, meant to be read by anyone the office gives it to
        make_public(path)
    return written
