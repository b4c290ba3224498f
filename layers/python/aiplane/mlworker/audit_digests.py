"""The mlworker audit log checked and anchored: `verify` and `chain-root` (admin routes) and the
audit-digests schedule. Apart from `audit`, which every mlworker route appends through and which
needs neither the signing key nor the digest bucket."""

from __future__ import annotations

from typing import Any

from aiplane import audit_anchor
from aiplane.clock import now_iso
from aiplane.mlworker import audit
from aiplane.mlworker.audit import Actor, append_event
from aiplane.mlworker.common import without_none


def verify_chain(actor: Actor) -> dict[str, Any]:
    """Check every event against its links, the heads and every signed digest; report the first
    sequence that does not hold. The verification itself is then recorded (`audit_verified`)."""
    checked = audit_anchor.verify(audit.CHAIN)
    newest = checked.newest_digest
    result = {
        "valid": checked.valid,
        "total_events": checked.total_events,
        "first_tampered": checked.first_tampered,
        "chain_root_hash": checked.root_hash,
        "verified_at": now_iso(),
        # Beyond VerificationResult: what the events were checked against.
        "anchored_sequence": newest.digest["sequence_num"] if newest else 0,
        "anchored_at": newest.digest["digest_time"] if newest else None,
        "digests_checked": checked.digests_checked,
        "problem": checked.problem,
    }
    append_event(
        "audit_verified",
        actor,
        resource="audit/chain",
        action="verify",
        success=checked.valid,
        metadata={"total_events": checked.total_events, "first_tampered": checked.first_tampered},
    )
    return without_none(result)


def anchor() -> dict[str, Any]:
    """Sign the current heads into a new digest (on demand and on the audit-digests schedule)."""
    return audit_anchor.signed_head(audit_anchor.anchor(audit.CHAIN))


def chain_root() -> dict[str, Any]:
    """The signed head: the heads are anchored now and the signed digest is returned."""
    return anchor()
