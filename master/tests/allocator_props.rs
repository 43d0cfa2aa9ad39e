//! Property tests of the allocator: random sequences of cluster events, with the allocator's
//! invariants checked after every step against an independent model of what the master
//! would know (agents, frameworks, filters and every outstanding offer and use).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use proptest::prelude::*;
use strata_master::allocator::{Allocation, Allocator, AllocatorConfig, QuotaLimits};
use strata_protocol::resources::{ReservationInfo, is_strict_subrole_of};
use strata_protocol::{AgentId, FrameworkId, Resources};

const ROLES: [&str; 4] = ["a", "a/x", "b", "c"];
const N_AGENTS: u8 = 6;
const N_FRAMEWORKS: u8 = 5;

/// Agent profiles: plain, reserved to `a`, reserved to `b` with a GPU, and crumbs.
const PROFILES: [&str; 4] = [
    "cpus:4;mem:1024;ports:[31000-31009]",
    "cpus:2;mem:512;cpus(a):2;mem(a):256",
    "cpus:1;mem:64;cpus(b):1;mem(b):128;gpus:1",
    "cpus:0.005;mem:16",
];

#[derive(Debug, Clone)]
enum Op {
    AddAgent {
        agent: u8,
        profile: usize,
    },
    RemoveAgent {
        agent: u8,
    },
    SetAgentActive {
        agent: u8,
        active: bool,
    },
    AddFramework {
        framework: u8,
        roles: u8,
        suppressed: u8,
        active: bool,
    },
    UpdateFramework {
        framework: u8,
        roles: u8,
    },
    RemoveFramework {
        framework: u8,
    },
    SetFrameworkActive {
        framework: u8,
        active: bool,
    },
    Allocate {
        advance_secs: u8,
        /// Only these agents (a bit mask), as an event-driven run; `None` for all.
        agents: Option<u8>,
    },
    Recover {
        pick: usize,
        what: Part,
        refuse_secs: Option<u16>,
    },
    Use {
        pick: usize,
        whole: bool,
    },
    Convert {
        pick: usize,
        reserve: bool,
    },
    MinAllocatable {
        framework: u8,
        roles: u8,
        cpus: Option<u8>,
    },
    Suppress {
        framework: u8,
        roles: Option<u8>,
    },
    Revive {
        framework: u8,
        roles: Option<u8>,
    },
    Weight {
        role: usize,
        weight: u8,
    },
    Quota {
        role: usize,
        cpus: Option<u8>,
    },
}

/// Which part of a holding a recovery gives back.
#[derive(Debug, Clone, Copy)]
enum Part {
    WholeOffer,
    FirstOfOffer,
    Used,
}

fn op() -> impl Strategy<Value = Op> {
    let agent = 0..N_AGENTS;
    let framework = 0..N_FRAMEWORKS;
    let part = prop_oneof![
        Just(Part::WholeOffer),
        Just(Part::FirstOfOffer),
        Just(Part::Used)
    ];
    prop_oneof![
        3 => (agent.clone(), 0..PROFILES.len())
            .prop_map(|(agent, profile)| Op::AddAgent { agent, profile }),
        1 => agent.clone().prop_map(|agent| Op::RemoveAgent { agent }),
        1 => (agent, any::<bool>()).prop_map(|(agent, active)| Op::SetAgentActive { agent, active }),
        3 => (framework.clone(), 1..16u8, 0..16u8, prop::bool::weighted(0.8)).prop_map(
            |(framework, roles, suppressed, active)| Op::AddFramework {
                framework,
                roles,
                suppressed: suppressed & roles & 0b0101,
                active,
            }
        ),
        1 => (framework.clone(), 1..16u8)
            .prop_map(|(framework, roles)| Op::UpdateFramework { framework, roles }),
        1 => framework.clone().prop_map(|framework| Op::RemoveFramework { framework }),
        1 => (framework.clone(), any::<bool>())
            .prop_map(|(framework, active)| Op::SetFrameworkActive { framework, active }),
        5 => (0..20u8, prop::option::weighted(0.3, any::<u8>()))
            .prop_map(|(advance_secs, agents)| Op::Allocate { advance_secs, agents }),
        4 => (any::<usize>(), part, prop::option::of(0..30u16))
            .prop_map(|(pick, what, refuse_secs)| Op::Recover { pick, what, refuse_secs }),
        2 => (any::<usize>(), any::<bool>()).prop_map(|(pick, whole)| Op::Use { pick, whole }),
        2 => (any::<usize>(), any::<bool>())
            .prop_map(|(pick, reserve)| Op::Convert { pick, reserve }),
        1 => (0..N_FRAMEWORKS, 0..16u8, prop::option::of(1..4u8))
            .prop_map(|(framework, roles, cpus)| Op::MinAllocatable { framework, roles, cpus }),
        1 => (framework.clone(), prop::option::of(0..16u8))
            .prop_map(|(framework, roles)| Op::Suppress { framework, roles }),
        1 => (framework, prop::option::of(0..16u8))
            .prop_map(|(framework, roles)| Op::Revive { framework, roles }),
        2 => (0..ROLES.len(), 1..4u8).prop_map(|(role, weight)| Op::Weight { role, weight }),
        1 => (0..ROLES.len(), prop::option::of(0..6u8))
            .prop_map(|(role, cpus)| Op::Quota { role, cpus }),
    ]
}

