//! Moving one member from its current assignment towards its target (Kafka's
//! `CurrentAssignmentBuilder`), without a group-wide barrier.
//!
//! A member first gives up what its target no longer holds (state UnrevokedPartitions: it
//! keeps its epoch and is told its assignment without those partitions; it acknowledges by
//! heartbeating owned partitions that no longer include them). Only then does it move to the
//! target epoch and receive new partitions, and only those no other member still owns
//! (UnreleasedPartitions until they are released). So a partition is never owned by two
//! members at once, and partitions that stay with a member are never revoked from it.

use std::collections::HashMap;

use uuid::Uuid;

use super::{Assignment, MemberState};

/// Where a member's reconciliation got to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconciled {
    /// Its state.
    pub state: MemberState,
    /// Its epoch: the target epoch once it has revoked what it must.
    pub member_epoch: i32,
    /// What it may own now.
    pub assigned: Assignment,
    /// What it must give up before anything new is given to it.
    pub pending_revocation: Assignment,
}

/// The member's next step from `current` towards `target` at `target_epoch`. `owners` maps
/// every partition owned (assigned or pending revocation) by a member other than this one;
/// `owned` is what the member reported owning in this heartbeat, if it reported it.
pub fn next(
    current: &Reconciled,
    target_epoch: i32,
    target: &Assignment,
    owned: Option<&Assignment>,
    owners: &HashMap<(Uuid, i32), String>,
) -> Reconciled {
    let unchanged = current.clone();
    let Reconciled {
        state,
        member_epoch,
        assigned,
        pending_revocation,
    } = current;
    let (state, member_epoch) = (*state, *member_epoch);
    match state {
        MemberState::Stable if member_epoch == target_epoch => unchanged,
        MemberState::UnrevokedPartitions => {
            // Waits for the member to report it no longer owns what it must give up.
            let revoked = owned.is_some_and(|o| !intersects(o, pending_revocation));
            if revoked {
                compute(member_epoch, assigned, target_epoch, target, owned, owners)
            } else {
                unchanged
            }
        }
        // Stable at an older epoch, or waiting for partitions others still own.
        _ => compute(member_epoch, assigned, target_epoch, target, owned, owners),
    }
}

fn compute(
    member_epoch: i32,
    assigned: &Assignment,
    target_epoch: i32,
    target: &Assignment,
    owned: Option<&Assignment>,
    owners: &HashMap<(Uuid, i32), String>,
) -> Reconciled {
    let mut keep = Assignment::new();
    let mut revoke = Assignment::new();
    for (t, ps) in assigned {
        for p in ps {
            let dest = if target.get(t).is_some_and(|tp| tp.contains(p)) {
                &mut keep
            } else {
                &mut revoke
            };
            dest.entry(*t).or_default().insert(*p);
        }
    }
    if !revoke.is_empty() {
        // The member may have revoked them already (it reports what it owns).
        let already = owned.is_some_and(|o| !intersects(o, &revoke));
        if !already {
            return Reconciled {
                state: MemberState::UnrevokedPartitions,
                // The epoch stays until the member acknowledges the revocation.
                member_epoch,
                assigned: keep,
                pending_revocation: revoke,
            };
        }
    }
    let mut unreleased = false;
    let mut next = keep;
    for (t, ps) in target {
        for p in ps {
            if next.get(t).is_some_and(|k| k.contains(p)) {
                continue;
            }
            if owners.contains_key(&(*t, *p)) {
                unreleased = true;
            } else {
                next.entry(*t).or_default().insert(*p);
            }
        }
    }
    Reconciled {
        state: if unreleased {
            MemberState::UnreleasedPartitions
        } else {
            MemberState::Stable
        },
        member_epoch: target_epoch,
        assigned: next,
        pending_revocation: Assignment::new(),
    }
}

fn intersects(a: &Assignment, b: &Assignment) -> bool {
    a.iter()
        .any(|(t, ps)| b.get(t).is_some_and(|bs| !ps.is_disjoint(bs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cur(
        state: MemberState,
        epoch: i32,
        assigned: Assignment,
        pending: Assignment,
    ) -> Reconciled {
        Reconciled {
            state,
            member_epoch: epoch,
            assigned,
            pending_revocation: pending,
        }
    }

    fn a(t: Uuid, ps: &[i32]) -> Assignment {
        [(t, ps.iter().copied().collect())].into()
    }

    #[test]
    fn revocation_comes_first_and_keeps_the_epoch() {
        let t = Uuid::new_v4();
        let r = next(
            &cur(MemberState::Stable, 3, a(t, &[0, 1, 2]), Assignment::new()),
            4,
            &a(t, &[0, 1]),
            Some(&a(t, &[0, 1, 2])),
            &HashMap::new(),
        );
        assert_eq!(r.state, MemberState::UnrevokedPartitions);
        assert_eq!(
            r.member_epoch, 3,
            "the epoch stays until the revocation is acknowledged"
        );
        assert_eq!(r.assigned, a(t, &[0, 1]));
        assert_eq!(r.pending_revocation, a(t, &[2]));
        // Acknowledged: it reports owning 0 and 1 only.
        let r2 = next(&r, 4, &a(t, &[0, 1]), Some(&a(t, &[0, 1])), &HashMap::new());
        assert_eq!(r2.state, MemberState::Stable);
        assert_eq!(r2.member_epoch, 4);
        assert_eq!(r2.assigned, a(t, &[0, 1]));
    }

    #[test]
    fn partitions_another_member_owns_wait() {
        let t = Uuid::new_v4();
        let owners: HashMap<(Uuid, i32), String> = [((t, 2), "other".to_string())].into();
        let r = next(
            &cur(MemberState::Stable, 0, Assignment::new(), Assignment::new()),
            5,
            &a(t, &[1, 2]),
            Some(&Assignment::new()),
            &owners,
        );
        assert_eq!(r.state, MemberState::UnreleasedPartitions);
        assert_eq!(r.member_epoch, 5);
        assert_eq!(r.assigned, a(t, &[1]));
        let r2 = next(&r, 5, &a(t, &[1, 2]), None, &HashMap::new());
        assert_eq!(r2.state, MemberState::Stable);
        assert_eq!(r2.assigned, a(t, &[1, 2]));
    }
}
