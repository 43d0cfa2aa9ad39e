//! Hierarchical DRF: the role tree, its weighted dominant-share order, and the order of the
//! frameworks inside each role.
//!
//! Roles form a tree (`a/b` is a child of `a`); a role's share counts its whole subtree. Each
//! node keeps its children in a `BTreeSet` keyed by `(weighted share, name)`, so an offer
//! re-keys only the nodes on one path (`O(depth * log n)`) instead of re-sorting everything for
//! the next agent, which is what lets one run cover tens of thousands of agents. A role that
//! has both frameworks of its own and subroles competes with its subroles through a "self"
//! entry in its own child set, as Mesos's sorter does with its virtual `.` leaf.
//!
//! Shares are fractions of the whole cluster (every agent's total), as in Mesos; when the total
//! or a weight changes every key is stale, so the tree is marked dirty and rebuilt once at the
//! start of the next run.

use std::collections::{BTreeMap, BTreeSet};

use std::sync::Arc;

use strata_protocol::FrameworkId;
use strata_protocol::resources::role_ancestors;

use super::FrameworkKey;
use super::quantities::{Quantities, ScalarNames};

/// The index of the tree's root, which stands for no role and holds the top-level roles.
const ROOT: usize = 0;

/// The weight of a role nobody set a weight for.
pub(crate) const DEFAULT_WEIGHT: f64 = 1.0;

/// An order key: the weighted share as sortable bits, then the name for ties.
type ShareKey = u64;

/// Turns a non-negative share into bits that sort like the share.
fn share_key(share: f64) -> ShareKey {
    debug_assert!(share >= 0.0 && share.is_finite(), "share {share}");
    // For non-negative IEEE 754 doubles the bit pattern is monotonic in the value.
    share.max(0.0).to_bits()
}

/// What a change to a holding does: whether it concerns what is offered or what is used, and
/// whether it adds or removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Change {
    pub(crate) offered: bool,
    pub(crate) add: bool,
}

impl Change {
    pub(crate) const ADD_OFFERED: Change = Change {
        offered: true,
        add: true,
    };
    pub(crate) const REMOVE_OFFERED: Change = Change {
        offered: true,
        add: false,
    };
    pub(crate) const ADD_USED: Change = Change {
        offered: false,
        add: true,
    };
    pub(crate) const REMOVE_USED: Change = Change {
        offered: false,
        add: false,
    };
}

/// The scalars a change moves: all of them, and the unreserved part that quota counts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scalars<'a> {
    pub(crate) all: &'a Quantities,
    pub(crate) unreserved: &'a Quantities,
}

/// One role of the tree, with its accounting and its framework order.
#[derive(Debug, Clone)]
pub(crate) struct RoleNode {
    pub(crate) name: Arc<str>,
    parent: usize,
    pub(crate) weight: f64,
    /// Offered and used scalars allocated to exactly this role, and their sum.
    pub(crate) own_offered: Quantities,
    pub(crate) own_used: Quantities,
    own_held: Quantities,
    /// Offered plus used scalars of the subtree: what the role's share measures.
    pub(crate) subtree_held: Quantities,
    /// Unreserved offered plus used scalars of the subtree, one half of quota consumption.
    pub(crate) subtree_unreserved_held: Quantities,
    /// Scalars reserved to the subtree on all agents, the other half of quota consumption.
    pub(crate) subtree_reserved: Quantities,
    /// Scalars reserved to exactly this role on all agents.
    pub(crate) own_reserved: Quantities,
    /// Quota limits by interned name; `None` means no limit on any resource.
    pub(crate) limits: Option<Vec<(usize, i64)>>,
    /// The key this node has in its parent's child set.
    key_in_parent: ShareKey,
    /// The key of this node's own ("self") entry in its child set.
    self_key: ShareKey,
    children: BTreeSet<(ShareKey, Arc<str>, usize)>,
    /// Frameworks that may be offered resources in this role, in DRF order.
    frameworks: BTreeSet<(ShareKey, FrameworkKey)>,
    framework_keys: BTreeMap<FrameworkKey, ShareKey>,
    /// Offered plus used scalars per framework in this role (eligible or not).
    pub(crate) framework_held: BTreeMap<FrameworkKey, Quantities>,
}