fn agent_id(idx: u8) -> AgentId {
    AgentId::new(format!("agent-{idx}")).unwrap()
}

fn framework_id(idx: u8) -> FrameworkId {
    FrameworkId::new(format!("framework-{idx}")).unwrap()
}

fn roles_of(mask: u8) -> BTreeSet<String> {
    ROLES
        .iter()
        .enumerate()
        .filter(|(idx, _)| mask & (1 << idx) != 0)
        .map(|(_, role)| (*role).to_owned())
        .collect()
}

fn allocated(resources: &Resources, role: &str) -> Resources {
    let mut allocated = resources.clone();
    allocated.allocate(role);
    allocated
}

fn unallocated(resources: &Resources) -> Resources {
    let mut plain = resources.clone();
    plain.unallocate();
    plain
}

#[derive(Debug, Clone)]
struct ModelFramework {
    active: bool,
    roles: BTreeSet<String>,
    suppressed: BTreeSet<String>,
    /// The framework's own minimum offers by role; `None` inside means "any".
    min_allocatable: BTreeMap<String, Option<Resources>>,
}

impl ModelFramework {
    fn wants(&self, role: &str) -> bool {
        self.active && self.roles.contains(role) && !self.suppressed.contains(role)
    }

    /// Returns true if the framework would take `offer` in `role`, by its own minimum or
    /// else by the default one (cpus:0.01 or mem:32).
    fn takes(&self, role: &str, offer: &Resources) -> bool {
        let has = |minimum: &str| {
            let minimum = Resources::parse(minimum, "*").unwrap();
            minimum.names().iter().all(|name| {
                offer.scalar_milli(name).unwrap_or_default() >= minimum.scalar_milli(name).unwrap()
            })
        };
        match self.min_allocatable.get(role) {
            Some(None) => !offer.is_empty(),
            Some(Some(minimum)) => has(&minimum.to_string()),
            None => has("cpus:0.01") || has("mem:32"),
        }
    }
}

/// What a framework holds in a role on an agent, without allocation info.
#[derive(Debug, Clone, Default, PartialEq)]
struct ModelHolding {
    offered: Resources,
    used: Resources,
}

type HoldingKey = (FrameworkId, AgentId, String);

/// What the master knows, kept independently of the allocator.
#[derive(Debug, Default)]
struct Model {
    now: Duration,
    agents: BTreeMap<AgentId, (Resources, bool)>,
    frameworks: BTreeMap<FrameworkId, ModelFramework>,
    holdings: BTreeMap<HoldingKey, ModelHolding>,
    /// `(framework, agent, role) -> expiry` of the filters installed.
    filters: Vec<(HoldingKey, Duration)>,
    quotas: BTreeMap<String, i64>,
    weights: BTreeMap<String, f64>,
}

impl Model {
    fn cluster_total(&self) -> Resources {
        let mut total = Resources::new();
        for (resources, _) in self.agents.values() {
            total += resources.scalar_quantities();
        }
        total
    }

