"""What each database constraint means, in words a user can act on.

When PostgreSQL refuses a row, :func:`translate_db_error` (``database.py``) looks the
constraint's name up here and raises one of our errors with this sentence and the field it is
about; the database's own text (table and constraint names) never reaches a user.
``tests/e2e/test_constraint_words.py`` walks the constraint list in the database catalog
and fails if one is missing here: a migration that adds a CHECK, UNIQUE, primary or foreign key
(or a unique index) adds its sentence too.

Each entry: constraint (or unique index) name -> (field, sentence). For a foreign key the
sentence says what does not exist; a delete that a foreign key blocks says the field is still in
use.
"""

from __future__ import annotations

CONSTRAINTS: dict[str, tuple[str, str]] = {
    # communities
    "communities_pkey": ("id", "a community with this id already exists"),
    "communities_guild_id_key": ("guild_id", "this Discord server already has a community"),
    "communities_guild_id_check": ("guild_id", "the guild id must be the server id as Discord shows it"),
    "communities_name_check": ("name", "the community name must be 1 to 100 characters"),
    "communities_subscription_tier_check": ("subscription", "the subscription must be free, premium or enterprise"),
    # profiles (members)
    "profiles_pkey": ("id", "this member already exists"),
    "profiles_community_id_discord_id_key": ("discord_id", "this Discord user is already a member of the community"),
    "profiles_community_id_id_key": ("id", "this member already exists in the community"),
    "profiles_community_id_fkey": ("community", "the community does not exist"),
    "profiles_discord_id_check": ("discord_id", "a Discord user id is up to 20 digits"),
    "profiles_rank_check": ("rank", "a rank is a whole number from 1 up"),
    "profiles_wallet_address_check": ("wallet_address", "a wallet address is 0x followed by 40 hex digits"),
    # badges and tier history
    "badges_pkey": ("id", "this badge award already exists"),
    "badges_one_active": ("badge", "the member already holds this badge"),
    "badges_badge_type_check": ("badge", "a badge id is lower-case letters, digits and _ (up to 64)"),
    "badges_check": ("awarded_by", "a member cannot award a badge to themself"),
    "badges_community_id_fkey": ("community", "the community does not exist"),
    "badges_community_id_profile_id_fkey": ("member", "the member does not exist in this community"),
    "badges_community_id_awarded_by_fkey": ("awarded_by", "whoever awards the badge must be a member of this "
                                                          "community"),
    "tier_history_pkey": ("id", "this tier change is already recorded"),
    "tier_history_community_id_fkey": ("community", "the community does not exist"),
    "tier_history_community_id_profile_id_fkey": ("member", "the member does not exist in this community"),
    # wallets
    "wallet_links_pkey": ("id", "this wallet link already exists"),
    "wallet_links_community_id_wallet_address_key": ("wallet_address", "this wallet is already linked to a member "
                                                                       "of the community"),
    "wallet_links_wallet_address_check": ("wallet_address", "a wallet address is 0x followed by 40 hex digits"),
    "wallet_links_source_check": ("source", "a wallet link comes from siwe, import or legacy"),
    "wallet_links_community_id_fkey": ("community", "the community does not exist"),
    "wallet_links_community_id_profile_id_fkey": ("member", "the member does not exist in this community"),
    # assets and holdings
    "community_assets_pkey": ("asset", "this asset is already configured for the community"),
    "community_assets_min_amount_check": ("min_amount", "the minimum amount must be 0 or more"),
    "community_assets_purpose_check": ("purpose", "an asset's purpose is rank or gate"),
    "community_assets_community_id_fkey": ("community", "the community does not exist"),
    "asset_holdings_pkey": ("address", "this holding is already recorded"),
    "asset_holdings_address_check": ("address", "a holder address is 0x followed by 40 hex digits"),
    "asset_holdings_community_id_fkey": ("community", "the community does not exist"),
    "asset_index_state_pkey": ("asset", "this asset's index is already recorded"),
    "asset_index_state_last_block_check": ("last_block", "an indexed block number cannot be below -1"),
    "asset_index_state_page_size_check": ("page_size", "an index page holds at least one block"),
    "asset_index_state_community_id_fkey": ("community", "the community does not exist"),
    # the holdings history that held_for reads (0059)
    "community_assets_history_days_check": ("days", "a held_for period is 1 to 3650 days"),
    "asset_holding_changes_pkey": ("block", "this balance change of this block is already recorded"),
    "asset_holding_changes_address_check": ("address", "a holder address is 0x followed by 40 hex digits"),
    "asset_holding_changes_block_check": ("block", "a block number is 0 or more"),
    "asset_holding_changes_community_id_fkey": ("community", "the community does not exist"),
    "chain_watch_pkey": ("chain", "this chain's watcher position is already recorded"),
    "chain_watch_last_block_check": ("last_block", "a block number cannot be negative"),
    "chain_watch_blocks_pkey": ("block", "this block is already remembered"),
    "chain_watch_blocks_hash_check": ("hash", "a block hash is 0x followed by 64 hex digits"),
    "chain_watch_deltas_address_check": ("address", "a holder address is 0x followed by 40 hex digits"),
    "chain_watch_deltas_community_id_fkey": ("community", "the community does not exist"),
    # legacy imports
    "legacy_imports_pkey": ("id", "this import is already recorded"),
    "legacy_imports_source_checksum_check": ("checksum", "a source checksum is 64 hex digits (SHA-256)"),
    "legacy_imports_community_id_fkey": ("community", "the community does not exist"),
    # manifests, shadow state, Discord roles
    "manifests_pkey": ("id", "this manifest already exists"),
    "manifests_community_id_version_key": ("version", "this manifest version already exists (another publish got "
                                                      "there first; try again)"),
    "manifests_checksum_check": ("checksum", "a manifest checksum is 64 hex digits (SHA-256)"),
    "manifests_version_check": ("version", "a manifest version is a whole number from 1 up"),
    "manifests_community_id_fkey": ("community", "the community does not exist"),
    "manifest_outbox_pkey": ("id", "this manifest is already waiting to be sent"),
    "manifest_outbox_checksum_check": ("checksum", "a manifest checksum is 64 hex digits (SHA-256)"),
    "manifest_outbox_community_id_fkey": ("community", "the community does not exist"),
    "shadow_states_pkey": ("id", "this shadow state already exists"),
    "shadow_states_one_per_version": ("version", "this manifest version already has a shadow state"),
    "shadow_states_checksum_check": ("checksum", "a shadow checksum is 64 hex digits (SHA-256)"),
    "shadow_states_status_check": ("status", "a shadow state is pending, applying, applied, partial or failed"),
    "shadow_states_community_id_fkey": ("community", "the community does not exist"),
    "shadow_states_community_id_manifest_version_fkey": ("version", "the manifest version does not exist"),
    "discord_member_roles_pkey": ("discord_id", "this member's roles are already recorded"),
    "discord_member_roles_discord_id_check": ("discord_id", "a Discord user id is up to 20 digits"),
    "discord_member_roles_community_id_fkey": ("community", "the community does not exist"),
    "member_role_decisions_pkey": ("discord_id", "this member's role decision is already recorded"),
    "member_role_decisions_discord_id_check": ("discord_id", "a Discord user id is up to 20 digits"),
    "member_role_decisions_seq_check": ("seq", "a decision number is 1 or more"),
    "member_role_decisions_community_id_fkey": ("community", "the community does not exist"),
    # audit
    "audit_log_pkey": ("id", "this audit entry already exists"),
    "audit_log_chain": ("seq", "another audit entry took this place in the community's chain; try again"),
    "audit_log_platform_chain": ("seq", "another audit entry took this place in the platform's chain; try again"),
    "audit_log_action_check": ("action", "an audit action is 1 to 100 characters"),
    "audit_log_actor_check": ("actor", "who acted must be 1 to 200 characters"),
    "audit_log_community_id_fkey": ("community", "the community does not exist"),
    "audit_checkpoints_pkey": ("id", "this audit checkpoint already exists"),
    "audit_heads_pkey": ("chain", "this audit chain's head is already recorded"),
    # operators
    "operators_pkey": ("name", "an operator with this name already exists"),
    "operators_name_check": ("name", "an operator name is 2 to 40 of a-z, 0-9, '.', '_' and '-', starting with a "
                                     "letter or digit"),
    "operators_roles_check": ("role", "an operator's roles are platform_admin, approver or auditor"),
    "operators_discord_user_id_check": ("discord", "a Discord user id is 17 to 20 digits"),
    "operators_discord_user": ("discord", "this Discord account is already linked to another operator"),
    "operators_slack_user_id_check": ("slack", "a Slack user id starts with U or W, then 2 to 20 capitals or "
                                               "digits"),
    "operator_backup_codes_pkey": ("code", "this backup code already exists"),
    "operator_backup_codes_operator_fkey": ("name", "the operator does not exist"),
    # approvals
    "approval_requests_pkey": ("id", "this approval request already exists"),
    "approval_requests_check": ("status", "a pending request has no decision time, a decided one has"),
    "approval_requests_check1": ("as", "whoever asked for a change may not decide on it"),
    "approval_requests_decision_check": ("decision", "the gate's decision is approve or review"),
    "approval_requests_kind_check": ("kind", "an approval is for a Terraform plan or a member role strip"),
    "approval_requests_risk_level_check": ("risk_level", "a risk level is low, medium, high or critical"),
    "approval_requests_risk_score_check": ("risk_score", "a risk score is 0 to 100"),
    "approval_requests_scope": ("kind", "a role strip needs a community, a plan its checksum"),
    "approval_requests_status_check": ("status", "an approval is pending, approved, rejected, expired or cancelled"),
    "approval_requests_community_id_fkey": ("community", "the community does not exist"),
    "pending_approvals_pkey": ("id", "this approval already exists"),
    "pending_approvals_status_check": ("status", "an approval is pending, approved, rejected or expired"),
    "pending_approvals_community_id_fkey": ("community", "the community does not exist"),
    # freezes (the kill switch's and the console pause's holds)
    "freezes_pkey": ("scope", "this scope is already held by the same switch"),
    "freezes_scope_check": ("scope", "a freeze's scope is global, community or user"),
    "freezes_source_check": ("source", "a freeze comes from the kill switch or the console's pause"),
    "freezes_reason_check": ("reason", "the reason must be 1 to 400 characters"),
    "freezes_held_by_check": ("as", "who holds the freeze must be 1 to 200 characters"),
    "freeze_generation_pkey": ("generation", "the freeze generation is already recorded"),
    "freeze_generation_one_check": ("generation", "there is one freeze generation row"),
    # migrations
    "schema_migrations_pkey": ("version", "this migration is already recorded as applied"),
    # one identity per actor, and who may decide (0025)
    "approval_requests_requested_by_canonical": ("as", "whoever asks is an operator's name, a Discord user or the "
                                                       "system"),
    "approval_requests_decided_by_operator": ("as", "only an operator may decide on a request"),
    "operators_slack_user": ("slack", "this Slack account is already linked to another operator"),
    "operator_enrolment_tokens_pkey": ("operator", "this operator already has an enrolment token waiting"),
    "operator_enrolment_tokens_operator_fkey": ("operator", "the operator does not exist"),
    "operator_mfa_failures_operator_fkey": ("operator", "the operator does not exist"),
    # gating rules and allowlists (0055)
    "gate_rules_pkey": ("tier", "this community already has a rule for this tier"),
    "gate_rules_community_id_fkey": ("community", "the community does not exist"),
    "gate_rules_tier_check": ("tier", "a tier name is up to 100 characters"),
    "gate_rules_checksum_check": ("rule", "a rule's checksum is 64 hex digits"),
    "allowlists_pkey": ("name", "this community already has an allowlist of this name"),
    "allowlists_community_id_fkey": ("community", "the community does not exist"),
    "allowlists_name_check": ("name", "an allowlist name is lower-case letters, digits, _ and - (up to 63)"),
    "allowlists_size_check": ("file", "an allowlist holds at most 100,000 addresses"),
    "allowlist_entries_pkey": ("address", "this address is already on the allowlist"),
    "allowlist_entries_address_check": ("address", "a wallet address is 0x followed by 40 hex digits"),
    "allowlist_entries_community_id_name_fkey": ("name", "the allowlist does not exist"),
    "gate_snapshot_balances_pkey": ("snapshot", "this balance at this block is already kept"),
    "gate_snapshot_balances_community_id_fkey": ("community", "the community does not exist"),
    "gate_snapshot_balances_address_check": ("address", "a wallet address is 0x followed by 40 hex digits"),
    "gate_snapshot_balances_block_check": ("block", "a block number is 0 or more"),
    "gate_snapshot_balances_balance_check": ("balance", "a balance is 0 or more"),
    "operator_grants_pkey": ("grant", "this grant already exists"),
    "operator_grants_operator_fkey": ("name", "there is no such operator"),
    "operator_grants_decided_by_fkey": ("as", "only an operator may confirm or refuse a grant"),
    "operator_grants_role_check": ("role", "only approver and platform_admin are granted through a grant"),
    "operator_grants_status_check": ("grant", "a grant is pending, confirmed, refused, expired, sole_admin or first"),
    "operator_grants_two_people": ("as", "a grant is confirmed by a platform admin other than whoever asked for it "
                                         "and other than the operator who receives it"),
}


# Refusals a trigger raises under a constraint name of its own (sql/0025): not in the catalog,
# so kept apart from the walk in tests/e2e/test_constraint_words.py.
TRIGGER_CONSTRAINTS: dict[str, tuple[str, str]] = {
    "approval_requests_not_by_requester": ("as", "whoever asked for a change may not decide on it"),
    "approval_requests_cancel_by_requester": ("as", "only whoever asked for a change may cancel it"),
    "operators_roles_by_grant": ("role", "approver and platform_admin are given only through a grant that a second "
                                         "platform admin confirmed (arrakis operators grant / confirm)"),
}


def words_for(constraint: str | None) -> tuple[str, str] | None:
    """(field, sentence) for a constraint or unique index name, or None if it has none."""
    return CONSTRAINTS.get(constraint or "") or TRIGGER_CONSTRAINTS.get(constraint or "")
