//! The server-side assignors of KIP-848 (`group.consumer.assignors`): `uniform` and `range`.
//!
//! Both are pure functions from the members' subscriptions, the subscribed topics' partition
//! counts and the previous target assignment to the next one. `uniform` is sticky: a member
//! keeps what it had as long as it still subscribes to it and keeping it does not unbalance
//! the group, so a scale-out moves only the partitions the new members need (what makes the
//! protocol incremental). `range` gives each member a contiguous range of every topic it
//! subscribes to, so co-partitioned topics land together, as the classic range assignor does.
//!
//! Cost is O(partitions × log members) for `uniform`'s placement plus a balancing pass bounded
//! by [`MAX_BALANCE_MOVES_PER_PARTITION`] moves per partition; no input sizes an allocation
//! beyond the partitions and members it names.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::Assignment;

/// What an assignor knows of one member.
#[derive(Debug, Clone, Default)]
pub struct MemberSpec {
    /// The topics (by id) the member subscribes to, after regex resolution.
    pub topics: BTreeSet<Uuid>,
}

/// An assignor's input.
pub struct AssignInput<'a> {
    /// Members by id (ordered, so every run is deterministic).
    pub members: &'a BTreeMap<String, MemberSpec>,
    /// Partition counts of the subscribed topics.
    pub partitions: &'a BTreeMap<Uuid, i32>,
    /// The previous target assignment, for stickiness.
    pub previous: &'a BTreeMap<String, Assignment>,
}

/// The assignors Rill implements, by Kafka's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assignor {
    /// Balanced and sticky (Kafka's `UniformAssignor`).
    Uniform,
    /// Ranges per topic (Kafka's server-side `RangeAssignor`).
    Range,
}

impl Assignor {
    /// By name (`uniform`, `range`, or Kafka's class names for them).
    pub fn parse(name: &str) -> Option<Assignor> {
        match name.trim() {
            "uniform" | "org.apache.kafka.coordinator.group.assignor.UniformAssignor" => {
                Some(Assignor::Uniform)
            }
            "range" | "org.apache.kafka.coordinator.group.assignor.RangeAssignor" => {
                Some(Assignor::Range)
            }
            _ => None,
        }
    }

    /// The name clients use in `group.remote.assignor` and DescribeGroups shows.
    pub fn name(self) -> &'static str {
        match self {
            Assignor::Uniform => "uniform",
            Assignor::Range => "range",
        }
    }

    /// Computes the target assignment: every member gets an entry, possibly empty.
    pub fn assign(self, input: &AssignInput<'_>) -> BTreeMap<String, Assignment> {
        let out = match self {
            Assignor::Uniform => uniform(input),
            Assignor::Range => range(input),
        };
        debug_assert!(each_partition_once(&out));
        out
    }
}

/// Moves the balancing pass may make per partition: it stops well before this on any real
/// input (each move strictly lowers the spread), the bound only keeps a pathological one
/// from looping long.
pub const MAX_BALANCE_MOVES_PER_PARTITION: usize = 4;

fn each_partition_once(out: &BTreeMap<String, Assignment>) -> bool {
    let mut seen = BTreeSet::new();
    out.values()
        .flat_map(|a| {
            a.iter()
                .flat_map(|(t, ps)| ps.iter().map(move |p| (*t, *p)))
        })
        .all(|tp| seen.insert(tp))
}

fn add(a: &mut Assignment, topic: Uuid, partition: i32) {
    a.entry(topic).or_default().insert(partition);
}

fn remove(a: &mut Assignment, topic: Uuid, partition: i32) {
    if let Some(ps) = a.get_mut(&topic) {
        ps.remove(&partition);
        if ps.is_empty() {
            a.remove(&topic);
        }
    }
}

