"""`arrakis status` is what an operator runs when something is wrong: with Redis down it still
prints the health table (Redis down, in plain words) and the fleet, never an "unexpected" error."""

from __future__ import annotations

import json

from tests.fixtures.ports import free_port


def test_status_with_redis_down_reports_it_and_still_lists_the_fleet(run, make_community):
    c = make_community(name="Outage Watch")
    down = {"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}  # nothing listens there
    text = run("status", extra_env=down)
    assert text.exit_code == 0, text.output
    assert "unexpected" not in text.output
    health = {line.split()[0]: line for line in text.stdout.splitlines() if line.split()}
    assert "down" in health["redis"] and "ConnectionError" in health["redis"]
    assert "Outage Watch" in text.stdout
    out = run("status", "--json", extra_env=down)
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    mine = next(x for x in data["communities"] if x["id"] == str(c.id))
    assert mine["drift"] in ("no plan yet", "not synthesized", "unknown (Redis unreachable)")
    assert {i["name"]: i["state"] for i in data["health"]["items"]}["redis"] == "down"
