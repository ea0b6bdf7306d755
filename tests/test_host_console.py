"""The host console (slow tier: PostgreSQL): each agency's console under /<agency>/, the
operator's health page at /. An officer of one agency reaches nothing of another — no case,
message, file, register, result, setting or setup page — through any route the console has,
with their cookie as the browser sends it or copied by hand under the other agency's name."""
from __future__ import annotations

import re

import pytest
from werkzeug.test import Client

from .conftest import NOW
from .hostfarm import Farm, agency_name

pytestmark = pytest.mark.slow

PORT = 8480
HOST = f"127.0.0.1:{PORT}"
PASSWORD = "officer-pass-1234"
SAMPLE = {"year": "2569", "seq": "1", "row": "1", "index": "0", "outbox_id": "1", "verb": "release",
          "kind": "mail", "ref": "1", "name": "1-2569.pdf"}


def _urls(app) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    """Every route of a console as (method, path, endpoint), its arguments filled in."""
    found = []
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: SAMPLE.get(m.group(1), "x"), rule.rule)
        if rule.rule == "/<name>":
            path = "/agency"
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((method, path, rule.endpoint))
    return found


def _signin(client: Client, prefix: str, name: str, password: str) -> str:
    page = client.get(f"{prefix}/signin", headers={"Host": HOST}).get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    r = client.post(f"{prefix}/signin", data={"name": name, "password": password, "csrf": csrf, "next": "/"},
                    headers={"Host": HOST, "Origin": f"http://{HOST}"})
    assert r.status_code == 302, r.get_data(as_text=True)[:300]
    return r.headers["Location"]


def test_an_officer_of_one_agency_reaches_nothing_of_another(postgres, tmp_path):
    from mailbot.console import auth
    from mailbot.host.console import HostConsole, add_operator
    from mailbot.host.service import agency_config
    from mailbot.store import open_state

    url = postgres.new_database()
    with Farm(tmp_path, url, agencies=3, mails=2) as farm:
        farm.start_workers(1)
        farm.wait(lambda: farm.answered() == 6, 120)
        farm.stop_workers()
        for i, officer in ((0, "somchai"), (1, "somsri")):          # a002 has no officer account
            state = open_state(agency_config(agency_name(i), tmp_path / agency_name(i) / "mailbot.yaml"))
            try:
                auth.set_password(state, officer, PASSWORD, NOW, new=True)
            finally:
                state.close()
        add_operator(url, "operator", "host-operator-pass", NOW)

        console = HostConsole(url, lambda: NOW, port=PORT)
        a, b = agency_name(0), agency_name(1)
        client = Client(console)
        assert _signin(client, f"/{a}", "somchai", PASSWORD) == f"/{a}/"
        own = client.get(f"/{a}/cases/2569/1", headers={"Host": HOST})
        assert own.status_code == 200 and f"citizen-{a}-" in own.get_data(as_text=True)
        cookie = client.get_cookie(f"mailbot_console_{PORT}_{a}", domain="127.0.0.1", path=f"/{a}/")
        assert cookie is not None and cookie.path == f"/{a}/"          # never sent to another agency's path

        # somchai cannot sign in to agency b with agency a's account
        page = client.get(f"/{b}/signin", headers={"Host": HOST}).get_data(as_text=True)
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        r = client.post(f"/{b}/signin", data={"name": "somchai", "password": PASSWORD, "csrf": csrf},
                        headers={"Host": HOST, "Origin": f"http://{HOST}"})
        assert r.status_code == 401

        # every route of b's console, with a's session as the browser sends it, and copied by hand
        # under b's cookie name: a sign-in page or a refusal, never b's records
        thief = Client(console)
        thief.set_cookie(f"mailbot_console_{PORT}_{b}", cookie.value, domain="127.0.0.1", path=f"/{b}/")
        b_app = console.agency_app(b)
        assert b_app is not None
        routes = _urls(b_app)
        assert len(routes) > 40
        for who in (client, thief):
            for method, path, endpoint in routes:
                r = who.open(f"/{b}{path}", method=method, headers={"Host": HOST, "Origin": f"http://{HOST}"},
                             data={"csrf": "x"} if method == "POST" else None)
                body = r.get_data(as_text=True)
                if endpoint in ("static", "views.font"):
                    continue                          # the stylesheet and the fonts: the same for everyone
                if endpoint == "views.signin" and method == "GET":
                    assert r.status_code == 200 and 'name="password"' in body      # the sign-in form, no more
                    continue
                assert r.status_code in (302, 403), (method, path, r.status_code)
                if r.status_code == 302:
                    assert r.headers["Location"].startswith(f"/{b}/signin"), (path, r.headers["Location"])
                assert f"citizen-{b}" not in body and "somsri" not in body, (method, path)

        # an agency without accounts is not open to whoever reaches the host (its file says loopback)
        c = agency_name(2)
        assert Client(console).get(f"/{c}/", headers={"Host": HOST}).status_code == 403

        # the operator's page: not for officers; the operator sees every agency
        r = client.get("/", headers={"Host": HOST})
        assert r.status_code == 302 and r.headers["Location"].endswith("/signin")
        op = Client(console)
        r = op.post("/signin", data={"name": "operator", "password": "host-operator-pass"},
                    headers={"Host": HOST, "Origin": f"http://{HOST}"})
        assert r.status_code == 302
        page = op.get("/", headers={"Host": HOST}).get_data(as_text=True)
        assert all(agency_name(i) in page for i in range(3)) and page.count('<td class="nw ok">ปกติ') == 3
        # what each agency's last cycle found: replies waiting, alerts, the mailbox's sign-in (a
        # password here: no date to show), in Thai with Buddhist-Era dates
        assert page.count("รหัสผ่าน (ไม่ทราบวันหมดอายุ)") == 3 and "2569" in page
        assert op.get("/static/host.css", headers={"Host": HOST}).status_code == 200
        assert op.get("/fonts/Sarabun-Regular.ttf", headers={"Host": HOST}).status_code == 200
        assert "citizen-" not in page                  # health, not anyone's records
        # and the operator's sign-in opens no agency's console
        assert op.get(f"/{a}/cases/2569/1", headers={"Host": HOST}).status_code == 302
        # a removed agency's console is gone
        from mailbot.host.service import Host

        with Host(url) as host:
            host.remove(b, NOW)
        assert client.get(f"/{b}/", headers={"Host": HOST}).status_code in (302, 404)
        assert "citizen-" not in client.get(f"/{b}/cases/2569/1", headers={"Host": HOST}).get_data(as_text=True)


