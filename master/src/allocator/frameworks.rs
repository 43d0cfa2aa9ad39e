//! Frameworks as the allocator sees them: subscription to roles, activation, suppression,
//! their own minimum offers, and membership in each role's DRF order.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use strata_protocol::resources::validate_role;
use strata_protocol::{FrameworkId, Resources};

use super::filters::OfferFilters;
use super::quantities::Quantities;
use super::{Allocator, AllocatorError, FrameworkKey};

/// A framework as the allocator sees it.
#[derive(Debug, Clone)]
pub(crate) struct Framework {
    pub(crate) id: FrameworkKey,
    /// False for a placeholder: an agent reported resources used by a framework that has not
    /// subscribed (again) yet, as after a master failover.
    pub(crate) registered: bool,
    pub(crate) active: bool,
    pub(crate) roles: BTreeSet<String>,
    pub(crate) suppressed: BTreeSet<String>,
    pub(crate) filters: OfferFilters,
    /// The `(agent slot, role index)` pairs where the framework holds resources.
    pub(crate) holdings: BTreeSet<(usize, usize)>,
    /// The framework's own minimal allocatable quantities by role index
    /// (`FrameworkInfo.offer_filters`), which replace the configured ones for that role.
    pub(crate) min_allocatable: BTreeMap<usize, Vec<Quantities>>,
}

impl Framework {
    fn new(id: FrameworkKey) -> Framework {
        Framework {
            id,
            registered: false,
            active: false,
            roles: BTreeSet::new(),
            suppressed: BTreeSet::new(),
            filters: OfferFilters::default(),
            holdings: BTreeSet::new(),
            min_allocatable: BTreeMap::new(),
        }
    }

    /// Returns true if the framework may be offered resources in `role`.
    fn wants(&self, role: &str) -> bool {
        self.registered
            && self.active
            && self.roles.contains(role)
            && !self.suppressed.contains(role)
    }
}

impl Allocator {
    /// Adds a framework subscribed to `roles`, with `suppressed_roles` (a subset of `roles`)
    /// suppressed from the start, as SUBSCRIBE allows.
    pub fn add_framework(
        &mut self,
        framework_id: FrameworkId,
        roles: BTreeSet<String>,
        suppressed_roles: BTreeSet<String>,
        active: bool,
    ) -> Result<(), AllocatorError> {
        validate_roles(&roles, &suppressed_roles)?;
        let framework = self.framework_entry(&framework_id);
        if framework.registered {
            return Err(AllocatorError::DuplicateFramework(framework_id));
        }
        framework.registered = true;
        framework.active = active;
        framework.roles = roles;
        framework.suppressed = suppressed_roles;
        self.refresh_eligibility(&framework_id);
        Ok(())
    }

    /// Changes a framework's roles and suppressed roles (UPDATE_FRAMEWORK, resubscription).
    ///
    /// What the framework holds in a role it leaves stays accounted to that role until it is
    /// recovered; the master rescinds those offers. Filters for the roles it leaves are
    /// dropped, as in Mesos.
    pub fn update_framework(
        &mut self,
        framework_id: &FrameworkId,
        roles: BTreeSet<String>,
        suppressed_roles: BTreeSet<String>,
    ) -> Result<(), AllocatorError> {
        validate_roles(&roles, &suppressed_roles)?;
        let framework = self.registered_framework(framework_id)?;
        let left: Vec<String> = framework.roles.difference(&roles).cloned().collect();
        framework.roles = roles;
        framework.suppressed = suppressed_roles;
        let key = framework.id.clone();
        for role in &left {
            if let Some(role_idx) = self.roles.get(role) {
                self.set_eligible(role_idx, &key, false);
                if let Some(framework) = self.frameworks.get_mut(framework_id) {
                    framework.filters.clear_role(role_idx);
                }
            }
        }
        self.refresh_eligibility(framework_id);
        Ok(())
    }

    /// Sets the framework's own minimal allocatable quantities per role, replacing earlier
    /// ones, as `FrameworkInfo.offer_filters` does at SUBSCRIBE and UPDATE_FRAMEWORK: in a
    /// role listed here the framework is offered only what holds one of its quantities (any
    /// non-empty offer if the list is empty) instead of the configured `min_allocatable`.
    pub fn update_min_allocatable(
        &mut self,
        framework_id: &FrameworkId,
        by_role: BTreeMap<String, Vec<Resources>>,
    ) -> Result<(), AllocatorError> {
        let roles: BTreeSet<String> = by_role.keys().cloned().collect();
        validate_roles(&roles, &BTreeSet::new())?;
        self.registered_framework(framework_id)?;
        let mut overrides = BTreeMap::new();
        for (role, minimums) in by_role {
            let role_idx = self.roles.ensure(&role);
            let minimums = minimums
                .iter()
                .map(|minimum| {
                    self.names.intern_all(minimum);
                    self.names.quantities(minimum)
                })
                .collect();
            overrides.insert(role_idx, minimums);
        }
        let framework = self.registered_framework(framework_id)?;
        let had = !framework.min_allocatable.is_empty();
        let has = !overrides.is_empty();
        framework.min_allocatable = overrides;
        self.n_min_allocatable_overrides =
            self.n_min_allocatable_overrides + usize::from(has) - usize::from(had);
        Ok(())
    }

