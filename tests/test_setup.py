"""The first hour's parts without the console: the workspace, settings written back with their
comments, the service seeing a change on its next cycle, the mailbox password in the credential
store, starting with the computer."""
from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from mailbot.config import load_config, load_rules, reloaded
from mailbot.errors import ConfigError, MailbotError
from mailbot.setup import autostart, providers, settings, workspace

TODAY = date(2026, 12, 5)


def test_the_workspace_is_in_the_documents_folder(tmp_path):
    assert workspace.workspace({"MAILBOT_HOME": str(tmp_path / "x")}) == tmp_path / "x"
    home = tmp_path / "home"
    (home / "Documents").mkdir(parents=True)
    assert workspace.workspace({}, home=home, platform="win32") == home / "Documents" / "mailbot"
    assert workspace.workspace({}, home=home, platform="linux") == home / "mailbot"


def test_the_workspace_is_made_once(tmp_path):
    folder = tmp_path / "mailbot"
    config, made = workspace.ensure(folder, TODAY)
    assert made and config.is_file() and (folder / "rules.yaml").is_file() and (folder / "templates").is_dir()
    assert 'since: "2569-12-05"' in config.read_text(encoding="utf-8")
    config.write_text(config.read_text(encoding="utf-8").replace("เทศบาลตำบลบ้านตัวอย่าง", "อบต.หนองบัว"), encoding="utf-8")
    again, made = workspace.ensure(folder, TODAY)
    assert again == config and not made
    assert "อบต.หนองบัว" in config.read_text(encoding="utf-8")      # nothing overwritten


def test_settings_keep_comments_and_are_validated_before_saving(tmp_path):
    config, _ = workspace.ensure(tmp_path / "w", TODAY)
    before = config.read_text(encoding="utf-8")
    settings.update_config(config, {"agency.name": "องค์การบริหารส่วนตำบลหนองบัว", "imap.password_env": settings.REMOVE,
                                    "imap.password_store": True, "schedule.holidays": ["2569-12-07"]})
    after = config.read_text(encoding="utf-8")
    assert "name: องค์การบริหารส่วนตำบลหนองบัว" in after
    # every comment line of the starter file that is not about the removed key is still there
    comments = [line.strip() for line in before.splitlines() if line.strip().startswith("#")]
    lost = [c for c in comments if c not in after and "password" not in c]
    assert lost == []
    cfg = load_config(config)
    assert cfg.imap.password_store and cfg.imap.password_env is None
    assert cfg.schedule.holidays == [date(2026, 12, 7)]
    # a change that does not load is refused and the file stays byte for byte
    for bad in ({"imap.port": -5}, {"agency.name": ""}, {"schedule.office_hours": "late"}):
        with pytest.raises(ConfigError) as caught:
            settings.update_config(config, bad)
        assert ".new" not in caught.value.thai and "mailbot.yaml" in caught.value.thai
        assert config.read_text(encoding="utf-8") == after
    assert not list(config.parent.glob(".*.new*"))


def test_rules_are_validated_before_saving(tmp_path):
    config, _ = workspace.ensure(tmp_path / "w", TODAY)
    rules = config.parent / "rules.yaml"
    before = rules.read_text(encoding="utf-8")
    with pytest.raises(MailbotError):
        settings.update_rules(rules, [{"code": "X", "name": "งาน", "keywords": ["   "]}])
    with pytest.raises(MailbotError):
        settings.update_rules(rules, [{"code": "X", "name": "งาน", "keywords": ["ก"], "days": -3}])
    assert rules.read_text(encoding="utf-8") == before
    settings.update_rules(rules, [{"code": "X", "name": "งานทดลอง", "keywords": ["ทดลอง", "ลองดู"], "days": 5}])
    loaded = load_rules(rules)
    assert [s.code for s in loaded.services] == ["X"] and loaded.services[0].days == 5
    assert rules.read_text(encoding="utf-8").startswith("# กฎการจัดประเภทอีเมล")   # its head comments kept


