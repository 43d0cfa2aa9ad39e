//! Offers: turning the allocator's decisions into OFFERS events, DECLINE, rescinds and offer
//! timeouts. An offer's resources stay allocated to its framework until it is accepted,
//! declined or rescinded.

use std::collections::BTreeMap;
use std::time::Duration;

use strata_protocol::mesos::{Filters, Offer};
use strata_protocol::resources::AllocationInfo;
use strata_protocol::scheduler::{Decline, Event, Offers, Rescind};
use strata_protocol::{AgentId, FrameworkId, OfferId, Resources};

use super::{Effect, MasterState, Now, OfferEntry};

impl MasterState {
    /// Runs the allocator and sends each framework one OFFERS event with its new offers.
    pub(super) fn allocate(&mut self, now: Now, out: &mut Vec<Effect>) {
        self.allocation_pending = false;
        self.next_allocation = now.mono + self.config.allocation_interval;
        self.counters.allocation_runs += 1;
        let allocations = self.allocator.allocate(now.mono);
        let mut by_framework: BTreeMap<FrameworkId, Vec<Offer>> = BTreeMap::new();
        for allocation in allocations {
            let offer_id =
                OfferId::new(self.next_id('O')).expect("master-assigned offer IDs are valid");
            let Some(agent) = self.agents.get(&allocation.agent_id) else {
                tracing::error!(agent_id = %allocation.agent_id, "allocator offered an unknown agent");
                continue;
            };
            let executor_ids = agent
                .executors
                .keys()
                .filter(|(framework_id, _)| framework_id == &allocation.framework_id)
                .map(|(_, executor_id)| executor_id.clone())
                .collect();
            let offer = Offer {
                id: offer_id.clone(),
                framework_id: allocation.framework_id.clone(),
                agent_id: allocation.agent_id.clone(),
                hostname: agent.info.hostname.clone(),
                url: None,
                domain: None,
                resources: allocation.resources.to_wire(),
                attributes: agent.info.attributes.clone(),
                executor_ids,
                unavailability: None,
                allocation_info: Some(AllocationInfo {
                    role: Some(allocation.role.clone()),
                }),
            };
            self.offers.insert(
                offer_id.clone(),
                OfferEntry {
                    framework_id: allocation.framework_id.clone(),
                    agent_id: allocation.agent_id,
                    role: allocation.role,
                    resources: allocation.resources,
                    expires: self.config.offer_timeout.map(|timeout| now.mono + timeout),
                },
            );
            if let Some(framework) = self.frameworks.get_mut(&allocation.framework_id) {
                framework.offers.insert(offer_id);
            }
            by_framework
                .entry(allocation.framework_id)
                .or_default()
                .push(offer);
        }
        for (framework_id, offers) in by_framework {
            self.counters.offers_sent += offers.len() as u64;
            self.send_to_framework(&framework_id, Event::Offers(Offers { offers }), out);
        }
    }

    /// Removes an outstanding offer from the books, returning it.
    pub(super) fn take_offer(&mut self, offer_id: &OfferId) -> Option<OfferEntry> {
        let offer = self.offers.remove(offer_id)?;
        if let Some(framework) = self.frameworks.get_mut(&offer.framework_id) {
            framework.offers.remove(offer_id);
        }
        Some(offer)
    }

    /// Gives resources a framework held back to the allocator, optionally refusing them to it
    /// for a while: a refusal lasts at least until the next batch allocation run.
    pub(super) fn recover_resources(
        &mut self,
        now: Now,
        framework_id: &FrameworkId,
        agent_id: &AgentId,
        resources: &Resources,
        refuse: Option<Duration>,
    ) {
        // The run this recovery asks for would otherwise offer refused resources straight
        // back: a framework that declines for 0 s (to see its leftovers at the next
        // allocation) would trade offers and declines with the master as fast as they travel
        // while its agents are full. Mesos stretches filters to an allocation interval for the
        // same reason (MESOS-4302); offers that hold more than was refused still go out at once.
        let refuse = refuse.map(|refuse| refuse.max(self.next_allocation.saturating_sub(now.mono)));
        if let Err(err) =
            self.allocator
                .recover_resources(framework_id, agent_id, resources, refuse, now.mono)
        {
            tracing::error!(%framework_id, %agent_id, error = %err, "allocator refused to recover resources");
        }
        self.allocation_pending = true;
    }

