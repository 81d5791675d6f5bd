//! Placing one group of identical tasks: a tree of candidate nodes split by the placement
//! preferences (one leaf when there are none), each leaf a heap ordered by (tasks of this
//! service, tasks in total); every task walks down to the least loaded branch.

use super::{Demand, Failures, Index};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

/// Heap key: tasks of this service on the node, tasks in total, node position.
type Key = Reverse<(u32, u32, usize)>;

#[derive(Default)]
struct Branch {
    children: BTreeMap<String, usize>,
    /// Tasks of this service on the branch's candidate nodes.
    count: u64,
    alive: bool,
    heap: BinaryHeap<Key>,
}

/// Where the group's tasks went and why the rest could not be placed.
pub struct GroupOutcome {
    /// Node positions, one per placed task, in task order.
    pub nodes: Vec<usize>,
    /// Why nodes were ruled out; meaningful when fewer than asked were placed.
    pub(crate) failures: Failures,
}

fn preference_value(index: &Index, i: usize, descriptor: &str) -> String {
    let node = index.nodes[i].node;
    let lower = descriptor.to_ascii_lowercase();
    let found = if lower.starts_with("node.labels.") {
        node.spec
            .as_ref()
            .and_then(|s| s.labels.as_ref())
            .and_then(|l| l.get(&descriptor["node.labels.".len()..]))
    } else if lower.starts_with("engine.labels.") {
        node.description
            .as_ref()
            .and_then(|d| d.engine.as_ref())
            .and_then(|e| e.labels.as_ref())
            .and_then(|l| l.get(&descriptor["engine.labels.".len()..]))
    } else {
        None
    };
    found.cloned().unwrap_or_default()
}

/// Places up to `count` tasks of `demand` and records them in `index`.
pub(crate) fn place_group<'a>(
    index: &mut Index<'a>,
    demand: &Demand<'a>,
    count: usize,
) -> GroupOutcome {
    let mut failures = Failures::default();
    let mut tree: Vec<Branch> = vec![Branch {
        alive: true,
        ..Default::default()
    }];
    let empty = std::collections::HashMap::new();
    let same_of = index.per_service.get(demand.service_id).unwrap_or(&empty);
    for (i, n) in index.nodes.iter().enumerate() {
        if let Some(f) = demand.static_failure(n) {
            failures.add(f);
            continue;
        }
        let same = same_of.get(&i).copied().unwrap_or(0);
        let mut at = 0;
        tree[0].count += u64::from(same);
        for d in &demand.preferences {
            let value = preference_value(index, i, d);
            let next = match tree[at].children.get(&value) {
                Some(&b) => b,
                None => {
                    tree.push(Branch {
                        alive: true,
                        ..Default::default()
                    });
                    let b = tree.len() - 1;
                    tree[at].children.insert(value, b);
                    b
                }
            };
            at = next;
            tree[at].count += u64::from(same);
        }
        tree[at].heap.push(Reverse((same, n.total, i)));
    }
    if tree[0].heap.is_empty() && tree[0].children.is_empty() {
        tree[0].alive = false;
    }

    let mut placed = Vec::with_capacity(count.min(index.nodes.len() * 4));
    let counts = index.per_service.entry(demand.service_id).or_default();
    'tasks: while placed.len() < count {
        loop {
            if !tree[0].alive {
                break 'tasks;
            }
            // Walk to the least loaded live leaf.
            let mut at = 0;
            let mut path = vec![0];
            while !tree[at].children.is_empty() {
                let next = tree[at]
                    .children
                    .values()
                    .copied()
                    .filter(|&b| tree[b].alive)
                    .min_by_key(|&b| tree[b].count);
                match next {
                    Some(b) => {
                        at = b;
                        path.push(b);
                    }
                    None => break,
                }
            }
            let mut chosen = None;
            while let Some(Reverse((same, _, i))) = tree[at].heap.pop() {
                match demand.dynamic_failure(&index.nodes[i], same) {
                    None => {
                        chosen = Some((i, same));
                        break;
                    }
                    // Placing more tasks only takes resources away: the node stays out.
                    Some(f) => failures.add(f),
                }
            }
            let Some((i, same)) = chosen else {
                // The leaf is exhausted; mark dead upwards while nothing below lives.
                for &b in path.iter().rev() {
                    let alive = !tree[b].heap.is_empty()
                        || tree[b].children.values().any(|&c| tree[c].alive);
                    tree[b].alive = alive;
                    if alive {
                        break;
                    }
                }
                continue;
            };
            demand.take(&mut index.nodes[i]);
            *counts.entry(i).or_default() += 1;
            for &b in &path {
                tree[b].count += 1;
            }
            tree[at]
                .heap
                .push(Reverse((same + 1, index.nodes[i].total, i)));
            placed.push(i);
            continue 'tasks;
        }
    }
    GroupOutcome {
        nodes: placed,
        failures,
    }
}