    /// Removes a framework and returns everything it holds (offered and used) to the pool;
    /// the master rescinds its offers and later recoveries for it are ignored.
    pub fn remove_framework(&mut self, framework_id: &FrameworkId) {
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return;
        };
        framework.registered = false;
        self.refresh_eligibility(framework_id);
        let Some(framework) = self.frameworks.remove(framework_id) else {
            return;
        };
        if !framework.min_allocatable.is_empty() {
            self.n_min_allocatable_overrides -= 1;
        }
        for (agent_idx, role_idx) in framework.holdings {
            self.release_holding(agent_idx, &framework.id, role_idx);
        }
    }

    /// Lets a (re)connected framework receive offers again.
    pub fn activate_framework(&mut self, framework_id: &FrameworkId) -> Result<(), AllocatorError> {
        self.registered_framework(framework_id)?.active = true;
        self.refresh_eligibility(framework_id);
        Ok(())
    }

    /// Stops offers to a disconnected framework and drops its filters, as Mesos does; what it
    /// holds stays accounted so that a failed-over scheduler keeps its share.
    pub fn deactivate_framework(
        &mut self,
        framework_id: &FrameworkId,
    ) -> Result<(), AllocatorError> {
        let framework = self.registered_framework(framework_id)?;
        framework.active = false;
        framework.filters.clear();
        self.refresh_eligibility(framework_id);
        Ok(())
    }

    /// Suppresses offers to the framework in `roles` (all its roles when `None`), as SUPPRESS
    /// does. Roles it is not subscribed to are ignored.
    pub fn suppress(
        &mut self,
        framework_id: &FrameworkId,
        roles: Option<BTreeSet<String>>,
    ) -> Result<(), AllocatorError> {
        let framework = self.registered_framework(framework_id)?;
        let roles = roles.unwrap_or_else(|| framework.roles.clone());
        let subscribed: Vec<String> = roles.intersection(&framework.roles).cloned().collect();
        framework.suppressed.extend(subscribed);
        self.refresh_eligibility(framework_id);
        Ok(())
    }

    /// Unsuppresses the framework in `roles` (all its roles when `None`) and drops its filters
    /// for them, so that the next run offers it everything it may have, as REVIVE does.
    pub fn revive(
        &mut self,
        framework_id: &FrameworkId,
        roles: Option<BTreeSet<String>>,
    ) -> Result<(), AllocatorError> {
        let framework = self.registered_framework(framework_id)?;
        let roles = roles.unwrap_or_else(|| framework.roles.clone());
        for role in &roles {
            framework.suppressed.remove(role);
        }
        for role in &roles {
            if let Some(role_idx) = self.roles.get(role)
                && let Some(framework) = self.frameworks.get_mut(framework_id)
            {
                framework.filters.clear_role(role_idx);
            }
        }
        self.refresh_eligibility(framework_id);
        Ok(())
    }

    /// Returns the registered framework, or says it is not known.
    pub(crate) fn registered_framework(
        &mut self,
        framework_id: &FrameworkId,
    ) -> Result<&mut Framework, AllocatorError> {
        self.frameworks
            .get_mut(framework_id)
            .filter(|framework| framework.registered)
            .ok_or_else(|| AllocatorError::UnknownFramework(framework_id.clone()))
    }

    /// Returns the framework, adding an unregistered placeholder if it is not known.
    pub(crate) fn framework_entry(&mut self, framework_id: &FrameworkId) -> &mut Framework {
        let key = match self.frameworks.get(framework_id) {
            Some(framework) => framework.id.clone(),
            None => Arc::new(framework_id.clone()),
        };
        self.frameworks
            .entry(key.clone())
            .or_insert_with(|| Framework::new(key))
    }

    /// Returns the shared key of a known framework.
    pub(crate) fn framework_key(&self, framework_id: &FrameworkId) -> Option<FrameworkKey> {
        self.frameworks
            .get(framework_id)
            .map(|framework| framework.id.clone())
    }

    /// Brings the framework's membership in every role's order in line with its state.
    fn refresh_eligibility(&mut self, framework_id: &FrameworkId) {
        let Some(framework) = self.frameworks.get(framework_id) else {
            return;
        };
        let key = framework.id.clone();
        let mut changes = Vec::new();
        for role in &framework.roles {
            changes.push((role.clone(), framework.wants(role)));
        }
        for (role, eligible) in changes {
            let role_idx = self.roles.ensure(&role);
            self.set_eligible(role_idx, &key, eligible);
        }
    }

    fn set_eligible(&mut self, role_idx: usize, framework_id: &FrameworkKey, eligible: bool) {
        self.roles
            .set_eligible(role_idx, framework_id, eligible, &self.names, &self.total);
    }
}

/// Checks role names and that suppressed roles are among the subscribed ones.
fn validate_roles(
    roles: &BTreeSet<String>,
    suppressed_roles: &BTreeSet<String>,
) -> Result<(), AllocatorError> {
    for role in roles {
        validate_role(role).map_err(|err| AllocatorError::InvalidRole {
            role: role.clone(),
            reason: err.to_string(),
        })?;
    }
    if let Some(role) = suppressed_roles.difference(roles).next() {
        return Err(AllocatorError::InvalidRole {
            role: role.clone(),
            reason: "a suppressed role must be one of the framework's roles".to_owned(),
        });
    }
    Ok(())
}
