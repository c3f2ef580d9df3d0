"""/verify end to end: the bot's one-time link, the real `arrakis web` process serving the page,
Debian's Chromium (headless, driven by Selenium) with an injected EIP-1193 provider that signs
through an unlocked anvil account; the wallet ends up linked and the member's roles set. Tampered,
expired and replayed signatures are refused, and a used link says so."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import replace

import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from arrakis_engine.bootstrap import build_engine
from arrakis_engine.chain.types import Asset
from arrakis_engine.synthesis.rq_queue import work_until_done
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
                               public_url=f"http://127.0.0.1:{web_port}"))
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
        assert r.status_code == 400 and r.json()["error"] == "the signature was not made by that wallet"
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


def test_a_member_without_a_browser_wallet_pastes_a_signature(bot, bot_engine, fake, web, world, browser):
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
