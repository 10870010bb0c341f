//! Firewall rules: the networks an instance accepts TCP connections from, enforced by
//! PostgreSQL itself (one `hostssl … scram-sha-256` line of `pg_hba.conf` per rule). Adding or
//! removing one is a `firewall` job that rewrites the file and has the server reread it: at once,
//! and without dropping the connections it has. An instance with no rule accepts nobody over
//! TCP.

use std::net::IpAddr;

use berth_engine::Engine;
use berth_store::fleet::firewall::RuleRow;
use berth_store::fleet::instances::InstanceRow;
use berth_types::{
    CreateFirewallRule, FirewallChange, FirewallRule, FirewallRuleAccepted, JobType, Page,
    Permission,
};
use uuid::Uuid;

use crate::audit::Event;
use crate::{App, AppError, Principal};

/// The widest networks a rule may name: a rule for "everyone" is a choice to make on purpose
/// elsewhere (a proxy, the host's firewall), not one typo away.
const WIDEST_V4: u8 = 8;
const WIDEST_V6: u8 = 16;
/// At most this many rules per instance.
const MAX_RULES: usize = 100;

/// `a.b.c.d`, `a.b.c.d/n`, `x:y::/n`: the network, normalised (host bits cleared), or why not.
pub fn parse_cidr(text: &str) -> Result<String, AppError> {
    let bad = |why: &str| {
        AppError::Validation(format!(
            "cidr `{}` {why}",
            text.chars().take(64).collect::<String>()
        ))
    };
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| bad("is not an IPv4 or IPv6 address or network (e.g. 203.0.113.0/24)"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let prefix: u8 = match prefix {
        None => max,
        Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => p
            .parse()
            .map_err(|_| bad("has a prefix length out of range"))?,
        Some(_) => return Err(bad("has a prefix length that is not a number")),
    };
    if prefix > max {
        return Err(bad(&format!("has a prefix length above {max}")));
    }
    let widest = if ip.is_ipv4() { WIDEST_V4 } else { WIDEST_V6 };
    if prefix < widest {
        return Err(bad(&format!(
            "is too broad: at most a /{widest} for {}",
            if ip.is_ipv4() { "IPv4" } else { "IPv6" }
        )));
    }
    let network = match ip {
        IpAddr::V4(v4) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::from(std::net::Ipv4Addr::from(u32::from(v4) & mask))
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::from(std::net::Ipv6Addr::from(u128::from(v6) & mask))
        }
    };
    Ok(format!("{network}/{prefix}"))
}

fn description(text: &str) -> Result<String, AppError> {
    if text.chars().count() > 200 || text.chars().any(char::is_control) {
        return Err(AppError::Validation(
            "description must be at most 200 characters, without control characters".into(),
        ));
    }
    Ok(text.to_owned())
}

fn view(r: RuleRow) -> FirewallRule {
    FirewallRule {
        id: r.id,
        instance_id: r.instance_id,
        cidr: r.cidr,
        description: r.description,
        created_at: r.created_at,
    }
}

impl App {
    /// The rules a create asks for (or the server's default), validated.
    pub(crate) fn initial_rules(
        &self,
        asked: Option<&[CreateFirewallRule]>,
    ) -> Result<Vec<(String, String)>, AppError> {
        let rules: Vec<(String, String)> = match asked {
            Some(rules) => rules
                .iter()
                .map(|r| Ok((parse_cidr(&r.cidr)?, description(&r.description)?)))
                .collect::<Result<_, AppError>>()?,
            None => self
                .instance_settings()
                .default_firewall_rules
                .iter()
                .map(|c| (c.clone(), "the server's default".to_owned()))
                .collect(),
        };
        if rules.len() > MAX_RULES {
            return Err(AppError::Validation(format!(
                "at most {MAX_RULES} firewall rules per instance"
            )));
        }
        let mut seen = std::collections::HashSet::new();
        if let Some((c, _)) = rules.iter().find(|(c, _)| !seen.insert(c.clone())) {
            return Err(AppError::Validation(format!("cidr `{c}` is listed twice")));
        }
        Ok(rules)
    }

