//! Packing tasks into offers: [`pack`] places [`TaskSpec`]s first-fit and returns a [`Plan`]
//! for [`crate::scheduler::Client::accept`].

use std::time::Duration;

use strata_protocol::ids::{AgentId, OfferId};
use strata_protocol::mesos::{Offer, TaskInfo};
use strata_protocol::resources::{Range, Ranges, Scalar};
use strata_protocol::{Resource, Resources};
use tracing::warn;

use super::task_spec::{TaskSpec, TaskSpecError};

/// Scalar amounts below this count as zero: resources are kept in thousandths.
const EPSILON: f64 = 0.0005;

/// Tasks to launch on one offer.
#[derive(Debug, Clone, PartialEq)]
pub struct OfferLaunch {
    /// The offer the tasks use.
    pub offer_id: OfferId,
    /// The offer's agent, where the tasks run.
    pub agent_id: AgentId,
    /// The tasks, with resources taken from the offer.
    pub tasks: Vec<TaskInfo>,
}

/// What to launch on which offers: one ACCEPT per offer. Offers a plan does not name are left
/// to the program (declined automatically when their [`crate::scheduler::Offers`] is dropped).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    launches: Vec<OfferLaunch>,
    /// Specs that can never become tasks (a bad ID, a negative amount), taken out of the
    /// pending list so that they are not retried forever, with the reason.
    pub invalid: Vec<(TaskSpec, TaskSpecError)>,
    /// Overrides the builder's `refuse_seconds` for the resources the plan leaves unused.
    pub refuse: Option<Duration>,
}

impl Plan {
    /// Returns an empty plan.
    pub fn new() -> Plan {
        Plan::default()
    }

    /// Adds `tasks` to launch on `offer`, as given: nothing checks that they fit (the master
    /// answers TASK_ERROR for those that do not).
    pub fn launch(&mut self, offer: &Offer, tasks: Vec<TaskInfo>) -> &mut Plan {
        match self.launches.iter_mut().find(|l| l.offer_id == offer.id) {
            Some(launch) => launch.tasks.extend(tasks),
            None => self.launches.push(OfferLaunch {
                offer_id: offer.id.clone(),
                agent_id: offer.agent_id.clone(),
                tasks,
            }),
        }
        self
    }

    /// Sets how long the resources this plan leaves unused are not re-offered.
    pub fn refuse_for(mut self, refuse: Duration) -> Plan {
        self.refuse = Some(refuse);
        self
    }

    /// Returns the launches, one per offer.
    pub fn launches(&self) -> &[OfferLaunch] {
        &self.launches
    }

    /// Returns the launches, consuming the plan.
    pub fn into_launches(self) -> Vec<OfferLaunch> {
        self.launches
    }

    /// Returns every task the plan launches.
    pub fn tasks(&self) -> impl Iterator<Item = &TaskInfo> {
        self.launches.iter().flat_map(|launch| launch.tasks.iter())
    }

    /// Returns the offers the plan uses.
    pub fn offer_ids(&self) -> impl Iterator<Item = &OfferId> {
        self.launches.iter().map(|launch| &launch.offer_id)
    }

    /// Returns true if the plan launches nothing.
    pub fn is_empty(&self) -> bool {
        self.launches.is_empty()
    }
}

/// Places each spec of `pending`, in order, on the first offer that still has room for it
/// (first-fit), taking its resources from that offer's remainder: reserved resources of the
/// offer's role before unreserved ones, in the offer's own order, and the lowest free ports.
/// A spec with a role only goes to offers made for that role. Placed specs leave `pending`;
/// those that fit nowhere stay, in order; invalid ones move to [`Plan::invalid`].
pub fn pack(offers: &[Offer], pending: &mut Vec<TaskSpec>) -> Plan {
    let mut remainders: Vec<Option<Resources>> = offers
        .iter()
        .map(|offer| match Resources::try_from(offer.resources.clone()) {
            Ok(resources) => Some(resources),
            Err(err) => {
                warn!(offer_id = %offer.id, error = %err, "offer has invalid resources, not packing into it");
                None
            }
        })
        .collect();
    let mut plan = Plan::new();
    // In place: the specs that fit nowhere (most of a long list) are only moved to close the
    // gaps the others leave, not copied into a new list at every offer.
    pending.retain(|spec| {
        if let Err(err) = spec.validate() {
            plan.invalid.push((spec.clone(), err));
            return false;
        }
        let placed = offers
            .iter()
            .zip(remainders.iter_mut())
            .find_map(|(offer, remainder)| {
                let remainder = remainder.as_mut()?;
                if let Some(role) = spec.required_role()
                    && offer_role(offer) != Some(role)
                {
                    return None;
                }
                if !may_fit(remainder, spec) {
                    return None;
                }
                let taken = take(remainder, spec)?;
                *remainder -= &taken;
                Some((offer, taken))
            });
        match placed {
            Some((offer, taken)) => match spec.to_task_info(&offer.agent_id, &taken) {
                Ok(task) => {
                    plan.launch(offer, vec![task]);
                }
                Err(err) => plan.invalid.push((spec.clone(), err)),
            },
            None => return true,
        }
        false
    });
    plan
}