impl RoleNode {
    fn new(name: Arc<str>, parent: usize, weight: f64) -> RoleNode {
        RoleNode {
            name,
            parent,
            weight,
            own_offered: Quantities::default(),
            own_used: Quantities::default(),
            own_held: Quantities::default(),
            subtree_held: Quantities::default(),
            subtree_unreserved_held: Quantities::default(),
            subtree_reserved: Quantities::default(),
            own_reserved: Quantities::default(),
            limits: None,
            key_in_parent: share_key(0.0),
            self_key: share_key(0.0),
            children: BTreeSet::new(),
            frameworks: BTreeSet::new(),
            framework_keys: BTreeMap::new(),
            framework_held: BTreeMap::new(),
        }
    }

    /// Returns the frameworks that may be offered resources in this role, lowest share first.
    pub(crate) fn framework_order(&self) -> impl Iterator<Item = &FrameworkKey> {
        self.frameworks.iter().map(|(_, framework_id)| framework_id)
    }

    /// Returns true if `framework_id` may currently be offered resources in this role.
    pub(crate) fn is_eligible(&self, framework_id: &FrameworkId) -> bool {
        self.framework_keys.contains_key(framework_id)
    }

    /// Returns the quota consumption of the subtree: reservations plus unreserved holdings.
    pub(crate) fn consumed(&self) -> Quantities {
        let mut consumed = self.subtree_reserved.clone();
        consumed.add(&self.subtree_unreserved_held);
        consumed
    }
}

/// The tree of roles; see the module documentation.
#[derive(Debug, Clone)]
pub(crate) struct RoleTree {
    nodes: Vec<RoleNode>,
    index: BTreeMap<String, usize>,
    weights: BTreeMap<String, f64>,
    /// Set when the cluster total or a weight changed, so every key must be recomputed.
    dirty: bool,
    /// The roles with eligible frameworks in DRF order, recomputed after any re-keying.
    order: Option<Vec<usize>>,
}

impl Default for RoleTree {
    fn default() -> Self {
        RoleTree {
            nodes: vec![RoleNode::new(Arc::from(""), ROOT, DEFAULT_WEIGHT)],
            index: BTreeMap::new(),
            weights: BTreeMap::new(),
            dirty: false,
            order: None,
        }
    }
}

impl RoleTree {
    /// Returns the node of `role_idx`.
    pub(crate) fn node(&self, role_idx: usize) -> &RoleNode {
        &self.nodes[role_idx]
    }

    /// Returns the index of `role`, if the tree has it.
    pub(crate) fn get(&self, role: &str) -> Option<usize> {
        self.index.get(role).copied()
    }

    /// Iterates over every role (not the root) in name order.
    pub(crate) fn roles(&self) -> impl Iterator<Item = (&str, usize)> {
        self.index.iter().map(|(name, &idx)| (name.as_str(), idx))
    }

    /// Returns the weights set by the operator.
    pub(crate) fn weights(&self) -> &BTreeMap<String, f64> {
        &self.weights
    }

    /// Returns the index of `role`, adding it and its ancestors to the tree if needed.
    pub(crate) fn ensure(&mut self, role: &str) -> usize {
        if let Some(idx) = self.get(role) {
            return idx;
        }
        let parent = match role_ancestors(role).next() {
            Some(parent) => self.ensure(parent),
            None => ROOT,
        };
        let idx = self.nodes.len();
        let weight = self.weights.get(role).copied().unwrap_or(DEFAULT_WEIGHT);
        let name: Arc<str> = Arc::from(role);
        let node = RoleNode::new(name.clone(), parent, weight);
        self.nodes[parent]
            .children
            .insert((node.key_in_parent, name.clone(), idx));
        self.nodes.push(node);
        self.nodes[idx].children.insert((share_key(0.0), name, idx));
        self.index.insert(role.to_owned(), idx);
        // A new node has no holdings yet, but its ancestors' keys may be stale if the tree is
        // dirty; either way the next run rebuilds what it needs.
        self.order = None;
        idx
    }

