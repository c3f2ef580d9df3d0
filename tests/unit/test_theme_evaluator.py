"""Tier and badge rules of both themes, boundary by boundary."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from arrakis_engine.errors import ValidationError
from arrakis_engine.themes import THEMES, get_theme
from arrakis_engine.themes.evaluator import UNKNOWN, MemberFacts, ThemeEvaluator, TierEvaluator

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)


def facts(**kw) -> MemberFacts:
    kw.setdefault("joined_at", NOW)
    return MemberFacts(**kw)


SIETCH_BOUNDARIES = [(1, "Naib"), (7, "Naib"), (8, "Fedaykin"), (69, "Fedaykin"), (70, "Usul"), (100, "Usul"),
                     (101, "Sayyadina"), (150, "Sayyadina"), (151, "Mushtamal"), (200, "Mushtamal"),
                     (201, "Sihaya"), (300, "Sihaya"), (301, "Qanat"), (500, "Qanat"), (501, "Ichwan"),
                     (1000, "Ichwan"), (1001, "Hajra"), (10000, "Hajra")]
BASIC_BOUNDARIES = [(1, "Gold"), (10, "Gold"), (11, "Silver"), (50, "Silver"), (51, "Bronze"), (100, "Bronze"),
                    (101, None), (10000, None)]


@pytest.mark.parametrize("rank, tier", SIETCH_BOUNDARIES)
def test_sietch_absolute_boundaries(rank, tier):
    assert TierEvaluator(THEMES["sietch"]).candidate(rank) == tier
    assert THEMES["sietch"].tier_for_rank(rank) == tier


@pytest.mark.parametrize("rank, tier", BASIC_BOUNDARIES)
def test_basic_absolute_boundaries(rank, tier):
    assert TierEvaluator(THEMES["basic"]).candidate(rank) == tier


@pytest.mark.parametrize("rank", [0, -5, 2.0, "3", True])
def test_invalid_rank_is_refused(rank):
    with pytest.raises(ValidationError):
        TierEvaluator(THEMES["basic"]).candidate(rank)


def test_unranked_member_has_no_tier():
    assert TierEvaluator(THEMES["sietch"]).candidate(None) is None


@pytest.mark.parametrize("balance, tier", [
    ("1111", "Usul"), ("1110.99", "Sayyadina"), ("888", "Sayyadina"), ("887.999", "Mushtamal"), ("690", "Mushtamal"),
    ("420", "Sihaya"), ("419", "Qanat"), ("222", "Qanat"), ("69", "Ichwan"), ("68.99", "Hajra"), ("6.9", "Hajra"),
    ("6.89", None), ("0", None)])
def test_sietch_threshold_strategy(balance, tier):
    ev = TierEvaluator(THEMES["sietch"], strategy="threshold")
    assert ev.candidate(5000, Decimal(balance)) == tier


def test_threshold_strategy_rank_only_tiers_and_unknown_balance():
    ev = TierEvaluator(THEMES["sietch"], strategy="threshold")
    assert ev.candidate(7, Decimal(0)) == "Naib"  # rank-only tiers need no balance
    assert ev.candidate(69, None) == "Fedaykin"
    assert ev.candidate(70, None) is UNKNOWN  # a failed read is not a zero balance
    d = ev.decide(facts(rank=500, balance=None, current_tier="Qanat"), NOW)
    assert (d.tier, d.change) == ("Qanat", "unknown")


def test_percentage_strategy():
    ev = TierEvaluator(THEMES["basic"], strategy="percentage", percentages={"Gold": 10, "Silver": 50, "Bronze": 100})
    assert [ev.candidate(r, ranked_members=200) for r in (1, 20, 21, 100, 101, 200)] == [
        "Gold", "Gold", "Silver", "Silver", "Bronze", "Bronze"]
    with pytest.raises(ValidationError, match="missing"):
        TierEvaluator(THEMES["basic"], strategy="percentage")
    with pytest.raises(ValidationError):
        TierEvaluator(THEMES["basic"], strategy="percentage", percentages={"Gold": 60, "Silver": 50, "Bronze": 100})
    with pytest.raises(ValidationError, match="unknown tier strategy"):
        TierEvaluator(THEMES["basic"], strategy="vibes")


def test_promotion_is_immediate_and_demotion_waits_for_grace():
    ev = TierEvaluator(THEMES["sietch"])  # 24 h grace
    up = ev.decide(facts(rank=5, current_tier="Fedaykin"), NOW)
    assert (up.tier, up.change) == ("Naib", "promoted")
    first = ev.decide(facts(rank=9, current_tier="Naib"), NOW)
    assert (first.tier, first.change, first.demotion_pending_since) == ("Naib", "grace", NOW)
    later = NOW + timedelta(hours=23, minutes=59)
    still = ev.decide(facts(rank=9, current_tier="Naib", demotion_pending_since=NOW), later)
    assert (still.tier, still.change) == ("Naib", "grace")
    done = ev.decide(facts(rank=9, current_tier="Naib", demotion_pending_since=NOW), NOW + timedelta(hours=24))
    assert (done.tier, done.change, done.demotion_pending_since) == ("Fedaykin", "demoted", None)
    back = ev.decide(facts(rank=3, current_tier="Naib", demotion_pending_since=NOW), later)
    assert (back.tier, back.change, back.demotion_pending_since) == ("Naib", "unchanged", None)


def test_basic_has_no_grace_and_members_can_leave():
    ev = TierEvaluator(THEMES["basic"])
    d = ev.decide(facts(rank=11, current_tier="Gold"), NOW)
    assert (d.tier, d.change) == ("Silver", "demoted")
    d = ev.decide(facts(rank=101, current_tier="Bronze"), NOW)
    assert (d.tier, d.change) == (None, "left")
    d = ev.decide(facts(rank=100, current_tier=None), NOW)
    assert (d.tier, d.change) == ("Bronze", "joined")


def earned(theme: str, **kw) -> frozenset:
    return ThemeEvaluator(get_theme(theme)).evaluate(facts(**kw), NOW).earned


@pytest.mark.parametrize("days, expected", [(29, set()), (30, {"early_adopter"}), (89, {"early_adopter"}),
                                            (90, {"early_adopter", "veteran"})])
def test_basic_tenure_badges(days, expected):
    got = earned("basic", joined_at=NOW - timedelta(days=days), rank=500)
    assert got & {"early_adopter", "veteran"} == expected


@pytest.mark.parametrize("days, expected", [(89, set()), (90, {"sietch_veteran"}), (179, {"sietch_veteran"}),
                                            (180, {"sietch_veteran", "og"}), (364, {"sietch_veteran", "og"}),
                                            (365, {"sietch_veteran", "og", "elder"})])
def test_sietch_tenure_badges(days, expected):
    got = earned("sietch", joined_at=NOW - timedelta(days=days))
    assert got & {"sietch_veteran", "og", "elder"} == expected


def test_tenure_one_second_short_is_not_enough():
    got = earned("sietch", joined_at=NOW - timedelta(days=90) + timedelta(seconds=1))
    assert "sietch_veteran" not in got


@pytest.mark.parametrize("activity, expected", [(49, set()), (50, {"desert_active"}), (199, {"desert_active"}),
                                                (200, {"desert_active", "sietch_engaged"})])
def test_activity_badges(activity, expected):
    assert earned("sietch", activity=Decimal(activity)) & {"desert_active", "sietch_engaged"} == expected


@pytest.mark.parametrize("activity, expected", [(Decimal("49.99"), set()), (Decimal(50), {"active"})])
def test_basic_active_badge(activity, expected):
    assert earned("basic", activity=activity) & {"active"} == expected


@pytest.mark.parametrize("conviction, has", [(Decimal("9999.99"), False), (Decimal(10000), True)])
def test_first_maker(conviction, has):
    assert ("first_maker" in earned("sietch", conviction=conviction)) is has


@pytest.mark.parametrize("rank, highest, expected", [
    (8, None, {"fedaykin_initiated", "usul_ascended"}),  # "that tier or higher"
    (70, None, {"usul_ascended"}),
    (101, None, set()),
    (1, None, {"naib_ascended", "fedaykin_initiated", "usul_ascended"}),
    (500, "Naib", {"naib_ascended", "fedaykin_initiated", "usul_ascended"}),  # reached before, counts
    (500, "Usul", {"usul_ascended"}),
])
def test_tier_reached_current_or_highest(rank, highest, expected):
    got = earned("sietch", rank=rank, current_tier=None, highest_tier=highest)
    assert got & {"naib_ascended", "fedaykin_initiated", "usul_ascended"} == expected


def test_basic_top_tier_through_highest():
    assert "top_tier" in earned("basic", rank=40, current_tier="Silver", highest_tier="Gold")
    assert "top_tier" not in earned("basic", rank=40, current_tier="Silver", highest_tier="Silver")


def test_former_naib_after_grace_only():
    ev = ThemeEvaluator(THEMES["sietch"])
    during = ev.evaluate(facts(rank=20, current_tier="Naib", highest_tier="Naib"), NOW)
    assert during.tier.change == "grace" and "former_naib" not in during.earned
    after = ev.evaluate(facts(rank=20, current_tier="Naib", highest_tier="Naib", demotion_pending_since=NOW),
                        NOW + timedelta(days=2))
    assert after.tier.tier == "Fedaykin" and "former_naib" in after.earned


def test_founding_naib_is_a_custom_evaluator():
    assert "founding_naib" in earned("sietch", rank=3, metadata={"top_tier_seat": 7})
    assert "founding_naib" not in earned("sietch", rank=3, metadata={"top_tier_seat": 8})
    ev = ThemeEvaluator(THEMES["sietch"], custom={"founding_naib": lambda f, t, h, now: True})
    assert "founding_naib" in ev.evaluate(facts(rank=900), NOW).earned


def test_revocable_badges_are_revoked_and_others_kept():
    ev = ThemeEvaluator(THEMES["sietch"])
    held = frozenset({"desert_active", "sietch_engaged", "og", "water_sharer"})
    r = ev.evaluate(facts(activity=Decimal(60), held_badges=held), NOW)
    assert r.revoked == {"sietch_engaged"}  # og is permanent, water_sharer is manual
    assert "desert_active" not in r.earned  # already held


def test_unknown_member_changes_nothing():
    ev = ThemeEvaluator(THEMES["sietch"])
    r = ev.evaluate(facts(rank=900, current_tier="Naib", unknown=True, held_badges=frozenset({"desert_active"})), NOW)
    assert r.tier.tier == "Naib" and r.tier.change == "unknown"
    assert r.earned == frozenset() and r.revoked == frozenset()


def test_highest_tier_follows_promotions():
    ev = ThemeEvaluator(THEMES["sietch"])
    assert ev.evaluate(facts(rank=2, current_tier="Usul", highest_tier="Usul"), NOW).highest_tier == "Naib"
    assert ev.evaluate(facts(rank=900, current_tier=None, highest_tier="Naib"), NOW).highest_tier == "Naib"