    /// Returns the scalars `framework` holds in `role`, over all agents.
    fn framework_held(&self, framework: &FrameworkId, role: &str) -> Resources {
        let mut held = Resources::new();
        for ((fw, _, held_role), holding) in &self.holdings {
            if fw == framework && held_role == role {
                held += holding.offered.scalar_quantities();
                held += holding.used.scalar_quantities();
            }
        }
        held
    }

    fn has_filter(&self, key: &HoldingKey) -> bool {
        self.filters
            .iter()
            .any(|(filtered, expiry)| filtered == key && *expiry > self.now)
    }

    /// Returns the unreserved scalars held in the subtree of `role`, and its reservations.
    fn quota_consumption(&self, role: &str) -> (Resources, Resources) {
        let in_subtree = |other: &str| other == role || is_strict_subrole_of(other, role);
        let mut unreserved = Resources::new();
        for ((_, _, held_role), holding) in &self.holdings {
            if in_subtree(held_role) {
                unreserved += holding.offered.unreserved().scalar_quantities();
                unreserved += holding.used.unreserved().scalar_quantities();
            }
        }
        let mut reserved = Resources::new();
        for (total, _) in self.agents.values() {
            for (reserved_role, resources) in total.reservations() {
                if in_subtree(&reserved_role) {
                    reserved += resources.scalar_quantities();
                }
            }
        }
        (unreserved, reserved)
    }
}

struct Harness {
    allocator: Allocator,
    model: Model,
}