/// Balanced and sticky. Each member's fair share is what an even split of the partitions it
/// may take would give it; a member first keeps its previous partitions up to that share, the
/// rest go, topic by topic (the topics with the fewest subscribers first), to the eligible
/// member holding the fewest, and a final pass moves partitions along chains of members from
/// the fullest to emptier ones until the spread is at most one or no chain narrows it.
///
/// Loads are tracked as partitions move, so placement is O(partitions × log subscribers); the
/// balancing pass only runs while some member holds two more than another.
fn uniform(input: &AssignInput<'_>) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = input
        .members
        .keys()
        .map(|m| (m.clone(), Assignment::new()))
        .collect();
    if input.members.is_empty() {
        return out;
    }
    let mut load: BTreeMap<&String, usize> = input.members.keys().map(|m| (m, 0)).collect();
    // Subscribers of each topic.
    let mut subscribers: BTreeMap<Uuid, Vec<&String>> = BTreeMap::new();
    for (m, spec) in input.members {
        for t in &spec.topics {
            if input.partitions.contains_key(t) {
                subscribers.entry(*t).or_default().push(m);
            }
        }
    }
    // A member's share: the partitions of its topics, each divided among its subscribers.
    let share: BTreeMap<&String, usize> = input
        .members
        .iter()
        .map(|(m, spec)| {
            let s: f64 = spec
                .topics
                .iter()
                .filter_map(|t| input.partitions.get(t).map(|n| (t, n)))
                .map(|(t, n)| *n as f64 / subscribers.get(t).map_or(1, |v| v.len()).max(1) as f64)
                .sum();
            (m, s.ceil() as usize)
        })
        .collect();
    // 1. Stickiness: keep previous partitions still subscribed and existing, up to the share.
    let mut taken: BTreeSet<(Uuid, i32)> = BTreeSet::new();
    for (m, prev) in input.previous {
        let (Some(spec), Some((m, l))) = (input.members.get(m), load.get_key_value(m)) else {
            continue;
        };
        let (m, mut held) = (*m, *l);
        let cap = share.get(m).copied().unwrap_or(0);
        let mine = out.entry(m.clone()).or_default();
        for (t, ps) in prev {
            let Some(&n) = input.partitions.get(t) else {
                continue;
            };
            if !spec.topics.contains(t) {
                continue;
            }
            for &p in ps {
                if held >= cap {
                    break;
                }
                if p < n && taken.insert((*t, p)) {
                    add(mine, *t, p);
                    held += 1;
                }
            }
        }
        load.insert(m, held);
    }
    // 2. The rest, most constrained topics first, each partition to the eligible member
    //    holding the fewest (a heap per topic, loads kept current).
    let mut order: Vec<(&Uuid, &Vec<&String>)> = subscribers.iter().collect();
    order.sort_by_key(|(t, members)| (members.len(), **t));
    for (t, members) in order {
        let n = input.partitions.get(t).copied().unwrap_or(0);
        let mut heap: std::collections::BinaryHeap<std::cmp::Reverse<(usize, &String)>> = members
            .iter()
            .map(|m| std::cmp::Reverse((load.get(*m).copied().unwrap_or(0), *m)))
            .collect();
        for p in 0..n {
            if taken.contains(&(*t, p)) {
                continue;
            }
            let Some(std::cmp::Reverse((l, m))) = heap.pop() else {
                break;
            };
            taken.insert((*t, p));
            add(out.entry(m.clone()).or_default(), *t, p);
            load.insert(m, l + 1);
            heap.push(std::cmp::Reverse((l + 1, m)));
        }
    }
    // 3. Balance along chains of members (each on the chain gives one partition and takes
    //    one, so only the ends change), while the spread allows one.
    let total: usize = taken.len();
    let mut budget = total.saturating_mul(MAX_BALANCE_MOVES_PER_PARTITION);
    while budget > 0 {
        budget -= 1;
        let Some(path) = balancing_path(&out, input.members, &load) else {
            break;
        };
        if let (Some(first), Some(last)) = (path.first(), path.last()) {
            if let Some(l) = load.get_mut(&first.0) {
                *l -= 1;
            }
            if let Some(l) = load.get_mut(&last.1) {
                *l += 1;
            }
        }
        for (from, to, t, p) in path {
            if let Some(a) = out.get_mut(&from) {
                remove(a, t, p);
            }
            add(out.entry(to).or_default(), t, p);
        }
    }
    out
}

/// A chain of moves that narrows the spread: from a member holding at least two more than the
/// emptiest, through members that may take a partition of the previous one (a breadth-first
/// search), to one holding at least two fewer than where it started. None when the spread is
/// at most one. O(members² × topics) per search, only while the group is unbalanced.
fn balancing_path(
    out: &BTreeMap<String, Assignment>,
    members: &BTreeMap<String, MemberSpec>,
    load: &BTreeMap<&String, usize>,
) -> Option<Vec<(String, String, Uuid, i32)>> {
    let min = load.values().copied().min()?;
    let mut starts: Vec<(&String, usize)> = load
        .iter()
        .filter(|(_, l)| **l >= min + 2)
        .map(|(m, l)| (*m, *l))
        .collect();
    starts.sort_by_key(|(m, l)| (std::cmp::Reverse(*l), *m));
    for (start, start_load) in starts {
        let mut prev: BTreeMap<&String, (&String, Uuid, i32)> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        while let Some(u) = queue.pop_front() {
            let held = out.get(u)?;
            for (v, spec) in members {
                if v == start || prev.contains_key(v) {
                    continue;
                }
                let Some((t, p)) = held
                    .iter()
                    .find(|(t, ps)| spec.topics.contains(t) && !ps.is_empty())
                    .and_then(|(t, ps)| ps.iter().next_back().map(|p| (*t, *p)))
                else {
                    continue;
                };
                prev.insert(v, (u, t, p));
                if load.get(v).copied().unwrap_or(0) + 2 <= start_load {
                    let mut path = Vec::new();
                    let mut at = v;
                    while let Some((from, t, p)) = prev.get(at) {
                        path.push(((*from).clone(), at.clone(), *t, *p));
                        if *from == start {
                            break;
                        }
                        at = from;
                    }
                    path.reverse();
                    return Some(path);
                }
                queue.push_back(v);
            }
        }
    }
    None
}

