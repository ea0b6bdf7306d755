"""A workbook file whose sheet can grow by appending, without rewriting what is already there.

Owns: the ZIP layout of a register workbook — the fixed members (styles, workbook, header
made by openpyxl) first, the sheet last, its rows compressed as independent DEFLATE segments
(each ends with a full flush, so segments concatenate into one valid stream) and the sheet's
closing XML as a final segment. Appending new rows cuts the file at the closing segment, adds
a segment of rows and a new closing segment, and writes the central directory again; the CRC
is continued from the stored one. So a register's per-cycle cost follows the new rows, not the
size of the year. The caller copies the file first and renames it into place (atomic).
"""
from __future__ import annotations

import struct
import time
import zlib
from dataclasses import asdict, dataclass

SIG_LOCAL, SIG_CENTRAL, SIG_END = 0x04034B50, 0x02014B50, 0x06054B50
UTF8_NAMES = 0x0800


@dataclass
class Layout:
    """Where the sheet is inside the file, to append to it later."""

    rows: int                 # data rows written
    sheet_header: int         # offset of the sheet's local file header
    tail_at: int              # offset where the closing segment's compressed bytes start
    crc: int                  # CRC-32 of the sheet's uncompressed bytes before the closing XML
    size: int                 # their length
    packed: int               # compressed length of the sheet before the closing segment
    members: list             # [name, offset, crc, packed, size] of the fixed members
    file_size: int

    def to_json(self) -> dict:
        return asdict(self)


def _dos_time() -> tuple[int, int]:
    t = time.localtime()
    return ((t.tm_hour << 11) | (t.tm_min << 5) | (t.tm_sec // 2),
            ((t.tm_year - 1980) << 9) | (t.tm_mon << 5) | t.tm_mday)


def _local_header(name: bytes, crc: int, packed: int, size: int) -> bytes:
    tm, dt = _dos_time()
    return struct.pack("<IHHHHHIIIHH", SIG_LOCAL, 20, UTF8_NAMES, 8, tm, dt, crc, packed, size, len(name), 0) + name


def _central(members: list, sheet: tuple[bytes, int, int, int, int]) -> bytes:
    tm, dt = _dos_time()
    out = []
    for name, offset, crc, packed, size in [*[(m[0].encode(), *m[1:]) for m in members], sheet]:
        out.append(struct.pack("<IHHHHHHIIIHHHHHII", SIG_CENTRAL, 20, 20, UTF8_NAMES, 8, tm, dt, crc, packed, size,
                               len(name), 0, 0, 0, 0, 0, offset) + name)
    return b"".join(out)


def _end(count: int, cd_size: int, cd_offset: int) -> bytes:
    return struct.pack("<IHHHHIIH", SIG_END, 0, 0, count, count, cd_size, cd_offset, 0)


def _segment(data: bytes, final: bool) -> bytes:
    c = zlib.compressobj(1, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush(zlib.Z_FINISH if final else zlib.Z_FULL_FLUSH)


def write_new(out, fixed: dict[str, bytes], sheet_name: str, head: bytes, rows: list[bytes],
              tail: bytes, count: int) -> Layout:
    """A whole workbook; ``out`` is a binary file positioned at 0."""
    members = []
    pos = 0
    for name, data in fixed.items():
        packed = _segment(data, True)
        crc = zlib.crc32(data)
        header = _local_header(name.encode(), crc, len(packed), len(data))
        out.write(header + packed)
        members.append([name, pos, crc, len(packed), len(data)])
        pos += len(header) + len(packed)
    body = head + b"".join(rows)
    return _write_sheet(out, members, sheet_name, pos, _segment(body, False), zlib.crc32(body), len(body),
                        tail, count)


def _write_sheet(out, members: list, sheet_name: str, sheet_header: int, packed_rows: bytes, crc: int,
                 size: int, tail: bytes, count: int) -> Layout:
    name = sheet_name.encode()
    packed_tail = _segment(tail, True)
    total_crc = zlib.crc32(tail, crc)
    total_packed = len(packed_rows) + len(packed_tail)
    total_size = size + len(tail)
    out.seek(sheet_header)
    header = _local_header(name, total_crc, total_packed, total_size)
    out.write(header)
    out.write(packed_rows)
    tail_at = sheet_header + len(header) + len(packed_rows)
    out.write(packed_tail)
    cd_offset = out.tell()
    cd = _central(members, (name, sheet_header, total_crc, total_packed, total_size))
    out.write(cd + _end(len(members) + 1, len(cd), cd_offset))
    out.truncate()
    return Layout(count, sheet_header, tail_at, crc, size, len(packed_rows), members, out.tell())


def append(out, layout: Layout, sheet_name: str, rows: list[bytes], tail: bytes, count: int) -> Layout:
    """Add rows to a file written by write_new/append (``out`` opened r+b on a copy of it)."""
    header_len = 30 + len(sheet_name.encode())
    data = b"".join(rows)
    segment = _segment(data, False)
    out.seek(layout.tail_at)
    out.write(segment)
    crc = zlib.crc32(data, layout.crc)
    packed_rows_len = layout.packed + len(segment)
    # _write_sheet rewrites the local header and everything after the rows; give it the rows' length
    name = sheet_name.encode()
    packed_tail = _segment(tail, True)
    total_crc = zlib.crc32(tail, crc)
    size = layout.size + len(data)
    out.seek(layout.sheet_header)
    out.write(_local_header(name, total_crc, packed_rows_len + len(packed_tail), size + len(tail)))
    tail_at = layout.sheet_header + header_len + packed_rows_len
    out.seek(tail_at)
    out.write(packed_tail)
    cd_offset = out.tell()
    cd = _central(layout.members, (name, layout.sheet_header, total_crc, packed_rows_len + len(packed_tail),
                                   size + len(tail)))
    out.write(cd + _end(len(layout.members) + 1, len(cd), cd_offset))
    out.truncate()
    return Layout(count, layout.sheet_header, tail_at, crc, size, packed_rows_len, layout.members, out.tell())
