"""A kill-switch drill never runs against real Discord."""

from __future__ import annotations

import pytest

from arrakis_engine.errors import ValidationError
from arrakis_engine.security.drill import KillSwitchDrill, on_this_machine


@pytest.mark.parametrize("base, local", [("http://127.0.0.1:5050/api/v10", True), ("http://localhost:1/api", True),
                                         ("https://discord.com/api/v10", False), (None, False),
                                         ("http://127.0.0.1.evil.example/api", False)])
def test_only_a_server_on_this_machine_counts_as_a_test_server(base, local):
    assert on_this_machine(base) is local


def test_the_drill_refuses_real_discord_before_touching_anything():
    drill = KillSwitchDrill(None, None, None, None, None, None, discord_base="https://discord.com/api/v10",
                            sandbox=False)
    with pytest.raises(ValidationError, match="never real Discord"):
        drill.run(None, "00000000-0000-4000-8000-000000000001", code="123456", release_code=lambda: None)
    assert KillSwitchDrill(None, None, None, None, None, None, discord_base=None, sandbox=True).allowed