/// Per topic, its subscribers in member-id order get contiguous ranges; the first
/// `partitions % subscribers` get one more.
fn range(input: &AssignInput<'_>) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = input
        .members
        .keys()
        .map(|m| (m.clone(), Assignment::new()))
        .collect();
    for (t, &n) in input.partitions {
        let subs: Vec<&String> = input
            .members
            .iter()
            .filter(|(_, s)| s.topics.contains(t))
            .map(|(m, _)| m)
            .collect();
        if subs.is_empty() || n <= 0 {
            continue;
        }
        let per = n as usize / subs.len();
        let extra = n as usize % subs.len();
        let mut next = 0i32;
        for (i, m) in subs.iter().enumerate() {
            let k = per + usize::from(i < extra);
            let a = out.entry((*m).clone()).or_default();
            for p in next..next + k as i32 {
                add(a, *t, p);
            }
            next += k as i32;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(a: &Assignment) -> usize {
        a.values().map(|p| p.len()).sum()
    }

    fn members(specs: &[(&str, &[Uuid])]) -> BTreeMap<String, MemberSpec> {
        specs
            .iter()
            .map(|(m, ts)| {
                (
                    m.to_string(),
                    MemberSpec {
                        topics: ts.iter().copied().collect(),
                    },
                )
            })
            .collect()
    }

    fn counts(out: &BTreeMap<String, Assignment>) -> Vec<usize> {
        out.values().map(count).collect()
    }

    #[test]
    fn uniform_scale_out_moves_only_what_the_new_member_needs() {
        let t = Uuid::new_v4();
        let parts: BTreeMap<Uuid, i32> = [(t, 12)].into();
        let two = members(&[("a", &[t]), ("b", &[t])]);
        let none = BTreeMap::new();
        let first = Assignor::Uniform.assign(&AssignInput {
            members: &two,
            partitions: &parts,
            previous: &none,
        });
        assert_eq!(counts(&first), vec![6, 6]);
        let three = members(&[("a", &[t]), ("b", &[t]), ("c", &[t])]);
        let second = Assignor::Uniform.assign(&AssignInput {
            members: &three,
            partitions: &parts,
            previous: &first,
        });
        assert_eq!(counts(&second), vec![4, 4, 4]);
        // a and b only lost partitions: nothing moved between them.
        for m in ["a", "b"] {
            let before = &first[m][&t];
            let after = &second[m][&t];
            assert!(after.is_subset(before), "{m}: {after:?} ⊄ {before:?}");
        }
    }

    #[test]
    fn uniform_balances_heterogeneous_subscriptions() {
        // Both id orders: the balancing must not depend on which topic is placed first.
        for (t1, t2) in [
            (Uuid::from_u128(1), Uuid::from_u128(2)),
            (Uuid::from_u128(2), Uuid::from_u128(1)),
        ] {
            let parts: BTreeMap<Uuid, i32> = [(t1, 6), (t2, 6)].into();
            let m = members(&[("a", &[t1]), ("b", &[t1, t2]), ("c", &[t2])]);
            let none = BTreeMap::new();
            let out = Assignor::Uniform.assign(&AssignInput {
                members: &m,
                partitions: &parts,
                previous: &none,
            });
            assert_eq!(counts(&out), vec![4, 4, 4]);
            assert!(out["a"].keys().all(|t| *t == t1));
            assert!(out["c"].keys().all(|t| *t == t2));
            assert!(each_partition_once(&out));
            assert_eq!(out.values().map(count).sum::<usize>(), 12);
        }
    }

    #[test]
    fn uniform_drops_partitions_of_unsubscribed_or_shrunk_topics() {
        let (t1, t2) = (Uuid::new_v4(), Uuid::new_v4());
        let prev: BTreeMap<String, Assignment> = [(
            "a".to_string(),
            [(t1, [0, 1, 5].into()), (t2, [0].into())].into(),
        )]
        .into();
        let parts: BTreeMap<Uuid, i32> = [(t1, 2)].into();
        let m = members(&[("a", &[t1])]);
        let out = Assignor::Uniform.assign(&AssignInput {
            members: &m,
            partitions: &parts,
            previous: &prev,
        });
        assert_eq!(out["a"], [(t1, [0, 1].into())].into());
    }

    #[test]
    fn range_gives_contiguous_ranges_extra_to_the_first() {
        let t = Uuid::new_v4();
        let parts: BTreeMap<Uuid, i32> = [(t, 7)].into();
        let m = members(&[("a", &[t]), ("b", &[t]), ("c", &[t])]);
        let none = BTreeMap::new();
        let out = Assignor::Range.assign(&AssignInput {
            members: &m,
            partitions: &parts,
            previous: &none,
        });
        assert_eq!(out["a"][&t], [0, 1, 2].into());
        assert_eq!(out["b"][&t], [3, 4].into());
        assert_eq!(out["c"][&t], [5, 6].into());
    }

    #[test]
    fn names_parse_as_kafka_spells_them() {
        assert_eq!(Assignor::parse("uniform"), Some(Assignor::Uniform));
        assert_eq!(
            Assignor::parse("org.apache.kafka.coordinator.group.assignor.RangeAssignor"),
            Some(Assignor::Range)
        );
        assert_eq!(Assignor::parse("sticky"), None);
    }
}