/// Returns the role an offer is made for.
fn offer_role(offer: &Offer) -> Option<&str> {
    offer.allocation_info.as_ref()?.role.as_deref()
}

/// Returns false if `remainder` surely lacks a scalar `spec` needs: [`take`] never uses more
/// of a resource than its total, so it would fail too. Most pending specs fit nowhere once
/// the offers are full, and this answers for them without copying the remainder.
fn may_fit(remainder: &Resources, spec: &TaskSpec) -> bool {
    spec.scalar_demand_iter().all(|(name, amount)| {
        let total = remainder.scalar(name).unwrap_or(0.0);
        // Two epsilons of slack keep rounding in `take`'s sums from ever mattering.
        total >= amount - 2.0 * EPSILON
    })
}

/// Returns the resources `spec` would use out of `remainder`, or `None` if they are not there.
fn take(remainder: &Resources, spec: &TaskSpec) -> Option<Resources> {
    let mut taken = Resources::new();
    // Reserved resources first: they are the role's own, and unreserved ones stay shareable.
    let mut candidates: Vec<Resource> = remainder.iter().collect();
    candidates.sort_by_key(|resource| !resource.is_reserved(None));
    for (name, amount) in spec.scalar_demand_iter() {
        let mut needed = amount;
        for resource in candidates.iter().filter(|r| r.name == name) {
            let Some(Scalar { value: available }) = resource.scalar else {
                continue;
            };
            let used = available.min(needed);
            if used < EPSILON {
                continue;
            }
            let mut piece = resource.clone();
            piece.scalar = Some(Scalar { value: used });
            taken += &piece;
            needed -= used;
            if needed < EPSILON {
                break;
            }
        }
        if needed >= EPSILON {
            return None;
        }
    }
    let mut n_ports = spec.n_ports();
    for resource in candidates.iter().filter(|r| r.name == "ports") {
        if n_ports == 0 {
            break;
        }
        let Some(ranges) = &resource.ranges else {
            continue;
        };
        let picked = lowest(ranges, n_ports);
        n_ports -= picked.count();
        let mut piece = resource.clone();
        piece.ranges = Some(picked);
        taken += &piece;
    }
    if n_ports > 0 {
        return None;
    }
    // The pieces were cut from `remainder`, so this holds unless rounding betrayed us.
    remainder.contains(&taken).then_some(taken)
}

/// Returns the lowest `n` values of `ranges` (fewer if they hold fewer), as ranges.
fn lowest(ranges: &Ranges, n: u64) -> Ranges {
    let mut sorted = ranges.range.clone();
    sorted.sort();
    let mut picked = Vec::new();
    let mut left = n;
    for range in sorted {
        if left == 0 {
            break;
        }
        let span = range.end - range.begin + 1;
        let used = span.min(left);
        picked.push(Range {
            begin: range.begin,
            end: range.begin + used - 1,
        });
        left -= used;
    }
    Ranges { range: picked }
}

#[cfg(test)]
mod tests {
    use strata_protocol::ids::FrameworkId;
    use strata_protocol::resources::AllocationInfo;

    use super::*;

    fn offer(id: &str, agent: &str, resources: &str, role: &str) -> Offer {
        let mut resources = Resources::parse(resources, "*").unwrap();
        resources.allocate(role);
        Offer {
            id: OfferId::new(id).unwrap(),
            framework_id: FrameworkId::new("f").unwrap(),
            agent_id: AgentId::new(agent).unwrap(),
            hostname: "h".into(),
            url: None,
            domain: None,
            resources: resources.to_wire(),
            attributes: Vec::new(),
            executor_ids: Vec::new(),
            unavailability: None,
            allocation_info: Some(AllocationInfo {
                role: Some(role.into()),
            }),
        }
    }

    fn task_resources(task: &TaskInfo) -> Resources {
        Resources::try_from(task.resources.clone()).unwrap()
    }

