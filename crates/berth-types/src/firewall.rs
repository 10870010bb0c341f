//! Firewall rules: the addresses an instance accepts TCP connections from.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FirewallRule {
    pub id: Uuid,
    pub instance_id: Uuid,
    /// The network, normalised (`10.1.0.0/16`, `2001:db8::/32`; a single address is a /32 or
    /// /128).
    pub cidr: String,
    pub description: String,
    pub created_at: DateTime<Utc>,
}

/// A rule to add: one address or network, IPv4 or IPv6.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateFirewallRule {
    /// `203.0.113.7`, `10.0.0.0/8`, `2001:db8::/32`. At least a /8 (IPv4) or a /16 (IPv6).
    #[schema(min_length = 1, max_length = 64, example = "203.0.113.0/24")]
    pub cidr: String,
    /// Up to 200 characters.
    #[serde(default)]
    #[schema(max_length = 200)]
    pub description: String,
}

/// A rule added, and the job that applies it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FirewallRuleAccepted {
    pub rule: FirewallRule,
    pub job_id: Uuid,
}

/// A rule removed, and the job that applies the change.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FirewallChange {
    pub job_id: Uuid,
}
