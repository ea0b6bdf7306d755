"""Certificates: the agency's signing certificate (PKCS#12), its checks, and demo/test CAs.

Owns: loading the .p12 with its passphrase (never logged), describing it for
`mailbot check` (subject, validity, a warning 30 days before expiry), and making a clearly
labelled throw-away CA + signer for `mailbot demo` and the tests.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..errors import MailbotError
from ..thai import cut

DEMO_LABEL = "ใบรับรองสำหรับทดลองเท่านั้น"


@dataclass(frozen=True)
class CertInfo:
    subject: str
    issuer: str
    not_before: dt.datetime
    not_after: dt.datetime

    def days_left(self, now: dt.datetime) -> int:
        return (self.not_after - now).days


_INFO: dict[tuple[str, int, int, str], CertInfo] = {}


def certificate_info(path: Path, password: str | None) -> CertInfo:
    """The certificate's description, for the checks made every cycle (its expiry): opening a
    .p12 costs about 75 ms (its key derivation), so the answer is kept while the file and the
    password stay the same. Errors are read_pkcs12's, and never kept."""
    try:
        st = path.stat()
    except OSError:
        return read_pkcs12(path, password)[1]          # its plain "not found"
    key = (str(path), st.st_mtime_ns, st.st_size, hashlib.sha256((password or "").encode()).hexdigest())
    info = _INFO.get(key)
    if info is None:
        info = read_pkcs12(path, password)[1]
        if len(_INFO) > 4096:                          # a host with thousands of agencies: start over
            _INFO.clear()
        _INFO[key] = info
    return info


def read_pkcs12(path: Path, password: str | None) -> tuple[bytes, CertInfo]:
    """The .p12 bytes and a description of its certificate; plain errors for officers."""
    try:
        data = path.read_bytes()
    except OSError:
        raise MailbotError(
            f"ไม่พบไฟล์ใบรับรองอิเล็กทรอนิกส์: {path}",
            f"signing certificate file not found: {path} (signing.pkcs12)",
        ) from None
    try:
        _key, cert, _chain = pkcs12.load_key_and_certificates(data, password.encode() if password else None)
    except ValueError:
        if not _is_pkcs12(data):
            raise MailbotError(
                f"ไฟล์ใบรับรองอิเล็กทรอนิกส์เสียหายหรือไม่ใช่ไฟล์ .p12/.pfx: {path}",
                f"the signing certificate file is damaged or not a PKCS#12 (.p12/.pfx) file: {path}",
            ) from None
        if not password:
            raise MailbotError(
                "ใบรับรองอิเล็กทรอนิกส์นี้ต้องใช้รหัสผ่าน แต่ยังไม่ได้ตั้งรหัสผ่าน",
                "the signing certificate needs a password and none is set (signing.password_env)",
                "บน Windows สั่ง: setx MAILBOT_SIGNING_PASSWORD \"รหัสผ่าน\" แล้วตั้ง signing.password_env: "
                "MAILBOT_SIGNING_PASSWORD ใน mailbot.yaml / on Windows run: setx MAILBOT_SIGNING_PASSWORD "
                "\"password\" and set signing.password_env",
            ) from None
        raise MailbotError(
            "รหัสผ่านไม่ถูกต้อง: เปิดใบรับรองอิเล็กทรอนิกส์ไม่ได้ ตรวจรหัสผ่านของใบรับรองอีกครั้ง",
            "wrong password for the signing certificate (signing.password / signing.password_env)",
        ) from None
    if cert is None:
        raise MailbotError("ไฟล์ .p12 ไม่มีใบรับรอง", "the .p12 file holds no certificate")
    return data, describe(cert)


def _is_pkcs12(data: bytes) -> bool:
    """The file is a well-formed PKCS#12 structure (so a failure to open it is the password)."""
    from asn1crypto import pkcs12 as asn1_pkcs12

    try:
        pfx = asn1_pkcs12.Pfx.load(data)
        return pfx["auth_safe"]["content_type"].native in ("data", "signed_data")
    except Exception:  # noqa: BLE001 - anything unparseable is a damaged file
        return False


def describe(cert: x509.Certificate) -> CertInfo:
    return CertInfo(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
    )


DESCRIPTION = x509.ObjectIdentifier("2.5.4.13")


# the short forms every Thai office reads (the agency's kind), used when a name is too long
ABBREVIATIONS = (("องค์การบริหารส่วนจังหวัด", "อบจ."), ("องค์การบริหารส่วนตำบล", "อบต."), ("กรุงเทพมหานคร", "กทม."),
                 ("เทศบาลตำบล", "ทต."), ("เทศบาลเมือง", "ทม."), ("เทศบาลนคร", "ทน."))


def _fit(text: str, limit: int = 64) -> str:
    """A name within an X.520 name's 64 (UTF-8 bytes here; Thai takes 3 bytes a letter), shortened
    on purpose rather than cut inside a word: first the agency's kind in its usual short form
    ("เทศบาลตำบลบ้านตัวอย่าง" -> "ทต.บ้านตัวอย่าง"), then whole words only; a single word longer than
    the limit is cut between whole Thai characters (a consonant keeps its vowel and tone marks)."""
    def fits(t: str) -> bool:
        return len(t.encode()) <= limit

    if fits(text):
        return text
    for long, short in ABBREVIATIONS:
        text = text.replace(long, short)
    if fits(text):
        return text
    kept = ""
    for word in _words(text):
        if not fits((kept + word).rstrip()):
            break
        kept += word
    return kept.rstrip() or cut(text, fits, ellipsis="")


def _words(text: str) -> list[str]:
    """The name's words (newmm), its short forms whole, spaces as their own pieces."""
    import re

    from .words import words as word_tokenize

    shorts = "|".join(re.escape(short) for _, short in ABBREVIATIONS)
    out: list[str] = []
    for piece in re.split(f"({shorts})", text):
        if piece:
            out += [piece] if re.fullmatch(shorts, piece) else word_tokenize(piece)
    return out


def _name(common: str, org: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "TH"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, _fit(org)),
        x509.NameAttribute(NameOID.COMMON_NAME, _fit(common)),
        x509.NameAttribute(DESCRIPTION, f"{DEMO_LABEL} / FOR TESTING ONLY"),
    ])


@dataclass(frozen=True)
class DemoPKI:
    p12: Path
    password: str
    ca_pem: Path
    ca_cert: x509.Certificate


def make_demo_pki(folder: Path, agency_name: str, password: str = "demo-sign", *,
                  days: int = 365, now: dt.datetime | None = None) -> DemoPKI:
    """A throw-away root CA and an agency signing certificate issued by it, both labelled
    as for testing only. Never for real documents."""
    now = now or dt.datetime.now(dt.timezone.utc)
    folder.mkdir(parents=True, exist_ok=True)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = _name("mailbot DEMO Root CA (test only)", "mailbot demo")
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=days + 365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf = (
        x509.CertificateBuilder().subject_name(_name(f"DEMO {agency_name}", agency_name))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    p12 = folder / "agency-demo.p12"
    p12.write_bytes(pkcs12.serialize_key_and_certificates(
        b"agency-demo", key, leaf, [ca], serialization.BestAvailableEncryption(password.encode())))
    ca_pem = folder / "demo-root-ca.pem"
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return DemoPKI(p12, password, ca_pem, ca)