    pub async fn list_firewall_rules(
        &self,
        p: &Principal,
        instance: Uuid,
    ) -> Result<Page<FirewallRule>, AppError> {
        let id = self
            .authorize_instance(p, instance, Permission::InstancesRead)
            .await?
            .id();
        let rules: Vec<FirewallRule> = berth_store::fleet::firewall::list(self.db(), id)
            .await?
            .into_iter()
            .map(view)
            .collect();
        // At most MAX_RULES: one page.
        Ok(crate::page(rules.len() as i64, 500, 0, rules))
    }

    /// Adds a rule and enqueues the job that applies it, together.
    pub async fn add_firewall_rule(
        &self,
        p: &Principal,
        instance: Uuid,
        req: &CreateFirewallRule,
    ) -> Result<FirewallRuleAccepted, AppError> {
        let id = self
            .authorize_instance(p, instance, Permission::InstancesWrite)
            .await?
            .id();
        let cidr = parse_cidr(&req.cidr)?;
        let text = description(&req.description)?;
        let mut tx = self.db().begin().await?;
        let row = self.lock_instance(&mut tx, id).await?;
        if berth_store::fleet::firewall::list(&mut *tx, id)
            .await?
            .len()
            >= MAX_RULES
        {
            return Err(AppError::Validation(format!(
                "an instance has at most {MAX_RULES} firewall rules; remove one first"
            )));
        }
        let rule = berth_store::fleet::firewall::insert(
            &mut *tx,
            Uuid::now_v7(),
            id,
            &cidr,
            &text,
            Some(p.user_id),
        )
        .await
        .map_err(|e| AppError::clash(e, &cidr))?;
        let job = self
            .commit_change(
                tx,
                &row,
                JobType::Firewall,
                serde_json::json!({}),
                p,
                Event::new("firewall_rule.created")
                    .details(serde_json::json!({ "rule_id": rule.id, "cidr": cidr })),
            )
            .await?;
        Ok(FirewallRuleAccepted {
            rule: view(rule),
            job_id: job,
        })
    }

    pub async fn delete_firewall_rule(
        &self,
        p: &Principal,
        instance: Uuid,
        rule: Uuid,
    ) -> Result<FirewallChange, AppError> {
        let id = self
            .authorize_instance(p, instance, Permission::InstancesWrite)
            .await?
            .id();
        let mut tx = self.db().begin().await?;
        let row = self.lock_instance(&mut tx, id).await?;
        if !berth_store::fleet::firewall::delete(&mut *tx, id, rule).await? {
            return Err(AppError::NotFound("firewall rule"));
        }
        let job = self
            .commit_change(
                tx,
                &row,
                JobType::Firewall,
                serde_json::json!({}),
                p,
                Event::new("firewall_rule.deleted").details(serde_json::json!({ "rule_id": rule })),
            )
            .await?;
        Ok(FirewallChange { job_id: job })
    }

    /// Makes the engine accept exactly the instance's rules.
    pub(crate) async fn apply_firewall(
        &self,
        engine: &dyn Engine,
        row: &InstanceRow,
    ) -> Result<(), AppError> {
        let networks: Vec<String> = berth_store::fleet::firewall::list(self.db(), row.id)
            .await?
            .into_iter()
            .map(|r| r.cidr)
            .collect();
        engine.set_access(row.id, &networks).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_are_normalised_and_bounded() {
        let ok = |s: &str| parse_cidr(s).unwrap();
        assert_eq!(ok("203.0.113.7"), "203.0.113.7/32");
        assert_eq!(ok("10.1.2.3/8"), "10.0.0.0/8");
        assert_eq!(ok("192.168.1.77/24"), "192.168.1.0/24");
        assert_eq!(ok("2001:db8::1"), "2001:db8::1/128");
        assert_eq!(ok("2001:db8:abcd::/32"), "2001:db8::/32");
        assert_eq!(ok("::1/128"), "::1/128");
        for bad in [
            "",
            "0.0.0.0/0",
            "10.0.0.0/7",
            "::/0",
            "2001::/15",
            "10.0.0.0/33",
            "::1/129",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "10.0.0.0/08x",
            "10.0.0",
            "host",
            "10.0.0.0/8 ",
            "10.0.0.0/8\nhost all",
            "1.2.3.4/ 8",
            "::ffff:1.2.3.4/200",
        ] {
            assert!(parse_cidr(bad).is_err(), "{bad:?}");
        }
        assert!(parse_cidr("0.0.0.0/0")
            .unwrap_err()
            .to_string()
            .contains("too broad"));
    }
}