    #[test]
    fn first_fit_fills_the_first_offer_then_the_next_and_keeps_what_fits_nowhere() {
        let offers = vec![
            offer("o1", "a1", "cpus:1;mem:128", "*"),
            offer("o2", "a2", "cpus:2;mem:1024", "*"),
        ];
        let mut pending = vec![
            TaskSpec::command("t1", "true").cpus(0.5).mem_mb(64.0),
            TaskSpec::command("t2", "true").cpus(0.5).mem_mb(64.0),
            TaskSpec::command("t3", "true").cpus(0.5).mem_mb(64.0),
            TaskSpec::command("huge", "true").cpus(8.0),
        ];
        let plan = pack(&offers, &mut pending);
        let placed: Vec<(&str, &str)> = plan
            .launches()
            .iter()
            .flat_map(|l| {
                l.tasks
                    .iter()
                    .map(move |t| (l.offer_id.as_str(), t.task_id.as_str()))
            })
            .collect();
        assert_eq!(placed, vec![("o1", "t1"), ("o1", "t2"), ("o2", "t3")]);
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].name(), "huge");
        assert!(plan.invalid.is_empty());
        // Every task carries the offer's allocation, as the master requires.
        for task in plan.tasks() {
            let resources = task_resources(task);
            assert_eq!(
                resources.allocations().keys().collect::<Vec<_>>(),
                vec!["*"]
            );
        }
    }

    #[test]
    fn tasks_never_take_more_than_the_offer_has() {
        let offers = vec![offer("o1", "a1", "cpus:1;mem:100", "*")];
        let mut pending: Vec<TaskSpec> = (0..5)
            .map(|i| {
                TaskSpec::command(format!("t{i}"), "true")
                    .cpus(0.3)
                    .mem_mb(30.0)
            })
            .collect();
        let plan = pack(&offers, &mut pending);
        assert_eq!(plan.tasks().count(), 3);
        let mut used = Resources::new();
        for task in plan.tasks() {
            used += &task_resources(task);
        }
        let offered = Resources::try_from(offers[0].resources.clone()).unwrap();
        assert!(offered.contains(&used));
        assert_eq!(pending.len(), 2);
    }

    #[test]
    fn ports_are_the_lowest_free_ones_and_not_shared() {
        let offers = vec![offer(
            "o1",
            "a1",
            "cpus:4;mem:512;ports:[31000-31001,31005-31010]",
            "*",
        )];
        let mut pending = vec![
            TaskSpec::command("a", "true").cpus(0.1).ports(3),
            TaskSpec::command("b", "true").cpus(0.1).ports(2),
            TaskSpec::command("c", "true").cpus(0.1).ports(10),
        ];
        let plan = pack(&offers, &mut pending);
        let tasks: Vec<&TaskInfo> = plan.tasks().collect();
        assert_eq!(tasks.len(), 2);
        let ports_a = task_resources(tasks[0]).ports().unwrap();
        let ports_b = task_resources(tasks[1]).ports().unwrap();
        assert_eq!(ports_a.to_string(), "[31000-31001,31005-31005]");
        assert_eq!(ports_b.to_string(), "[31006-31007]");
        assert_eq!(pending[0].name(), "c");
    }

    #[test]
    fn role_bound_specs_only_go_to_offers_for_their_role() {
        let offers = vec![
            offer("o1", "a1", "cpus:4;mem:512", "*"),
            offer("o2", "a1", "cpus:4;mem:512", "dev"),
        ];
        let mut pending = vec![TaskSpec::command("t", "true").cpus(1.0).role("dev")];
        let plan = pack(&offers, &mut pending);
        assert_eq!(plan.launches().len(), 1);
        assert_eq!(plan.launches()[0].offer_id.as_str(), "o2");
        let resources = task_resources(&plan.launches()[0].tasks[0]);
        assert_eq!(
            resources.allocations().keys().collect::<Vec<_>>(),
            vec!["dev"]
        );
    }

    #[test]
    fn reserved_resources_are_used_before_unreserved_ones() {
        let mut resources = Resources::parse("cpus:1;cpus(dev):1;mem:256", "*").unwrap();
        resources.allocate("dev");
        let mut o = offer("o1", "a1", "cpus:1", "dev");
        o.resources = resources.to_wire();
        let mut pending = vec![TaskSpec::command("t", "true").cpus(1.5).mem_mb(10.0)];
        let plan = pack(&[o], &mut pending);
        let used = task_resources(&plan.launches()[0].tasks[0]);
        assert_eq!(used.reserved("dev").cpus(), Some(1.0));
        assert_eq!(used.unreserved().cpus(), Some(0.5));
    }

    #[test]
    fn invalid_specs_leave_pending_with_their_reason() {
        let offers = vec![offer("o1", "a1", "cpus:1;mem:128", "*")];
        let mut pending = vec![TaskSpec::command("bad/id", "true").cpus(0.1)];
        let plan = pack(&offers, &mut pending);
        assert!(pending.is_empty());
        assert!(plan.is_empty());
        assert_eq!(plan.invalid.len(), 1);
        assert!(plan.invalid[0].1.to_string().contains("bad/id"));
    }
}