def test_behind_a_tls_proxy_the_public_name_is_answered_and_cookies_are_secure(postgres, tmp_path):
    from mailbot.console import auth
    from mailbot.host.console import HostConsole, add_operator, make_wsgi
    from mailbot.host.service import agency_config
    from mailbot.store import open_state

    url = postgres.new_database()
    with Farm(tmp_path, url, agencies=1, mails=0):
        state = open_state(agency_config("a000", tmp_path / "a000" / "mailbot.yaml"))
        try:
            auth.set_password(state, "somchai", PASSWORD, NOW, new=True)
        finally:
            state.close()
        add_operator(url, "operator", "host-operator-pass", NOW)
        public = {"Host": "10.0.0.7:8480", "X-Forwarded-Host": "saraban.example.go.th", "X-Forwarded-Proto": "https"}
        app = make_wsgi(HostConsole(url, lambda: NOW, port=8480, listen="0.0.0.0", names=["saraban.example.go.th"],
                                    behind_proxy=True), behind_proxy=True)
        client = Client(app)
        page = client.get("/a000/signin", headers=public)
        assert page.status_code == 200, page.get_data(as_text=True)[:200]
        assert "Secure" in page.headers.get("Set-Cookie", "")      # the agency's session cookie too
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.get_data(as_text=True)).group(1)  # type: ignore[union-attr]
        r = client.post("/a000/signin", data={"name": "somchai", "password": PASSWORD, "csrf": csrf},
                        headers={**public, "Origin": "https://saraban.example.go.th"})
        assert r.status_code == 302 and r.headers["Location"].endswith("/a000/")
        r = client.post("/signin", data={"name": "operator", "password": "host-operator-pass"},
                        headers={**public, "Origin": "https://saraban.example.go.th"})
        assert r.status_code == 302 and "Secure" in r.headers.get("Set-Cookie", "")
        # a name the host was not given is refused, through the proxy or not
        assert client.get("/signin", headers={**public, "X-Forwarded-Host": "evil.example"}).status_code == 421
        assert client.get("/a000/signin", headers={"Host": "evil.example"}).status_code == 421
