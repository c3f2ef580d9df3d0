"""/verify end to end: the bot's one-time link, the real `arrakis web` process serving the page,
Debian's Chromium (headless, driven by Selenium) with an injected EIP-1193 provider that signs
through an unlocked anvil account; the wallet ends up linked and the member's roles set. Tampered,
expired and replayed signatures are refused, and a used link says so."""

from __future__ import annotations

import os
import time
import shutil
import sys
from dataclasses import replace

import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from arrakis_engine.bootstrap import build_engine
from arrakis_engine.domain.chain import Asset
from arrakis_engine.adapters.rq.queue import work_until_done
from tests.bot.conftest import new_guild_id
from tests.fixtures.ports import ServerProcess, free_port
from tests.fixtures.workers import wait_for

MEMBER = "510000000000000001"
OTHER = "510000000000000002"
CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"

PROVIDER = """
window.ethereum = {
  isArrakisTestWallet: true,
  async request({method, params}) {
    if (method === "eth_requestAccounts" || method === "eth_accounts") return [%(account)r];
    if (method === "personal_sign") {
      const r = await fetch(%(anvil)r, {method: "POST", headers: {"Content-Type": "application/json"},
        body: JSON.stringify({jsonrpc: "2.0", id: 1, method: "personal_sign", params})});
      const j = await r.json();
      if (j.error) throw new Error(j.error.message);
      return j.result;
    }
    throw new Error("this test wallet does not do " + method);
  }
};
"""


@pytest.fixture(scope="module")
def web_port():
    return free_port()


@pytest.fixture(scope="module")
def bot_engine(settings, engine, fake, anvil, web_port):
    """The bot's engine, its links pointing at the web process of this module."""
    eng = build_engine(replace(settings, discord_api_base=fake.url, discord_bot_token=fake.token,
                               retry_backoff=(1, 1, 1), rpc_urls={"berachain": (anvil.url,)},
                               public_url=f"http://127.0.0.1:{web_port}", public_url_explicit=True))
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def web(database_url, redis_url, fake, anvil, web_port, tmp_path_factory, bot_engine):
    folder = tmp_path_factory.mktemp("web-verify")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "SLACK_", "RPC_URLS_"))}
    env.update({"DATABASE_URL": database_url, "REDIS_URL": redis_url, "ARRAKIS_DATA_DIR": str(folder),
                "DISCORD_API_BASE": fake.url, "DISCORD_BOT_TOKEN": fake.token, "RPC_URLS_BERACHAIN": anvil.url,
                "ARRAKIS_PUBLIC_URL": f"http://127.0.0.1:{web_port}"})
    server = ServerProcess("arrakis web", [sys.executable, "-m", "arrakis_engine.cli", "web", "--port",
                                           str(web_port)], folder / "web.log", env=env)
    server.start(lambda: httpx.get(f"http://127.0.0.1:{web_port}/healthz", timeout=1).status_code == 200,
                 timeout=60)
    yield f"http://127.0.0.1:{web_port}"
    server.stop()


@pytest.fixture(scope="module")
def world(bot_engine, fake, chain):
    """A basic community ranked by a token; the anvil account holds the most of it."""
    e = bot_engine
    token = chain.deploy("TestERC20", "Verify", "VFY", 18)
    account = chain.w3.eth.accounts[1]
    chain.send(token.functions.mintMany([account], [5000]))
    guild = new_guild_id()
    fake.join(guild, members=[MEMBER, OTHER], name="Verify Test")
    c = e.communities.create(name="Verify Test", guild_id=guild, theme_id="basic", subscription="free", actor="test")
    e.eligibility.configure(c.id, Asset("berachain", "erc20", token.address), purpose="rank")
    e.synthesis.synthesize(c.id, queued=False, actor="test")
    return guild, c, account


@pytest.fixture(scope="module")
def browser(anvil, world):
    if not (shutil.which(CHROMIUM) and shutil.which(DRIVER)):
        pytest.fail("Debian's chromium and chromium-driver are needed (scripts/services.sh installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(options=opts, service=Service(DRIVER))
    # The injected provider stands in for a wallet extension, which the page's CSP does not bind.
    driver.execute_cdp_cmd("Page.setBypassCSP", {"enabled": True})
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument",
                           {"source": PROVIDER % {"account": world[2], "anvil": anvil.url}})
    yield driver
    driver.quit()


