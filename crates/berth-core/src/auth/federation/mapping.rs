//! Which Berth user a verified external token speaks for: the configured claim, matched against
//! users' emails (case-insensitively, and only when the issuer has not said the address is
//! unverified) or usernames. With `create_users`, an unmatched identity becomes a new user
//! whose password can never be used: they sign in only through their identity provider.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use berth_store::identity::users::{NewUser, UserRow};
use serde_json::Value;
use uuid::Uuid;

use super::verify::Claims;
use super::FederationError;
use crate::audit::Event;
use crate::settings::{MatchBy, TrustedIssuer};
use crate::{validate, App, AppError};

/// How a token's identity is looked up among Berth users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// By `lower(email)`.
    Email(String),
    /// By exact (lowercase) username.
    Username(String),
}

/// What a verified token says about its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    pub lookup: Lookup,
    /// The issuer's `sub`, for the audit trail.
    pub subject: Option<String>,
    /// The address a new user gets, when the token vouches for one.
    pub email: Option<String>,
    /// The username a new user gets (before any suffix).
    pub username: String,
}

/// Reads the identity out of a verified token's claims.
pub(crate) fn identity(
    trusted: &TrustedIssuer,
    claims: &Claims,
) -> Result<Identity, FederationError> {
    let claim = trusted.user_claim.as_str();
    let problem = |problem| FederationError::UserClaim {
        claim: claim.to_owned(),
        problem,
    };
    let value = match claims.get(claim) {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim(),
        Some(Value::String(_)) => return Err(problem("is empty")),
        Some(_) => return Err(problem("is not a string")),
        None => return Err(problem("is missing")),
    };
    let subject = claims
        .get("sub")
        .and_then(Value::as_str)
        .map(|s| s.chars().take(256).collect());
    match trusted.match_by {
        MatchBy::Email => {
            if email_unverified(claims) {
                return Err(FederationError::EmailNotVerified);
            }
            if validate::email(value).is_err() {
                return Err(problem("is not an email address"));
            }
            let local = value.rsplit_once('@').map_or(value, |(local, _)| local);
            Ok(Identity {
                lookup: Lookup::Email(value.to_owned()),
                subject,
                // The new user's email is what later exchanges will match on.
                email: Some(value.to_owned()),
                username: derive_username(local),
            })
        }
        MatchBy::Username => {
            let username = value.to_lowercase();
            if validate::username(&username).is_err() {
                return Err(problem(
                    "is not a valid Berth username (3–64 of a-z, 0-9, '.', '_', '-')",
                ));
            }
            let email = claims
                .get("email")
                .and_then(Value::as_str)
                .filter(|e| validate::email(e).is_ok() && !email_unverified(claims))
                .map(str::to_owned);
            Ok(Identity {
                lookup: Lookup::Username(username.clone()),
                subject,
                email,
                username,
            })
        }
    }
}

/// Whether the issuer says the token's email is unverified (`false`, or `"false"` as some
/// providers send it). Absent means the issuer vouches for addresses it puts in tokens.
fn email_unverified(claims: &Claims) -> bool {
    match claims.get("email_verified") {
        Some(Value::Bool(b)) => !b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("false"),
        _ => false,
    }
}

/// A valid Berth username made from `s`: lowercased, other characters dropped, 3–64 long.
pub(crate) fn derive_username(s: &str) -> String {
    let mut name: String = s
        .chars()
        .flat_map(char::to_lowercase)
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
        .take(64)
        .collect();
    if name.len() < 3 {
        name = if name.is_empty() {
            "user".to_owned()
        } else {
            format!("user-{name}")
        };
    }
    name
}

/// `base` with a short random suffix, still at most 64 characters.
fn with_suffix(base: &str) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let suffix: String = berth_auth::random_bytes::<6>()
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect();
    let keep = 64 - 1 - suffix.len();
    format!("{}-{suffix}", &base[..base.len().min(keep)])
}

/// `<username>@<issuer host>`, for users whose token carries no usable address.
fn placeholder_email(username: &str, issuer: &str) -> String {
    let host = super::discovery::http_url(issuer)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "external".to_owned());
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .replace(':', "-");
    if host.contains('.') {
        format!("{username}@{host}")
    } else {
        format!("{username}@{host}.invalid")
    }
}