def test_a_changed_file_is_seen_without_a_restart(tmp_path):
    config, _ = workspace.ensure(tmp_path / "w", TODAY)
    cfg = load_config(config)
    assert reloaded(cfg) is cfg                      # unchanged: the same object, no reading
    settings.update_config(config, {"schedule.every_minutes": 7})
    fresh = reloaded(cfg)
    assert fresh is not cfg and fresh.schedule.every_minutes == 7
    # a hand edit that breaks the file: the last good settings stay in use
    config.write_text(config.read_text(encoding="utf-8") + "\nnonsense: [\n", encoding="utf-8")
    assert reloaded(fresh) is fresh


def test_the_mailbox_password_is_kept_in_the_credential_store_not_in_files(tmp_path, monkeypatch):
    from mailbot.mail.credentials import save_server_password, server_password

    config, _ = workspace.ensure(tmp_path / "w", TODAY)
    settings.update_config(config, {f"{s}.{k}": v for s in ("imap", "smtp")
                                    for k, v in {"password_env": settings.REMOVE, "password_store": True}.items()})
    cfg = load_config(config)
    with pytest.raises(ConfigError) as caught:
        server_password(cfg.imap, "imap")
    assert "หน้าจอเจ้าหน้าที่" in caught.value.thai
    save_server_password(cfg.imap, "imap", "pa55-word!")
    assert server_password(cfg.imap, "imap") == "pa55-word!"
    for path in tmp_path.rglob("*"):
        if path.is_file() and "secrets" not in path.parts:
            assert b"pa55-word!" not in path.read_bytes(), path
    # password_store and password_env together: refused
    with pytest.raises(ConfigError):
        settings.update_config(config, {"imap.password_env": "X"})


def test_providers_fill_in_the_known_servers():
    s = providers.server_settings("microsoft", "saraban@nongbua.go.th")
    assert s["imap"]["host"] == "outlook.office365.com" and s["smtp"]["port"] == 587
    assert s["smtp"]["security"] == "starttls" and s["imap"]["password_store"] is True
    with pytest.raises(ValueError):
        providers.server_settings("other", "a@b.go.th")
    o = providers.server_settings("other", "a@b.go.th", imap=("mail.b.go.th", 993, "ssl"), smtp=("mail.b.go.th", 465, "ssl"))
    assert o["imap"]["host"] == "mail.b.go.th"
    assert providers.guess("imap.gmail.com") == "google" and providers.guess("x.example") == "other"


def test_starting_with_the_computer_writes_and_removes_a_user_unit(tmp_path, monkeypatch):
    monkeypatch.setattr(autostart.shutil, "which", lambda name: None if name == "systemctl" else f"/usr/bin/{name}")
    env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    monkeypatch.setenv("XDG_CONFIG_HOME", env["XDG_CONFIG_HOME"])
    assert not autostart.status("linux", env).on
    result = autostart.install(tmp_path / "ws", "linux", env)
    unit = Path(result.where)
    assert result.on and unit.is_file() and autostart.status("linux", env).on
    text = unit.read_text(encoding="utf-8")
    assert f"WorkingDirectory={tmp_path / 'ws'}" in text
    assert "start --no-browser" in text and str(tmp_path / "ws" / "mailbot.yaml") in text
    assert "systemd" in result.detail            # no systemctl here: the officer is told
    assert not autostart.remove("linux", env).on and not unit.exists()


def test_the_windows_task_runs_at_log_on(monkeypatch, tmp_path):
    """The exact schtasks lines (they cannot run here; the Windows workflow runs them)."""
    calls = []

    class Done:
        returncode, stderr = 0, ""

    monkeypatch.setattr(autostart, "_run", lambda args: calls.append(args) or Done())
    autostart.install(tmp_path, "win32", exe="C:\\Program Files\\mailbot\\mailbot.exe")
    create = calls[0]
    assert create[:6] == ["schtasks", "/Create", "/F", "/SC", "ONLOGON", "/TN"]
    assert create[6] == autostart.TASK and '"C:\\Program Files\\mailbot\\mailbot.exe"' in create[8]
    assert autostart.status("win32").on
    autostart.remove("win32")
    assert calls[-2][:2] == ["schtasks", "/Delete"]