    /// Returns the ancestors of `role_idx`, nearest first, without the root.
    pub(crate) fn ancestors(&self, role_idx: usize) -> impl Iterator<Item = usize> + '_ {
        let mut current = role_idx;
        std::iter::from_fn(move || {
            let parent = self.nodes[current].parent;
            (current != ROOT && parent != ROOT).then(|| {
                current = parent;
                parent
            })
        })
    }

    /// Sets the operator's weights; roles missing from `weights` keep theirs.
    pub(crate) fn update_weights(&mut self, weights: &BTreeMap<String, f64>) {
        for (role, &weight) in weights {
            self.weights.insert(role.clone(), weight);
            if let Some(idx) = self.get(role) {
                self.nodes[idx].weight = weight;
            }
        }
        self.dirty = true;
    }

    /// Marks every key stale, as when the cluster total changes.
    pub(crate) fn mark_dirty(&mut self) {
        self.dirty = true;
    }

    /// Makes `framework_id` eligible (or not) for offers in `role_idx`.
    pub(crate) fn set_eligible(
        &mut self,
        role_idx: usize,
        framework_id: &FrameworkKey,
        eligible: bool,
        names: &ScalarNames,
        total: &Quantities,
    ) {
        let node = &mut self.nodes[role_idx];
        if let Some(key) = node.framework_keys.remove(framework_id) {
            node.frameworks.remove(&(key, framework_id.clone()));
        }
        if eligible {
            let held = node.framework_held.get(framework_id);
            let share = held.map_or(0.0, |held| names.dominant_share(held, total));
            let key = share_key(share);
            node.framework_keys.insert(framework_id.clone(), key);
            node.frameworks.insert((key, framework_id.clone()));
        }
        self.order = None;
    }

    /// Records that `framework_id` now holds `scalars` more or less in `role_idx`, as
    /// offered or used, as `change` says. Re-keys the framework in its role and the role's
    /// path to the root.
    pub(crate) fn track(
        &mut self,
        role_idx: usize,
        framework_id: &FrameworkKey,
        scalars: Scalars<'_>,
        change: Change,
        names: &ScalarNames,
        total: &Quantities,
    ) {
        let apply = |target: &mut Quantities, delta: &Quantities| {
            if change.add {
                target.add(delta)
            } else {
                target.sub(delta)
            }
        };
        let (delta, unreserved) = (scalars.all, scalars.unreserved);
        let node = &mut self.nodes[role_idx];
        apply(
            if change.offered {
                &mut node.own_offered
            } else {
                &mut node.own_used
            },
            delta,
        );
        apply(&mut node.own_held, delta);
        let held = node.framework_held.entry(framework_id.clone()).or_default();
        apply(held, delta);
        if held.is_zero() {
            node.framework_held.remove(framework_id);
        }
        let mut idx = role_idx;
        while idx != ROOT {
            let node = &mut self.nodes[idx];
            apply(&mut node.subtree_held, delta);
            apply(&mut node.subtree_unreserved_held, unreserved);
            debug_assert!(node.subtree_held.is_non_negative());
            idx = node.parent;
        }
        if !self.dirty {
            self.rekey_framework(role_idx, framework_id, names, total);
            let mut idx = role_idx;
            while idx != ROOT {
                self.rekey_role(idx, names, total);
                idx = self.nodes[idx].parent;
            }
        }
    }

    /// Adds (or removes) reservations to `role_idx` and its ancestors' quota consumption.
    pub(crate) fn track_reserved(&mut self, role_idx: usize, reserved: &Quantities, add: bool) {
        let node = &mut self.nodes[role_idx];
        if add {
            node.own_reserved.add(reserved);
        } else {
            node.own_reserved.sub(reserved);
        }
        let mut idx = role_idx;
        while idx != ROOT {
            let node = &mut self.nodes[idx];
            if add {
                node.subtree_reserved.add(reserved);
            } else {
                node.subtree_reserved.sub(reserved);
            }
            idx = node.parent;
        }
    }

    /// Sets the quota limits of `role_idx` (`None` removes them).
    pub(crate) fn set_limits(&mut self, role_idx: usize, limits: Option<Vec<(usize, i64)>>) {
        self.nodes[role_idx].limits = limits;
    }

    fn rekey_framework(
        &mut self,
        role_idx: usize,
        framework_id: &FrameworkKey,
        names: &ScalarNames,
        total: &Quantities,
    ) {
        let node = &mut self.nodes[role_idx];
        let Some(old_key) = node.framework_keys.get(framework_id).copied() else {
            return;
        };
        let share = node
            .framework_held
            .get(framework_id)
            .map_or(0.0, |held| names.dominant_share(held, total));
        let new_key = share_key(share);
        if new_key != old_key {
            node.frameworks.remove(&(old_key, framework_id.clone()));
            node.frameworks.insert((new_key, framework_id.clone()));
            node.framework_keys.insert(framework_id.clone(), new_key);
        }
    }

    /// Recomputes the key of `role_idx` in its parent and of its self entry.
    fn rekey_role(&mut self, role_idx: usize, names: &ScalarNames, total: &Quantities) {
        let node = &self.nodes[role_idx];
        let weight = node.weight;
        let subtree_key = share_key(names.dominant_share(&node.subtree_held, total) / weight);
        let self_key = share_key(names.dominant_share(&node.own_held, total) / weight);
        let (old_subtree_key, old_self_key, parent) =
            (node.key_in_parent, node.self_key, node.parent);
        let name = node.name.clone();
        if self_key != old_self_key {
            let node = &mut self.nodes[role_idx];
            node.children
                .remove(&(old_self_key, name.clone(), role_idx));
            node.children.insert((self_key, name.clone(), role_idx));
            node.self_key = self_key;
            self.order = None;
        }
        if subtree_key != old_subtree_key {
            let siblings = &mut self.nodes[parent].children;
            siblings.remove(&(old_subtree_key, name.clone(), role_idx));
            siblings.insert((subtree_key, name, role_idx));
            self.nodes[role_idx].key_in_parent = subtree_key;
            self.order = None;
        }
    }

    /// Recomputes every key if the tree is dirty.
    pub(crate) fn rebuild_if_dirty(&mut self, names: &ScalarNames, total: &Quantities) {
        if !self.dirty {
            return;
        }
        self.dirty = false;
        for idx in 1..self.nodes.len() {
            self.rekey_role(idx, names, total);
            let frameworks: Vec<FrameworkKey> =
                self.nodes[idx].framework_keys.keys().cloned().collect();
            for framework_id in frameworks {
                self.rekey_framework(idx, &framework_id, names, total);
            }
        }
        self.order = None;
    }

    /// Returns the roles that have eligible frameworks, in hierarchical DRF order: a
    /// depth-first walk that visits each node's children lowest weighted share first.
    pub(crate) fn order(&mut self) -> &[usize] {
        debug_assert!(!self.dirty, "the role order is read from a dirty tree");
        if self.order.is_none() {
            let mut order = Vec::new();
            self.collect_order(ROOT, &mut order);
            self.order = Some(order);
        }
        self.order.as_deref().unwrap_or_default()
    }

    fn collect_order(&self, idx: usize, order: &mut Vec<usize>) {
        for &(_, _, child) in &self.nodes[idx].children {
            if child == idx {
                if !self.nodes[idx].frameworks.is_empty() {
                    order.push(idx);
                }
            } else {
                self.collect_order(child, order);
            }
        }
    }

    /// Returns the weighted dominant share of the subtree of `role_idx`.
    pub(crate) fn weighted_share(
        &self,
        role_idx: usize,
        names: &ScalarNames,
        total: &Quantities,
    ) -> f64 {
        let node = &self.nodes[role_idx];
        names.dominant_share(&node.subtree_held, total) / node.weight
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree_with(roles: &[&str]) -> RoleTree {
        let mut tree = RoleTree::default();
        for role in roles {
            tree.ensure(role);
        }
        tree
    }

    #[test]
    fn ensure_adds_ancestors_and_ancestors_walk_up() {
        let tree = tree_with(&["a/b/c"]);
        let c = tree.get("a/b/c").unwrap();
        let names: Vec<&str> = tree.ancestors(c).map(|idx| &*tree.node(idx).name).collect();
        assert_eq!(names, ["a/b", "a"]);
    }

    #[test]
    fn order_visits_only_roles_with_eligible_frameworks_depth_first() {
        let mut tree = tree_with(&["b", "a/x", "a"]);
        let names = ScalarNames::default();
        let total = Quantities::default();
        let framework_id = Arc::new(FrameworkId::new("f").unwrap());
        for role in ["b", "a/x", "a"] {
            let idx = tree.get(role).unwrap();
            tree.set_eligible(idx, &framework_id, true, &names, &total);
        }
        let order: Vec<&str> = tree
            .order()
            .to_vec()
            .into_iter()
            .map(|idx| &*tree.node(idx).name)
            .collect();
        // All shares are zero, so names break ties: `a` (self) sorts before `a/x`.
        assert_eq!(order, ["a", "a/x", "b"]);
    }
}
