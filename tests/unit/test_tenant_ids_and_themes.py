"""Pure checks: tenant id validation and the theme catalogue."""

from __future__ import annotations

import uuid

import pytest

from arrakis_engine.errors import InvalidTenantId, ValidationError
from arrakis_engine.storage.database import validate_tenant_id
from arrakis_engine.themes import THEMES, theme_for


def test_canonical_uuid_accepted():
    u = uuid.uuid4()
    assert validate_tenant_id(u) == u
    assert validate_tenant_id(str(u)) == u


@pytest.mark.parametrize("value", ["78DB4672-E560-47B7-9008-271EBB1D4ADA", " 943b0342-3585-4e5e-a91b-fe9a386f44bb", True, 0])
def test_noncanonical_refused(value):
    with pytest.raises(InvalidTenantId):
        validate_tenant_id(value)


@pytest.mark.parametrize("rank, tier", [(1, "Gold"), (10, "Gold"), (11, "Silver"), (50, "Silver"), (51, "Bronze"),
                                        (100, "Bronze"), (101, None)])
def test_basic_ranges(rank, tier):
    assert THEMES["basic"].tier_for_rank(rank) == tier


@pytest.mark.parametrize("rank, tier", [(1, "Naib"), (7, "Naib"), (8, "Fedaykin"), (69, "Fedaykin"), (70, "Usul"),
                                        (100, "Usul"), (101, "Sayyadina"), (1000, "Ichwan"), (1001, "Hajra"),
                                        (10000, "Hajra")])
def test_sietch_ranges(rank, tier):
    assert THEMES["sietch"].tier_for_rank(rank) == tier


@pytest.mark.parametrize("rank", [0, -1, 1.5, "1", True])
def test_invalid_rank_is_an_error_not_top_tier(rank):
    with pytest.raises(ValidationError):
        THEMES["basic"].tier_for_rank(rank)


def test_gating_by_subscription():
    assert theme_for("basic", "free").id == "basic"
    assert theme_for("sietch", "enterprise").id == "sietch"
    with pytest.raises(ValidationError, match="premium"):
        theme_for("sietch", "free")
    with pytest.raises(ValidationError, match="unknown subscription"):
        theme_for("basic", "gold")
    assert len(THEMES["sietch"].badges) == 12 and len(set(THEMES["sietch"].badge_ids)) == 12
