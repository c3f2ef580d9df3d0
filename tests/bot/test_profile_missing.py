"""/profile's embed tells the member what the gating rule still asks, on their own profile only."""

from __future__ import annotations

from datetime import datetime, timezone

from arrakis_bot.members import profile_embed
from arrakis_engine.use_cases.member_desk import MemberView


def view(missing):
    return MemberView("Dune", "123456789012345678", None, None, False, ["0x" + "a" * 40, "0x" + "b" * 40], [],
                      datetime(2026, 1, 1, tzinfo=timezone.utc), None, "Fremen", missing)


def test_own_profile_shows_what_is_missing_and_both_wallets():
    fields = {f.name: f.value for f in profile_embed(view(["needs 120 more BGT"]), own=True).fields}
    assert fields["To qualify"] == "needs 120 more BGT"
    assert fields["Wallets"].count("…") == 2


def test_nothing_missing_or_someone_elses_profile_shows_no_such_field():
    assert "To qualify" not in {f.name for f in profile_embed(view([]), own=True).fields}
    assert "To qualify" not in {f.name for f in profile_embed(view(["needs 1 more BGT"]), own=False).fields}