impl App {
    /// The user `identity` names, created when the issuer allows it. `true` when created.
    pub(super) async fn federated_user(
        &self,
        trusted: &TrustedIssuer,
        identity: &Identity,
    ) -> Result<(UserRow, bool), AppError> {
        if let Some(user) = self.find_federated(&identity.lookup).await? {
            return Ok((usable(user)?, false));
        }
        if !trusted.create_users {
            return Err(AppError::oauth(
                "invalid_grant",
                format!(
                    "no Berth user matches the subject token's `{}` claim",
                    trusted.user_claim
                ),
            ));
        }
        self.create_federated(trusted, identity).await
    }

    async fn find_federated(&self, lookup: &Lookup) -> Result<Option<UserRow>, AppError> {
        // `find_by_login` matches username OR email; the claim was validated as an email
        // (which no username can equal, having no '@') or as a username (which no email can
        // equal), and the row is re-checked all the same.
        let row =
            berth_store::identity::users::find_by_login(self.db(), lookup_str(lookup)).await?;
        Ok(row.filter(|u| match lookup {
            Lookup::Email(e) => u.email.to_lowercase() == e.to_lowercase(),
            Lookup::Username(n) => &u.username == n,
        }))
    }

    async fn create_federated(
        &self,
        trusted: &TrustedIssuer,
        identity: &Identity,
    ) -> Result<(UserRow, bool), AppError> {
        // Argon2 of 32 random bytes nobody ever sees: password sign-in can never succeed.
        let unusable = B64.encode(berth_auth::random_bytes::<32>());
        let hash = self.inner.hasher.hash(&unusable).await?;
        let mut username = identity.username.clone();
        let mut email = identity.email.clone();
        for _ in 0..5 {
            let address = email
                .clone()
                .unwrap_or_else(|| placeholder_email(&username, &trusted.issuer));
            let new = NewUser {
                id: Uuid::now_v7(),
                username: &username,
                email: &address,
                password_hash: &hash,
                is_platform_admin: false,
            };
            match berth_store::identity::users::insert(self.db(), &new).await {
                Ok(row) => {
                    tracing::info!(
                        issuer = %trusted.issuer,
                        username = %row.username,
                        "created a user on first token exchange"
                    );
                    self.audit(
                        Event::new("user.created")
                            .user(row.id, &row.username)
                            .target("user", row.id)
                            .details(serde_json::json!({
                                "via": "token_exchange",
                                "issuer": trusted.issuer,
                                "subject": identity.subject,
                                "username": row.username,
                            })),
                    )
                    .await;
                    return Ok((row, true));
                }
                Err(e) if berth_store::unique_violation(&e).is_some() => {
                    // A concurrent exchange may have created this very user.
                    if let Some(user) = self.find_federated(&identity.lookup).await? {
                        return Ok((usable(user)?, false));
                    }
                    let on_email =
                        berth_store::unique_violation(&e) == Some("users_email_lower_key");
                    match (&identity.lookup, on_email) {
                        // The token's address belongs to someone else (matched by username).
                        (Lookup::Username(_), true) if email.is_some() => email = None,
                        // Usernames are only cosmetic when matching by email: vary them.
                        (Lookup::Email(_), false) => username = with_suffix(&identity.username),
                        _ => return Err(AppError::oauth(
                            "invalid_grant",
                            "a Berth user with this identity's username or email already exists",
                        )),
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(AppError::oauth(
            "invalid_grant",
            "could not find a free username for this identity",
        ))
    }
}

fn lookup_str(lookup: &Lookup) -> &str {
    match lookup {
        Lookup::Email(s) | Lookup::Username(s) => s,
    }
}

fn usable(user: UserRow) -> Result<UserRow, AppError> {
    if user.disabled {
        return Err(AppError::oauth(
            "invalid_grant",
            "the Berth user this token maps to is disabled",
        ));
    }
    Ok(user)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn trusted(match_by: MatchBy, claim: &str) -> TrustedIssuer {
        TrustedIssuer {
            issuer: "https://idp.example/realms/x".into(),
            audience: "berth".into(),
            user_claim: claim.into(),
            match_by,
            create_users: true,
        }
    }

    fn claims(v: Value) -> Claims {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn email_identities() {
        let t = trusted(MatchBy::Email, "email");
        let id = identity(
            &t,
            &claims(json!({"sub": "s1", "email": "Ada.Lovelace@Example.com"})),
        )
        .unwrap();
        assert_eq!(id.lookup, Lookup::Email("Ada.Lovelace@Example.com".into()));
        assert_eq!(id.email.as_deref(), Some("Ada.Lovelace@Example.com"));
        assert_eq!(id.username, "ada.lovelace");
        assert_eq!(id.subject.as_deref(), Some("s1"));
        let verified = claims(json!({"email": "a@b.example", "email_verified": true}));
        assert!(identity(&t, &verified).is_ok());
        for unverified in [json!(false), json!("false"), json!("FALSE")] {
            let c = claims(json!({"email": "a@b.example", "email_verified": unverified}));
            assert_eq!(identity(&t, &c), Err(FederationError::EmailNotVerified));
        }
        for bad in [
            json!("not-an-email"),
            json!(""),
            json!(["a@b.example"]),
            json!(null),
        ] {
            let c = claims(json!({ "email": bad }));
            assert!(
                matches!(identity(&t, &c), Err(FederationError::UserClaim { .. })),
                "{c:?}"
            );
        }
        assert!(matches!(
            identity(&t, &claims(json!({"sub": "s1"}))),
            Err(FederationError::UserClaim {
                problem: "is missing",
                ..
            })
        ));
        // Another claim can carry the address.
        let upn = trusted(MatchBy::Email, "upn");
        let id = identity(
            &upn,
            &claims(json!({"upn": "bob@corp.example", "email": "x@y.example"})),
        )
        .unwrap();
        assert_eq!(id.lookup, Lookup::Email("bob@corp.example".into()));
    }

    #[test]
    fn username_identities() {
        let t = trusted(MatchBy::Username, "preferred_username");
        let id = identity(
            &t,
            &claims(json!({"preferred_username": "Ada", "email": "ada@example.com"})),
        )
        .unwrap();
        assert_eq!(id.lookup, Lookup::Username("ada".into()));
        assert_eq!(id.username, "ada");
        assert_eq!(id.email.as_deref(), Some("ada@example.com"));
        // An unverified or invalid address is not given to the new user.
        let id = identity(
            &t,
            &claims(json!({"preferred_username": "ada", "email": "ada@example.com", "email_verified": false})),
        )
        .unwrap();
        assert_eq!(id.email, None);
        let id = identity(
            &t,
            &claims(json!({"preferred_username": "ada", "email": "nope"})),
        )
        .unwrap();
        assert_eq!(id.email, None);
        for bad in ["Ada Lovelace", "ab", "ada@example.com", "ädä"] {
            assert!(
                identity(&t, &claims(json!({ "preferred_username": bad }))).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn usernames_are_derived_safely() {
        assert_eq!(derive_username("Ada.Lovelace"), "ada.lovelace");
        assert_eq!(derive_username("o'brien+tag"), "obrientag");
        assert_eq!(derive_username("Jürgen"), "jrgen");
        assert_eq!(derive_username("李"), "user");
        assert_eq!(derive_username("x"), "user-x");
        assert_eq!(derive_username(&"a".repeat(100)).len(), 64);
        for s in ["Ada.Lovelace", "李", "x", "İstanbul", &"b".repeat(300)] {
            assert!(validate::username(&derive_username(s)).is_ok(), "{s}");
            assert!(
                validate::username(&with_suffix(&derive_username(s))).is_ok(),
                "{s}"
            );
        }
        let a = with_suffix("ada");
        assert!(a.starts_with("ada-") && a.len() == 10, "{a}");
        assert_ne!(with_suffix("ada"), with_suffix("ada"));
    }

    #[test]
    fn placeholder_addresses_use_the_issuer_host() {
        let issuer = "https://idp.example/realms/x";
        assert_eq!(placeholder_email("ada", issuer), "ada@idp.example");
        assert_eq!(
            placeholder_email("ada", "http://localhost:8080"),
            "ada@localhost.invalid"
        );
        assert_eq!(
            placeholder_email("ada", "http://127.0.0.1:9"),
            "ada@127.0.0.1"
        );
        assert!(validate::email(&placeholder_email("ada", issuer)).is_ok());
    }
}