impl Harness {
    fn new() -> Harness {
        let config = AllocatorConfig {
            seed: 7,
            ..AllocatorConfig::default()
        };
        Harness {
            allocator: Allocator::new(config),
            model: Model::default(),
        }
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::AddAgent { agent, profile } => self.add_agent(agent, profile),
            Op::RemoveAgent { agent } => self.remove_agent(agent),
            Op::SetAgentActive { agent, active } => self.set_agent_active(agent, active),
            Op::AddFramework {
                framework,
                roles,
                suppressed,
                active,
            } => self.add_framework(framework, roles, suppressed, active),
            Op::UpdateFramework { framework, roles } => self.update_framework(framework, roles),
            Op::RemoveFramework { framework } => self.remove_framework(framework),
            Op::SetFrameworkActive { framework, active } => {
                self.set_framework_active(framework, active)
            }
            Op::Allocate {
                advance_secs,
                agents,
            } => self.allocate(advance_secs, agents),
            Op::Recover {
                pick,
                what,
                refuse_secs,
            } => self.recover(pick, what, refuse_secs),
            Op::Use { pick, whole } => self.use_offered(pick, whole),
            Op::Convert { pick, reserve } => self.convert(pick, reserve),
            Op::MinAllocatable {
                framework,
                roles,
                cpus,
            } => self.min_allocatable(framework, roles, cpus),
            Op::Suppress { framework, roles } => self.suppress(framework, roles),
            Op::Revive { framework, roles } => self.revive(framework, roles),
            Op::Weight { role, weight } => {
                let weight = f64::from(weight) / 2.0;
                let weights = BTreeMap::from([(ROLES[role].to_owned(), weight)]);
                self.allocator.update_weights(weights).unwrap();
                self.model.weights.insert(ROLES[role].to_owned(), weight);
            }
            Op::Quota { role, cpus } => self.quota(role, cpus),
        }
    }

    fn add_agent(&mut self, agent: u8, profile: usize) {
        let id = agent_id(agent);
        let total = Resources::parse(PROFILES[profile], "*").unwrap();
        let result = self
            .allocator
            .add_agent(id.clone(), total.clone(), BTreeMap::new());
        assert_eq!(result.is_ok(), !self.model.agents.contains_key(&id));
        self.model.agents.entry(id).or_insert((total, true));
    }

    fn remove_agent(&mut self, agent: u8) {
        let id = agent_id(agent);
        self.allocator.remove_agent(&id);
        self.model.agents.remove(&id);
        self.model
            .holdings
            .retain(|(_, held_on, _), _| *held_on != id);
        self.model.filters.retain(|((_, on, _), _)| *on != id);
    }

    fn set_agent_active(&mut self, agent: u8, active: bool) {
        let id = agent_id(agent);
        let result = if active {
            self.allocator.activate_agent(&id)
        } else {
            self.allocator.deactivate_agent(&id)
        };
        assert_eq!(result.is_ok(), self.model.agents.contains_key(&id));
        if let Some((_, model_active)) = self.model.agents.get_mut(&id) {
            *model_active = active;
        }
    }

    fn add_framework(&mut self, framework: u8, roles: u8, suppressed: u8, active: bool) {
        let id = framework_id(framework);
        let (roles, suppressed) = (roles_of(roles), roles_of(suppressed));
        let result =
            self.allocator
                .add_framework(id.clone(), roles.clone(), suppressed.clone(), active);
        assert_eq!(result.is_ok(), !self.model.frameworks.contains_key(&id));
        self.model.frameworks.entry(id).or_insert(ModelFramework {
            active,
            roles,
            suppressed,
            min_allocatable: BTreeMap::new(),
        });
    }

    fn update_framework(&mut self, framework: u8, roles: u8) {
        let id = framework_id(framework);
        let roles = roles_of(roles);
        let Some(model) = self.model.frameworks.get_mut(&id) else {
            return;
        };
        let suppressed: BTreeSet<String> = model.suppressed.intersection(&roles).cloned().collect();
        self.allocator
            .update_framework(&id, roles.clone(), suppressed.clone())
            .unwrap();
        let left: Vec<String> = model.roles.difference(&roles).cloned().collect();
        model.roles = roles;
        model.suppressed = suppressed;
        self.model
            .filters
            .retain(|((fw, _, role), _)| *fw != id || !left.contains(role));
    }

    fn remove_framework(&mut self, framework: u8) {
        let id = framework_id(framework);
        self.allocator.remove_framework(&id);
        self.model.frameworks.remove(&id);
        self.model.holdings.retain(|(fw, _, _), _| *fw != id);
        self.model.filters.retain(|((fw, _, _), _)| *fw != id);
    }

    fn set_framework_active(&mut self, framework: u8, active: bool) {
        let id = framework_id(framework);
        let result = if active {
            self.allocator.activate_framework(&id)
        } else {
            self.allocator.deactivate_framework(&id)
        };
        assert_eq!(result.is_ok(), self.model.frameworks.contains_key(&id));
        if let Some(model) = self.model.frameworks.get_mut(&id) {
            model.active = active;
            if !active {
                self.model.filters.retain(|((fw, _, _), _)| *fw != id);
            }
        }
    }

    fn suppress(&mut self, framework: u8, roles: Option<u8>) {
        let id = framework_id(framework);
        let roles = roles.map(roles_of);
        let result = self.allocator.suppress(&id, roles.clone());
        assert_eq!(result.is_ok(), self.model.frameworks.contains_key(&id));
        if let Some(model) = self.model.frameworks.get_mut(&id) {
            let roles = roles.unwrap_or_else(|| model.roles.clone());
            let subscribed: Vec<String> = roles.intersection(&model.roles).cloned().collect();
            model.suppressed.extend(subscribed);
        }
    }

    fn revive(&mut self, framework: u8, roles: Option<u8>) {
        let id = framework_id(framework);
        let roles = roles.map(roles_of);
        let result = self.allocator.revive(&id, roles.clone());
        assert_eq!(result.is_ok(), self.model.frameworks.contains_key(&id));
        if let Some(model) = self.model.frameworks.get_mut(&id) {
            let roles = roles.unwrap_or_else(|| model.roles.clone());
            for role in &roles {
                model.suppressed.remove(role);
            }
            self.model
                .filters
                .retain(|((fw, _, role), _)| *fw != id || !roles.contains(role));
        }
    }

    fn quota(&mut self, role: usize, cpus: Option<u8>) {
        let role = ROLES[role].to_owned();
        let limits: QuotaLimits = cpus
            .map(|cpus| QuotaLimits::from([("cpus".to_owned(), f64::from(cpus))]))
            .unwrap_or_default();
        let rescinds = self
            .allocator
            .update_quota(BTreeMap::from([(role.clone(), limits)]))
            .unwrap();
        match cpus {
            Some(cpus) => self.model.quotas.insert(role, i64::from(cpus) * 1000),
            None => self.model.quotas.remove(&role),
        };
        // Act as the master: rescind the offers and recover their resources.
        for rescind in rescinds {
            let key = (
                rescind.framework_id.clone(),
                rescind.agent_id.clone(),
                rescind.role.clone(),
            );
            let holding = self
                .model
                .holdings
                .get_mut(&key)
                .expect("rescinded offer exists");
            assert_eq!(unallocated(&rescind.resources), holding.offered);
            holding.offered = Resources::new();
            self.allocator
                .recover_resources(
                    &rescind.framework_id,
                    &rescind.agent_id,
                    &rescind.resources,
                    None,
                    self.model.now,
                )
                .unwrap();
        }
        self.model
            .holdings
            .retain(|_, holding| *holding != ModelHolding::default());
    }

    /// Returns the `pick`th holding (modulo their number), if there is any.
    fn pick_holding(&self, pick: usize) -> Option<(HoldingKey, ModelHolding)> {
        let n_holdings = self.model.holdings.len();
        let (key, holding) = self
            .model
            .holdings
            .iter()
            .nth(pick.checked_rem(n_holdings)?)?;
        Some((key.clone(), holding.clone()))
    }

    fn recover(&mut self, pick: usize, what: Part, refuse_secs: Option<u16>) {
        let Some((key, holding)) = self.pick_holding(pick) else {
            return;
        };
        let resources = match what {
            Part::WholeOffer => holding.offered.clone(),
            Part::FirstOfOffer => first_of(&holding.offered),
            Part::Used => holding.used.clone(),
        };
        if resources.is_empty() {
            return;
        }
        let (framework, agent, role) = &key;
        let refuse = refuse_secs.map(|secs| Duration::from_secs(u64::from(secs)));
        self.allocator
            .recover_resources(
                framework,
                agent,
                &allocated(&resources, role),
                refuse,
                self.model.now,
            )
            .unwrap();
        let model = self.model.holdings.get_mut(&key).unwrap();
        match what {
            Part::Used => model.used -= &resources,
            _ => model.offered -= &resources,
        }
        if *model == ModelHolding::default() {
            self.model.holdings.remove(&key);
        }
        if let Some(refuse) = refuse.filter(|refuse| !refuse.is_zero()) {
            self.model.filters.push((key, self.model.now + refuse));
        }
    }

    fn use_offered(&mut self, pick: usize, whole: bool) {
        let Some((key, holding)) = self.pick_holding(pick) else {
            return;
        };
        let resources = if whole {
            holding.offered.clone()
        } else {
            first_of(&holding.offered)
        };
        if resources.is_empty() {
            return;
        }
        let (framework, agent, role) = &key;
        self.allocator
            .use_offered(framework, agent, &allocated(&resources, role))
            .unwrap();
        let model = self.model.holdings.get_mut(&key).unwrap();
        model.offered -= &resources;
        model.used += &resources;
    }

    fn min_allocatable(&mut self, framework: u8, roles: u8, cpus: Option<u8>) {
        let id = framework_id(framework);
        let minimum = cpus.map(|cpus| Resources::parse(&format!("cpus:{cpus}"), "*").unwrap());
        let by_role: BTreeMap<String, Option<Resources>> = roles_of(roles)
            .into_iter()
            .map(|role| (role, minimum.clone()))
            .collect();
        let wire = by_role
            .iter()
            .map(|(role, minimum)| (role.clone(), minimum.iter().cloned().collect()))
            .collect();
        let result = self.allocator.update_min_allocatable(&id, wire);
        assert_eq!(result.is_ok(), self.model.frameworks.contains_key(&id));
        if let Some(model) = self.model.frameworks.get_mut(&id) {
            model.min_allocatable = by_role;
        }
    }

    /// Reserves (or unreserves) the first scalar of an offer for its role, as an ACCEPT with
    /// a RESERVE (UNRESERVE) operation does.
    fn convert(&mut self, pick: usize, reserve: bool) {
        let Some((key, holding)) = self.pick_holding(pick) else {
            return;
        };
        let (framework, agent, role) = &key;
        let candidate = holding.offered.iter().find(|resource| {
            resource.scalar.is_some()
                && if reserve {
                    resource.is_unreserved()
                } else {
                    resource.is_dynamically_reserved()
                }
        });
        let Some(consumed) = candidate else {
            return;
        };
        let consumed = Resources::from_resources([consumed]).unwrap();
        let converted = if reserve {
            let reservation = ReservationInfo::new_dynamic(role.clone(), None);
            consumed.push_reservation(&reservation).unwrap()
        } else {
            consumed.pop_reservation().unwrap()
        };
        self.allocator
            .update_allocation(
                framework,
                agent,
                &allocated(&consumed, role),
                &allocated(&converted, role),
            )
            .unwrap();
        let model = self.model.holdings.get_mut(&key).unwrap();
        model.offered = &model.offered - &consumed + &converted;
        let (total, _) = self.model.agents.get_mut(agent).unwrap();
        *total = &*total - &consumed + &converted;
    }

    fn allocate(&mut self, advance_secs: u8, agents: Option<u8>) {
        self.model.now += Duration::from_secs(u64::from(advance_secs));
        let agents: Option<Vec<AgentId>> = agents.map(|mask| {
            (0..N_AGENTS)
                .filter(|idx| mask & (1 << idx) != 0)
                .map(agent_id)
                .collect()
        });
        let now = self.model.now;
        let run = |allocator: &mut Allocator| match &agents {
            Some(agents) => allocator.allocate_agents(now, agents),
            None => allocator.allocate(now),
        };
        let before: BTreeMap<String, Resources> = self
            .model
            .quotas
            .keys()
            .map(|role| (role.clone(), self.model.quota_consumption(role).0))
            .collect();
        let allocations = run(&mut self.allocator);
        let mut offered_agents = BTreeSet::new();
        for allocation in &allocations {
            if let Some(agents) = &agents {
                assert!(agents.contains(&allocation.agent_id), "{allocation:?}");
            }
            self.check_allocation(allocation);
            if offered_agents.insert(allocation.agent_id.clone()) {
                self.check_role_order(allocation);
            }
            let key = (
                allocation.framework_id.clone(),
                allocation.agent_id.clone(),
                allocation.role.clone(),
            );
            let holding = self.model.holdings.entry(key).or_default();
            holding.offered += unallocated(&allocation.resources);
        }
        self.check_quota(&before);
        // Idempotence: nothing changed, so a second run at the same time offers nothing.
        assert_eq!(run(&mut self.allocator), Vec::new());
    }

    /// Checks one allocation against the model before it is recorded there.
    fn check_allocation(&self, allocation: &Allocation) {
        let Allocation {
            framework_id,
            agent_id,
            role,
            resources,
        } = allocation;
        let framework = &self.model.frameworks[framework_id];
        assert!(framework.wants(role), "{allocation:?} to {framework:?}");
        let offer = unallocated(resources);
        assert!(
            framework.takes(role, &offer),
            "{allocation:?} below {framework:?}'s minimum"
        );
        assert!(
            self.model.agents[agent_id].1,
            "{allocation:?} on inactive agent"
        );
        assert!(!resources.is_empty());
        for resource in resources.iter() {
            assert_eq!(resource.allocation_role(), Some(role.as_str()));
            assert!(resource.is_allocatable_to(role), "{resource:?} to {role}");
        }
        // DRF: every other framework that wanted this role and had no filter on the agent
        // had at least the recipient's share.
        let total = self.model.cluster_total();
        let share = self
            .model
            .framework_held(framework_id, role)
            .dominant_share(&total);
        for (other_id, other) in &self.model.frameworks {
            let other_key = (other_id.clone(), agent_id.clone(), role.clone());
            if other_id == framework_id
                || !other.wants(role)
                || !other.takes(role, &offer)
                || self.model.has_filter(&other_key)
            {
                continue;
            }
            let other_share = self
                .model
                .framework_held(other_id, role)
                .dominant_share(&total);
            assert!(
                share <= other_share + 1e-12,
                "{framework_id} (share {share}) served before {other_id} ({other_share}) in {role}"
            );
        }
    }

    /// Checks hierarchical DRF between top-level roles for the first offer on an agent
    /// without reservations, where no quota is involved: that offer is the agent's whole
    /// available resources, so any other top-level role with a lower weighted share and a
    /// framework that would have taken it unfiltered should have been served instead.
    fn check_role_order(&self, allocation: &Allocation) {
        let top = |role: &str| role.split('/').next().unwrap_or(role).to_owned();
        let (agent_total, _) = &self.model.agents[&allocation.agent_id];
        let has_quota = |top_role: &str| self.model.quotas.keys().any(|role| top(role) == top_role);
        let served = top(&allocation.role);
        if !agent_total.reserved_to_any().is_empty() || has_quota(&served) {
            return;
        }
        let offer = unallocated(&allocation.resources);
        let share = self.weighted_share(&served);
        for other in ROLES.iter().map(|role| top(role)) {
            if other == served || has_quota(&other) {
                continue;
            }
            let would_take = self.model.frameworks.iter().any(|(id, framework)| {
                framework.roles.iter().any(|role| {
                    let key = (id.clone(), allocation.agent_id.clone(), role.clone());
                    top(role) == other
                        && framework.wants(role)
                        && framework.takes(role, &offer)
                        && !self.model.has_filter(&key)
                })
            });
            let other_share = self.weighted_share(&other);
            assert!(
                !would_take || share <= other_share + 1e-12,
                "role {served} (weighted share {share}) served before {other} ({other_share})"
            );
        }
    }

    /// Returns the dominant share of everything held in the subtree of the top-level role
    /// `top`, divided by its weight.
    fn weighted_share(&self, top: &str) -> f64 {
        let mut held = Resources::new();
        for ((_, _, role), holding) in &self.model.holdings {
            if role == top || is_strict_subrole_of(role, top) {
                held += holding.offered.scalar_quantities();
                held += holding.used.scalar_quantities();
            }
        }
        let weight = self.model.weights.get(top).copied().unwrap_or(1.0);
        held.dominant_share(&self.model.cluster_total()) / weight
    }

    /// Checks that no quota role went above a limit during a run (unless it already was).
    fn check_quota(&self, before: &BTreeMap<String, Resources>) {
        for (role, limit) in &self.model.quotas {
            let (unreserved, reserved) = self.model.quota_consumption(role);
            let cpus = |r: &Resources| r.scalar_milli("cpus").map_or(0, |m| m.as_milli());
            let consumed = cpus(&unreserved) + cpus(&reserved);
            let grew = cpus(&unreserved) > cpus(&before[role]);
            assert!(
                !grew || consumed <= *limit,
                "role {role} consumes {consumed} cpus (milli) over its limit {limit}"
            );
        }
    }

    /// Checks the allocator's accounting against the model after every step.
    fn check(&self) {
        self.allocator.check_invariants().unwrap();
        let mut seen: BTreeMap<HoldingKey, ModelHolding> = BTreeMap::new();
        for (agent_id, (total, active)) in &self.model.agents {
            let view = self.allocator.agent_view(agent_id).expect("agent is known");
            assert_eq!(view.total, *total);
            assert_eq!(view.active, *active);
            let mut held = Resources::new();
            for holding in view.holdings {
                let key = (holding.framework_id, agent_id.clone(), holding.role);
                let (offered, used) = (unallocated(&holding.offered), unallocated(&holding.used));
                held += &offered;
                held += &used;
                seen.insert(key, ModelHolding { offered, used });
            }
            // Nothing is offered or used twice: together it all fits in the agent.
            assert!(total.contains(&held), "{agent_id}: {held} exceeds {total}");
            assert_eq!(view.available + held, *total);
        }
        assert_eq!(seen, self.model.holdings);
        assert_eq!(self.allocator.agent_ids().count(), self.model.agents.len());
    }
}

/// Returns the first resource of `resources` alone, a strict part of a larger offer.
fn first_of(resources: &Resources) -> Resources {
    Resources::from_resources(resources.iter().take(1)).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    #[test]
    fn allocator_invariants_hold_after_every_step(ops in prop::collection::vec(op(), 1..60)) {
        let mut harness = Harness::new();
        for op in &ops {
            harness.apply(op);
            harness.check();
        }
    }
}
