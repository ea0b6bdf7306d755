"""Config and rules validation: every problem names its key, in Thai and English. Holidays in
Buddhist-Era dates and impossible dates; through `mailbot check`, the common YAML mistakes get
a Thai hint and a file saved in another encoding is told to be saved as UTF-8."""
import pytest

from mailbot.config import load_config, load_rules
from mailbot.errors import ConfigError, RulesError

from .test_cli import mailbot

GOOD = """
agency: {name: เทศบาลตำบลบ้านตัวอย่าง, address: saraban@example.go.th}
imap: {host: imap.example.go.th, username: u, password: p}
smtp: {host: smtp.example.go.th, username: u, password_env: SMTP_PW}
"""


def write(tmp_path, text, name="mailbot.yaml"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_minimal_config_and_defaults(tmp_path, monkeypatch):
    cfg = load_config(write(tmp_path, GOOD))
    assert cfg.imap.effective_port() == 993 and cfg.smtp.effective_port() == 465
    assert cfg.limits.replies_per_sender_per_day == 5 and cfg.limits.replies_per_hour == 300
    assert cfg.data_dir == tmp_path / "data"           # relative to the config's folder
    assert cfg.rules_path == tmp_path / "rules.yaml"
    monkeypatch.setenv("SMTP_PW", "from-env")
    assert cfg.smtp.secret() == "from-env"
    assert "from-env" not in repr(cfg) and "'p'" not in repr(cfg.imap)


@pytest.mark.parametrize("extra,key", [
    ("\nimpa: {}", "impa"),
    ("\nlimits: {replies_per_hour: lots}", "limits.replies_per_hour"),
    ("\nlimits: {replies_per_our: 3}", "limits.replies_per_our"),
])
def test_unknown_keys_and_wrong_types_name_the_key(tmp_path, extra, key):
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, GOOD + extra))
    assert key in exc.value.detail
    assert "ไฟล์ตั้งค่า" in exc.value.thai


def test_bad_security_value(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, GOOD.replace("host: imap.example.go.th", "host: imap.example.go.th, security: tls")))
    assert "imap.security" in exc.value.detail


def test_yaml_syntax_error_gives_line(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, "agency: [unclosed\n"))
    assert "บรรทัด/line" in exc.value.thai


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load_config(tmp_path / "nope.yaml")
    assert "mailbot init" in exc.value.detail


def test_rules_validation(tmp_path):
    with pytest.raises(RulesError) as exc:
        load_rules(write(tmp_path, "services:\n  - code: A\n    name: a\n    keywords: [x]\n  - code: A\n    name: b\n    keywords: [y]\n", "r.yaml"))
    assert "used twice" in exc.value.detail
    with pytest.raises(RulesError) as exc:
        load_rules(write(tmp_path, "services:\n  - code: A\n    name: a\n    regex: ['(']\n", "r.yaml"))
    assert "services ข้อที่ 1 → regex" in exc.value.detail
    with pytest.raises(RulesError):
        load_rules(write(tmp_path, "services:\n  - code: A\n    name: a\n    keywords: [x]\n    colour: red\n", "r.yaml"))


@pytest.mark.slow   # mailbot init, as a subprocess
def test_holidays_in_buddhist_era_and_impossible_ones(tmp_path):
    from mailbot.config import load_config
    from mailbot.errors import ConfigError

    mailbot("init", str(tmp_path))
    path = tmp_path / "mailbot.yaml"
    base = path.read_text(encoding="utf-8")
    path.write_text(base + "\nschedule:\n  holidays: [2569-12-05, 10/12/2569, 2026-12-31]\n", encoding="utf-8")
    assert [d.isoformat() for d in load_config(path).schedule.holidays] == ["2026-12-05", "2026-12-10", "2026-12-31"]
    path.write_text(base + "\nschedule:\n  holidays: [2569-02-30]\n", encoding="utf-8")
    with pytest.raises(ConfigError) as bad:
        load_config(path)
    assert "ไม่มีจริง" in bad.value.thai and "holidays" in bad.value.detail
    path.write_text(base + "\nschedule:\n  holidays: ['31/4/2569']\n", encoding="utf-8")
    with pytest.raises(ConfigError) as bad:
        load_config(path)
    assert "schedule.holidays" in bad.value.detail and "31/4/2569" in bad.value.detail


@pytest.mark.slow   # mailbot check, as a subprocess
@pytest.mark.parametrize("text,hint", [
    ("agency:\n  name: x\n  address: a@b.co\nschedule:\n\tidle: true\n", "Tab"),
    ("agency:\n  name: เทศบาล: ตำบล\n", "คำพูด"),
    ("agency:\n  name: x\nstaff: []\n  - a@b.co\n", "[]"),
])
def test_common_yaml_mistakes_get_a_thai_hint(tmp_path, text, hint):
    (tmp_path / "mailbot.yaml").write_text(text, encoding="utf-8")
    r = mailbot("check", cwd=tmp_path)
    assert r.returncode == 2 and "บรรทัด/line" in r.stderr and "คำแนะนำ" in r.stderr and hint in r.stderr, r.stderr


@pytest.mark.slow   # mailbot check, as a subprocess
@pytest.mark.parametrize("encoding,words", [("utf-16", "UTF-16"), ("cp874", "ANSI")])
def test_a_config_saved_in_another_encoding_says_save_as_utf8(tmp_path, encoding, words):
    (tmp_path / "mailbot.yaml").write_bytes("agency:\n  name: เทศบาลตำบล\n".encode(encoding))
    r = mailbot("check", cwd=tmp_path)
    assert r.returncode == 2 and words in r.stderr and "UTF-8" in r.stderr