    /// Gives the resources of a task or executor that ended back to the allocator (from what the
    /// framework uses, not from its outstanding offers).
    pub(super) fn recover_used(
        &mut self,
        _now: Now,
        framework_id: &FrameworkId,
        agent_id: &AgentId,
        resources: &Resources,
    ) {
        if let Err(err) = self
            .allocator
            .recover_used(framework_id, agent_id, resources)
        {
            tracing::error!(%framework_id, %agent_id, error = %err, "allocator refused to recover a finished task's resources");
        }
        self.allocation_pending = true;
    }

    /// Returns the refusal a `Filters` asks for.
    pub(super) fn refusal(&self, filters: Option<&Filters>) -> Duration {
        self.allocator
            .config()
            .refuse_duration(filters.and_then(|f| f.refuse_seconds))
    }

    pub(super) fn decline(&mut self, now: Now, framework_id: &FrameworkId, decline: Decline) {
        let refuse = self.refusal(decline.filters.as_ref());
        for offer_id in decline.offer_ids {
            match self.offers.get(&offer_id) {
                Some(offer) if &offer.framework_id == framework_id => {
                    let offer = self.take_offer(&offer_id).expect("just looked up");
                    self.recover_resources(
                        now,
                        framework_id,
                        &offer.agent_id,
                        &offer.resources,
                        Some(refuse),
                    );
                    self.counters.offers_declined += 1;
                }
                _ => {
                    tracing::debug!(%framework_id, %offer_id, "ignoring decline of an offer that is not outstanding");
                }
            }
        }
    }

    /// Withdraws an offer: its resources go back to the allocator, and the framework is told
    /// when `notify` is set (it is not when the framework itself is gone or failing over).
    pub(super) fn rescind_offer(
        &mut self,
        now: Now,
        offer_id: &OfferId,
        notify: bool,
        out: &mut Vec<Effect>,
    ) {
        let Some(offer) = self.take_offer(offer_id) else {
            return;
        };
        self.recover_resources(
            now,
            &offer.framework_id,
            &offer.agent_id,
            &offer.resources,
            None,
        );
        self.counters.offers_rescinded += 1;
        if notify {
            let event = Event::Rescind(Rescind {
                offer_id: offer_id.clone(),
            });
            self.send_to_framework(&offer.framework_id, event, out);
        }
    }

    pub(super) fn remove_framework_offers(
        &mut self,
        now: Now,
        framework_id: &FrameworkId,
        notify: bool,
        out: &mut Vec<Effect>,
    ) {
        let offer_ids: Vec<OfferId> = match self.frameworks.get(framework_id) {
            Some(framework) => framework.offers.iter().cloned().collect(),
            None => return,
        };
        for offer_id in offer_ids {
            self.rescind_offer(now, &offer_id, notify, out);
        }
    }

    /// Rescinds every offer of an agent's resources (it went away, or stopped being offered).
    pub(super) fn remove_agent_offers(
        &mut self,
        now: Now,
        agent_id: &AgentId,
        out: &mut Vec<Effect>,
    ) {
        let offer_ids: Vec<OfferId> = self
            .offers
            .iter()
            .filter(|(_, offer)| &offer.agent_id == agent_id)
            .map(|(offer_id, _)| offer_id.clone())
            .collect();
        for offer_id in offer_ids {
            self.rescind_offer(now, &offer_id, true, out);
        }
    }

    pub(super) fn expire_offers(&mut self, now: Now, out: &mut Vec<Effect>) {
        let expired: Vec<OfferId> = self
            .offers
            .iter()
            .filter(|(_, offer)| offer.expires.is_some_and(|at| at <= now.mono))
            .map(|(offer_id, _)| offer_id.clone())
            .collect();
        for offer_id in expired {
            tracing::debug!(%offer_id, "offer timed out");
            self.rescind_offer(now, &offer_id, true, out);
        }
    }
}