def link_from_bot(fake, guild: str, member: str) -> str:
    it = fake.wait(fake.command(guild, member, "verify"), check=lambda i: i.original and not
                   i.original.get("loading"))
    button = it.original["components"][0]["components"][0]
    assert button["style"] == 5 and it.original["flags"] & 64  # a link button, ephemeral
    return button["url"]


def test_a_member_links_their_wallet_in_the_browser_and_gets_their_role(bot, bot_engine, fake, web, world,
                                                                         browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    guild, c, account = world
    url = link_from_bot(fake, guild, MEMBER)
    assert url.startswith(web + "/verify/")
    browser.get(url)
    assert "Verify Test" in browser.find_element(By.ID, "community").text
    browser.find_element(By.ID, "connect").click()
    status = browser.find_element(By.ID, "status")
    WebDriverWait(browser, 30).until(lambda d: "Linked" in status.text or "Not linked" in status.text)
    assert f"Linked {account.lower()} to Verify Test; your tier: Gold (rank 1)" in status.text, status.text
    with bot_engine.db.tenant(c.id):
        p = bot_engine.repos.profiles.by_discord_id(MEMBER)
        assert [w.wallet_address for w in bot_engine.repos.wallets.for_profile(p.id)] == [account.lower()]
    work_until_done(bot_engine, timeout=60)
    g = fake.guilds[guild]
    assert {g.roles[r]["name"] for r in g.members[MEMBER]} == {"Gold"}
    browser.get(url)  # the link is used up
    assert "expired or was already used" in browser.page_source


def test_tampered_replayed_and_expired_signatures_are_refused(bot, bot_engine, fake, web, world):
    guild, c, _ = world
    key = Account.create()
    url = link_from_bot(fake, guild, OTHER)
    with httpx.Client(timeout=30) as http:
        message = http.post(f"{url}/challenge", json={"address": key.address}).json()["message"]
        good = key.sign_message(encode_defunct(text=message)).signature.hex()
        tampered = message.replace("Link this wallet", "Link that wallet")
        r = http.post(f"{url}/complete", json={"message": tampered, "signature": good})
        assert r.status_code == 400 and r.json()["error"].startswith("the signed message is not the one")
        # a sign-in nonce counts once, whatever the outcome: the good signature is now a replay
        r = http.post(f"{url}/complete", json={"message": message, "signature": good})
        assert r.status_code == 400 and "expired or was already used" in r.json()["error"]
        message = http.post(f"{url}/challenge", json={"address": key.address}).json()["message"]
        stranger = Account.create().sign_message(encode_defunct(text=message)).signature.hex()
        r = http.post(f"{url}/complete", json={"message": message, "signature": stranger})
        assert r.status_code == 400 and "not made by that wallet" in r.json()["error"]
        message = http.post(f"{url}/challenge", json={"address": key.address}).json()["message"]
        good = key.sign_message(encode_defunct(text=message)).signature.hex()
        assert http.post(f"{url}/complete", json={"message": message, "signature": good}).status_code == 200
        r = http.post(f"{url}/complete", json={"message": message, "signature": good})
        assert r.status_code == 400 and "expired or was already used" in r.json()["error"]

        expiring = link_from_bot(fake, guild, OTHER)
        key = f"arrakis:verify:link:{expiring.rsplit('/', 1)[1]}"
        assert bot_engine.redis.pexpire(key, 1)
        wait_for(lambda: not bot_engine.redis.exists(key), timeout=5)  # expired, for certain
        page = http.get(expiring)
        assert page.status_code == 410 and "run /verify again in Discord" in page.text
        assert http.get(f"{web}/verify/not-a-real-link").status_code == 410


@pytest.fixture(scope="module")
def plain_browser():
    """Chromium with no injected wallet and the page's CSP in force."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=opts, service=Service(DRIVER))
    yield driver
    driver.quit()


def test_a_member_without_a_browser_wallet_pastes_a_signature(bot, bot_engine, fake, web, world, plain_browser):
    browser = plain_browser  # the page's own CSP applies: its script and style are files, not inline
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    guild, c, _ = world
    member = "510000000000000003"
    fake.guild(guild, members=[member])
    key = Account.create()
    browser.get(link_from_bot(fake, guild, member))
    browser.find_element(By.TAG_NAME, "summary").click()
    browser.find_element(By.ID, "address").send_keys(key.address)
    browser.find_element(By.ID, "get-message").click()
    shown = browser.find_element(By.ID, "message")
    WebDriverWait(browser, 10).until(lambda d: "Nonce:" in shown.text)
    message = browser.execute_script("return document.getElementById('message').textContent")
    assert key.address in message and "Link this wallet to your membership of Verify Test." in message
    signature = key.sign_message(encode_defunct(text=message)).signature.hex()
    browser.find_element(By.ID, "signature").send_keys("0x" + signature.removeprefix("0x"))
    browser.find_element(By.ID, "send-signature").click()
    status = browser.find_element(By.ID, "status")
    WebDriverWait(browser, 30).until(lambda d: "Linked" in status.text or "Not linked" in status.text)
    assert f"Linked {key.address.lower()} to Verify Test; no tier yet" in status.text, status.text
    assert not [e for e in browser.get_log("browser") if "Content Security Policy" in e.get("message", "")]


# --- the wallet page as an attacker meets it (issue 24.11) ------------------------------------

DB_WORDS = ("constraint", "duplicate key", "violates", "already exists:", "profiles_", "wallet_links")


def test_an_edited_statement_or_time_signed_by_the_wallet_is_refused(bot, bot_engine, fake, web, world):
    """The wallet's owner edits the issued message (statement, Issued At, Expiration Time) and signs
    the edited text: the signature is theirs, but the message is not the one the server issued."""
    guild, _, _ = world
    member = "510000000000000004"
    fake.guild(guild, members=[member])
    key = Account.create()
    url = link_from_bot(fake, guild, member)
    edits = (lambda m: m.replace("Link this wallet to your membership", "Link this wallet forever to"),
             lambda m: m.replace("Issued At: 20", "Issued At: 19"),
             lambda m: m.replace("Expiration Time: 20", "Expiration Time: 29"))
    with httpx.Client(timeout=30) as http:
        for edit in edits:
            message = http.post(f"{url}/challenge", json={"address": key.address}).json()["message"]
            edited = edit(message)
            assert edited != message
            signed = key.sign_message(encode_defunct(text=edited)).signature.hex()
            r = http.post(f"{url}/complete", json={"message": edited, "signature": signed})
            assert r.status_code == 400 and "not the one this page issued" in r.json()["error"], r.text
        with bot_engine.db.tenant(world[1].id):
            p = bot_engine.repos.profiles.by_discord_id(member)
            assert p is None or bot_engine.repos.wallets.for_profile(p.id) == []


def test_the_page_is_served_under_a_strict_csp_and_nosniff(web, bot_engine, fake, world):
    guild, _, _ = world
    url = link_from_bot(fake, guild, OTHER)
    with httpx.Client(timeout=30) as http:
        page = http.get(url)
        csp = page.headers["content-security-policy"]
        assert page.status_code == 200 and "unsafe-inline" not in csp and "script-src 'self'" in csp
        assert "<script>" not in page.text and "<style>" not in page.text and " style=" not in page.text
        assert page.headers["x-content-type-options"] == "nosniff"
        script = http.get(f"{web}/static/verify.js")
        assert script.status_code == 200 and script.headers["content-type"].startswith("application/javascript")
        for answer in (script, http.get(f"{web}/static/verify.css"), http.get(f"{web}/static/nope.js"),
                       http.get(f"{web}/verify/not-a-real-link"), http.post(f"{url}/challenge", json={"address": 1}),
                       http.get(f"{web}/healthz")):
            assert answer.headers.get("x-content-type-options") == "nosniff", answer.url
        expired = http.get(f"{web}/verify/not-a-real-link")
        assert "unsafe-inline" not in expired.headers["content-security-policy"] and " style=" not in expired.text


def test_one_time_tokens_never_reach_the_access_log(web, bot_engine, fake, world, tmp_path_factory):
    guild, _, _ = world
    url = link_from_bot(fake, guild, OTHER)
    token = url.rsplit("/", 1)[1]
    with httpx.Client(timeout=30) as http:
        http.get(url)
        http.post(f"{url}/challenge", json={"address": Account.create().address})
        http.post(f"{url}/complete", json={"message": "x", "signature": "0x00"})
    logs = [p for p in tmp_path_factory.getbasetemp().rglob("web.log") if "web-verify" in str(p)]
    assert logs
    wait_for(lambda: "/verify/<link>/complete" in logs[0].read_text(), timeout=10)
    text = logs[0].read_text()
    assert token not in text and '"GET /verify/<link>' in text


def _race(database_url, urls, bodies):
    """POST each completion at once while the members' table is locked by its owner, so both pass
    their checks before either can write; then let them go."""
    import threading

    import psycopg2

    owner = psycopg2.connect(database_url)
    owner.autocommit = False
    cur = owner.cursor()
    cur.execute("LOCK TABLE profiles IN SHARE ROW EXCLUSIVE MODE")
    answers = [None] * len(urls)

    def go(i):
        with httpx.Client(timeout=60) as http:
            answers[i] = http.post(f"{urls[i]}/complete", json=bodies[i])

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(urls))]
    for t in threads:
        t.start()
    time.sleep(2)  # both are past their checks and waiting on the lock, or refused already
    owner.rollback()
    owner.close()
    for t in threads:
        t.join(60)
    return answers


def test_racing_completions_never_show_database_text(bot, bot_engine, fake, web, world, database_url):
    guild, _, _ = world
    for member, same_link in (("510000000000000005", True), ("510000000000000006", False)):
        fake.guild(guild, members=[member])
        key = Account.create()
        first = link_from_bot(fake, guild, member)
        urls = [first, first if same_link else link_from_bot(fake, guild, member)]
        bodies = []
        with httpx.Client(timeout=30) as http:
            for u in urls:
                message = http.post(f"{u}/challenge", json={"address": key.address}).json()["message"]
                bodies.append({"message": message,
                               "signature": key.sign_message(encode_defunct(text=message)).signature.hex()})
        answers = _race(database_url, urls, bodies)
        assert sorted(a.status_code for a in answers)[0] == 200, [a.text for a in answers]
        for a in answers:
            assert not any(w in a.text for w in DB_WORDS), a.text
            assert a.status_code in (200, 400, 409) and ("text" in a.json() or "error" in a.json())


# --- links follow the port served (issue 28.4) --------------------------------------------------

def build_redis_value(settings):
    import redis

    return redis.Redis.from_url(settings.redis_url).get("arrakis:web:public_url")


@pytest.mark.parametrize("how", ["--port", "$PORT"])
def test_links_follow_the_port_served_without_a_public_url(how, database_url, redis_url, settings, fake, world,
                                                          tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "SLACK_", "RPC_URLS_", "ARRAKIS_PUB"))}
    env.update({"DATABASE_URL": database_url, "REDIS_URL": redis_url, "ARRAKIS_DATA_DIR": str(tmp_path)})
    args = [sys.executable, "-m", "arrakis_engine.cli", "web"]
    if how == "--port":
        args += ["--port", str(port)]
    else:
        env["PORT"] = str(port)
    server = ServerProcess("arrakis web", args, tmp_path / "web.log", env=env)
    server.start(lambda: httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200, timeout=60)
    try:
        bot_side = build_engine(replace(settings, discord_api_base=fake.url, discord_bot_token=fake.token))
        try:  # another process (the bot) with no ARRAKIS_PUBLIC_URL either
            link = bot_side.verification.link_for(world[0], MEMBER).url
        finally:
            bot_side.close()
        assert link.startswith(f"http://127.0.0.1:{port}/verify/"), link
        message = httpx.post(f"{link}/challenge", json={"address": Account.create().address},
                             timeout=30).json()["message"]
        assert message.startswith(f"127.0.0.1:{port} wants you") and f"URI: http://127.0.0.1:{port}/verify" in message
        # whoever writes to Redis cannot send members' links elsewhere: only a local address is followed
        bot_side = build_engine(replace(settings, discord_api_base=fake.url, discord_bot_token=fake.token))
        try:
            for forged in ("https://evil.example", "http://evil.example:8080", "http://6.6.6.6:80",
                           f"http://127.0.0.1:{port}@evil.example", "http://127.0.0.1:99999"):
                bot_side.redis.set("arrakis:web:public_url", forged)
                assert bot_side.verification.link_for(world[0], MEMBER).url.startswith(
                    "http://127.0.0.1:8080/verify/"), forged
            bot_side.redis.set("arrakis:web:public_url", f"http://127.0.0.1:{port}")
        finally:
            bot_side.close()
    finally:
        server.stop()
    assert not build_redis_value(settings)  # the stopped web process withdrew its address
