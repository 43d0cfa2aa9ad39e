//! Operator calls that change the master: TEARDOWN, weights and quota. The agent calls
//! (MARK_AGENT_GONE, DRAIN_AGENT, ...) live with the agents.

use std::collections::BTreeMap;

use strata_protocol::FrameworkId;

use super::{Effect, MasterState, Now, OperatorError};
use crate::registry::RegistryOp;

impl MasterState {
    /// TEARDOWN by the operator: removes the framework and kills its tasks.
    pub fn teardown(
        &mut self,
        now: Now,
        framework_id: &FrameworkId,
        out: &mut Vec<Effect>,
    ) -> Result<(), OperatorError> {
        if !self.frameworks.contains_key(framework_id) {
            return Err(OperatorError::NotFound(format!(
                "framework {framework_id} is not subscribed"
            )));
        }
        self.remove_framework(now, framework_id, "torn down by the operator", out);
        Ok(())
    }

    /// UPDATE_WEIGHTS: all or nothing; every weight must be above zero. The weights are
    /// registered, so they survive a master restart.
    pub fn update_weights(
        &mut self,
        weights: BTreeMap<String, f64>,
        out: &mut Vec<Effect>,
    ) -> Result<(), OperatorError> {
        self.allocator
            .update_weights(weights)
            .map_err(|err| OperatorError::BadRequest(err.to_string()))?;
        out.push(Effect::Registry(RegistryOp::UpdateWeights(
            self.allocator.weights().clone(),
        )));
        self.allocation_pending = true;
        Ok(())
    }

    /// UPDATE_QUOTA: sets limits per role (scalar name to amount), registers them, and rescinds
    /// the offers a lowered limit no longer covers.
    pub fn update_quota(
        &mut self,
        now: Now,
        limits: BTreeMap<String, BTreeMap<String, f64>>,
        out: &mut Vec<Effect>,
    ) -> Result<(), OperatorError> {
        let rescinds = self
            .allocator
            .update_quota(limits)
            .map_err(|err| OperatorError::BadRequest(err.to_string()))?;
        out.push(Effect::Registry(RegistryOp::UpdateQuota(
            self.allocator.quotas().clone(),
        )));
        for rescind in rescinds {
            let offer_ids: Vec<_> = self
                .offers
                .iter()
                .filter(|(_, offer)| {
                    offer.framework_id == rescind.framework_id
                        && offer.agent_id == rescind.agent_id
                        && offer.role == rescind.role
                })
                .map(|(offer_id, _)| offer_id.clone())
                .collect();
            for offer_id in offer_ids {
                self.rescind_offer(now, &offer_id, true, out);
            }
        }
        self.allocation_pending = true;
        Ok(())
    }
}
