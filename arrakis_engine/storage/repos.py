"""Every repository of the platform, made once per engine on one database (``bootstrap``
builds it; use cases are handed it as ``repos``)."""

from __future__ import annotations

from dataclasses import dataclass

from ..ports import (
    ApprovalStore,
    AuditCheckpointStore,
    EnrolmentTokenStore,
    GrantStore,
    MfaStore,
    OperatorStore,
)
from .approvals import ApprovalRepository
from .audit_checkpoints import AuditCheckpointRepository
from .database import Database
from .operator_views import OperatorViewsRepository
from .operators import EnrolmentTokenRepository, GrantRepository, MfaRepository, OperatorRepository
from .repositories import (
    AuditLogRepository,
    BadgeRepository,
    CommunityRepository,
    ManifestRepository,
    ProfileRepository,
    ShadowStateRepository,
    TierHistoryRepository,
    WalletLinkRepository,
)


@dataclass(frozen=True)
class Repositories:
    communities: CommunityRepository
    profiles: ProfileRepository
    wallets: WalletLinkRepository
    badges: BadgeRepository
    manifests: ManifestRepository
    shadow_states: ShadowStateRepository
    tier_history: TierHistoryRepository
    audit: AuditLogRepository
    operators: OperatorStore
    mfa: MfaStore
    enrolment_tokens: EnrolmentTokenStore
    grants: GrantStore
    approvals: ApprovalStore
    audit_checkpoints: AuditCheckpointStore
    views: OperatorViewsRepository  # read models across communities (fleet, a member's communities)

    @classmethod
    def build(cls, db: Database) -> "Repositories":
        return cls(CommunityRepository(db), ProfileRepository(db), WalletLinkRepository(db), BadgeRepository(db),
                   ManifestRepository(db), ShadowStateRepository(db), TierHistoryRepository(db),
                   AuditLogRepository(db), operators=OperatorRepository(db), mfa=MfaRepository(db),
                   enrolment_tokens=EnrolmentTokenRepository(db), grants=GrantRepository(db), approvals=ApprovalRepository(db),
                   audit_checkpoints=AuditCheckpointRepository(db), views=OperatorViewsRepository(db))
