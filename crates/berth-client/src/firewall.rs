//! Firewall rules of an instance.

use berth_types::{CreateFirewallRule, FirewallChange, FirewallRule, FirewallRuleAccepted, Page};
use reqwest::Method;
use uuid::Uuid;

use crate::{Berth, HttpError};

fn rules_path(instance: Uuid) -> String {
    format!("/api/v1/instances/{instance}/firewall-rules")
}

impl Berth {
    pub async fn list_firewall_rules(
        &self,
        instance: Uuid,
    ) -> Result<Page<FirewallRule>, HttpError> {
        self.get(&rules_path(instance)).await
    }

    /// Adds a rule; the job in the answer applies it.
    pub async fn add_firewall_rule(
        &self,
        instance: Uuid,
        rule: &CreateFirewallRule,
    ) -> Result<FirewallRuleAccepted, HttpError> {
        self.send(Method::POST, &rules_path(instance), rule).await
    }

    /// Removes a rule; the job in the answer applies the change.
    pub async fn delete_firewall_rule(
        &self,
        instance: Uuid,
        rule: Uuid,
    ) -> Result<FirewallChange, HttpError> {
        self.act(Method::DELETE, &format!("{}/{rule}", rules_path(instance)))
            .await
    }
}
