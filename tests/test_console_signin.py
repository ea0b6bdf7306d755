"""The console's sign-in under attack, through Flask's test client (no browser, no server):
only same-site paths follow a sign-in, and wrong passwords are counted per account however
its name is spelled, and per client address."""
from __future__ import annotations

import re
from urllib.parse import unquote

import pytest

from mailbot.console import auth, security
from mailbot.console.web import create_app
from mailbot.store import open_state

HOST = "127.0.0.1:8470"
PASSWORD = "correct horse 1"


@pytest.fixture
def console(env):
    env.set_config(console={"port": 8470})
    cfg = env.cfg
    state = open_state(cfg)
    try:
        auth.set_password(state, "somsak", PASSWORD, env.clock(), new=True)
    finally:
        state.close()
    app = create_app(cfg, env.clock, port=8470)
    app.testing = True
    return app


def signin_form(client, path="/signin"):
    page = client.get(path, headers={"Host": HOST})
    token = re.search(r'name="csrf" value="([^"]+)"', page.get_data(as_text=True))
    assert token, page.get_data(as_text=True)[:500]
    return token.group(1)


def post_signin(client, name, password, nxt="/"):
    """GET /signin?next=<nxt> (as a link would), then the form as the page sends it back (the
    hidden field holds the decoded value)."""
    token = signin_form(client, f"/signin?next={nxt}")
    return client.post("/signin", data={"name": name, "password": password, "csrf": token, "next": unquote(nxt)},
                       headers={"Host": HOST, "Origin": f"http://{HOST}"})


@pytest.mark.parametrize("nxt", ["/%09/evil.example", "/%0a/evil.example", "//evil.example", "/\\evil.example",
                                 "https://evil.example/", "/%0d%0aLocation:%20//evil.example", "%2F%2Fevil.example",
                                 "/\u3000/evil.example", "javascript:alert(1)"])
def test_only_same_site_paths_follow_sign_in(console, nxt):
    client = console.test_client()
    r = post_signin(client, "somsak", PASSWORD, nxt)
    assert r.status_code == 302, r.get_data(as_text=True)[:300]
    location = r.headers["Location"]
    assert location in ("/", f"http://{HOST}/"), location


def test_a_same_site_path_is_kept():
    assert security.same_site_path("/cases?status=review") == "/cases?status=review"
    assert security.same_site_path("/case/1/2569") == "/case/1/2569"
    for bad in ("/\t/evil.example", "/\n/x", "//x", "/\\x", "http://x/", "", None, "x", "/\u00a0/x"):
        assert security.same_site_path(bad) == "/", repr(bad)


def test_wrong_passwords_count_for_the_account_however_it_is_spelled(console):
    client = console.test_client()
    spellings = ["somsak", "Somsak", "somsak ", " somsak", "somsak\u3000", "SOMSAK", "somsak\t"]
    answers = [post_signin(client, spellings[i % len(spellings)], f"wrong {i}").status_code for i in range(60)]
    assert answers.count(401) == 60
    paused = post_signin(client, "somsak\u3000", PASSWORD)
    assert paused.status_code == 401 and "รอ" in paused.get_data(as_text=True)   # the right password waits too
    assert post_signin(client, "somsak", PASSWORD).status_code == 401


def test_many_names_from_one_address_are_paused(console):
    client = console.test_client()
    for i in range(20):
        post_signin(client, f"guess{i}", "wrong password")
    r = post_signin(client, "somsak", PASSWORD)
    assert r.status_code == 401 and "รอ" in r.get_data(as_text=True)


def test_throttle_key_is_what_verify_reads():
    assert security.throttle_key("  Somsak \u3000 x ") == security.throttle_key("somsak x")
