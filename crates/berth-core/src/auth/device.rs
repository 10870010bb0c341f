//! The device authorization grant (RFC 8628), as used by `berth login`: the CLI asks for a
//! device code, the user approves the request on the activation page, the CLI polls.

use berth_auth::secret::{self, SecretKind};
use berth_store::credentials::clients::ClientRow;
use berth_store::credentials::device::NewDevice;
use berth_types::{DeviceAuthorization, DeviceForm, DeviceRequest, Permission};
use uuid::Uuid;

use crate::audit::Event;
use crate::auth::oauth::BasicAuth;
use crate::auth::tokens::{NewFamily, TokenPair};
use crate::{App, AppError, Principal};

/// RFC 8628 §6.1: consonants only, so codes spell no words and survive being read aloud.
const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
const USER_CODE_LEN: usize = 8;
/// Each `slow_down` adds this to the client's interval (RFC 8628 §3.5).
const SLOW_DOWN_STEP: i32 = 5;

/// `abcd-efgh`, `ABCDEFGH` and ` ABCD EFGH ` all name the same code; anything else is no code.
pub fn normalize_user_code(s: &str) -> Option<String> {
    let code: String = s
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == USER_CODE_LEN && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)))
        .then_some(code)
}

pub fn format_user_code(code: &str) -> String {
    format!("{}-{}", &code[..4], &code[4..])
}

fn generate_user_code() -> String {
    let mut code = String::with_capacity(USER_CODE_LEN);
    while code.len() < USER_CODE_LEN {
        for b in berth_auth::random_bytes::<16>() {
            // Rejection sampling keeps every letter equally likely (240 = 12 × 20).
            if b < 240 && code.len() < USER_CODE_LEN {
                code.push(USER_CODE_ALPHABET[(b % 20) as usize] as char);
            }
        }
    }
    code
}

/// The interval a poll must respect and whether it came too early.
pub fn poll_decision(since_last_poll_secs: Option<f64>, interval: i32) -> (bool, i32) {
    match since_last_poll_secs {
        Some(elapsed) if elapsed < f64::from(interval) => (true, interval + SLOW_DOWN_STEP),
        _ => (false, interval),
    }
}

impl App {
    pub async fn device_authorize(
        &self,
        form: &DeviceForm,
        basic: Option<&BasicAuth>,
    ) -> Result<DeviceAuthorization, AppError> {
        let client = self
            .authenticate_client(
                form.client_id.as_deref(),
                form.client_secret.as_deref(),
                basic,
                false,
            )
            .await?;
        if !client
            .grant_types
            .iter()
            .any(|g| g == crate::auth::clients::GRANT_DEVICE)
        {
            return Err(AppError::oauth(
                "unauthorized_client",
                "this client may not use the device flow",
            ));
        }
        let scopes = self.requested_scopes(form.scope.as_deref(), &client.scopes)?;
        let audience = self.requested_audience(form.audience.as_deref())?;
        let o = &self.settings().oauth;
        let device_code = secret::generate(SecretKind::DeviceCode);
        let expires_at = self.now() + chrono::Duration::seconds(o.device_code_ttl_secs as i64);
        let mut attempts = 0;
        let user_code = loop {
            let code = generate_user_code();
            let new = NewDevice {
                id: Uuid::now_v7(),
                device_code_digest: &device_code.digest,
                user_code: &code,
                client_id: &client.client_id,
                scopes: &scopes,
                audience: audience.as_deref(),
                expires_at,
                interval_secs: o.device_poll_interval_secs as i32,
            };
            match berth_store::credentials::device::insert(self.db(), &new).await {
                Ok(()) => break code,
                // 20^8 codes: a clash with a live one is rare; just draw again.
                Err(e) if berth_store::unique_violation(&e).is_some() && attempts < 5 => {
                    attempts += 1
                }
                Err(e) => return Err(e.into()),
            }
        };
        let display = format_user_code(&user_code);
        let verification_uri = format!("{}/activate", self.settings().issuer);
        Ok(DeviceAuthorization {
            device_code: device_code.plaintext,
            verification_uri_complete: format!("{verification_uri}?user_code={display}"),
            verification_uri,
            user_code: display,
            expires_in: o.device_code_ttl_secs as i64,
            interval: o.device_poll_interval_secs as i64,
        })
    }

    /// One poll of the token endpoint with a device code.
    pub(crate) async fn device_code_grant(
        &self,
        client: &ClientRow,
        device_code: &str,
    ) -> Result<TokenPair, AppError> {
        let unknown = || AppError::oauth("invalid_grant", "unknown device code");
        let Some(digest) = secret::parse(SecretKind::DeviceCode, device_code) else {
            self.count_unknown_device_code()?;
            return Err(unknown());
        };
        let mut tx = self.db().begin().await?;
        let Some(row) = berth_store::credentials::device::find_for_poll(&mut *tx, &digest).await?
        else {
            drop(tx);
            self.count_unknown_device_code()?;
            return Err(unknown());
        };
        if row.client_id != client.client_id {
            return Err(unknown());
        }
        let now = self.now();
        match row.status.as_str() {
            "consumed" => {
                return Err(AppError::oauth(
                    "invalid_grant",
                    "this device code has already been used",
                ))
            }
            _ if row.expires_at <= now => {
                return Err(AppError::oauth(
                    "expired_token",
                    "the device code has expired; start again",
                ))
            }
            "denied" => return Err(AppError::oauth("access_denied", "the request was denied")),
            _ => {}
        }
        let since = row
            .last_polled_at
            .map(|t| (now - t).num_milliseconds() as f64 / 1000.0);
        let (too_soon, interval) = poll_decision(since, row.interval_secs);
        berth_store::credentials::device::record_poll(&mut *tx, row.id, interval, now).await?;
        if too_soon {
            tx.commit().await?;
            return Err(AppError::oauth(
                "slow_down",
                format!("poll at most every {interval} seconds"),
            ));
        }
        if row.status == "pending" {
            tx.commit().await?;
            return Err(AppError::oauth(
                "authorization_pending",
                "the user has not approved the request yet",
            ));
        }
        let user_id = row.user_id.ok_or_else(|| {
            AppError::Internal("approved device authorization without user".into())
        })?;
        berth_store::credentials::device::set_status(&mut *tx, row.id, "consumed", None).await?;
        tx.commit().await?;
        let user = berth_store::identity::users::get(self.db(), user_id)
            .await?
            .filter(|u| !u.disabled)
            .ok_or_else(|| AppError::oauth("access_denied", "the approving user is disabled"))?;
        let family = NewFamily {
            kind: "device",
            scopes: &row.scopes,
            client_id: Some(&client.client_id),
            audience: row.audience.as_deref(),
            user_token_id: None,
            refreshable: true,
        };
        self.start_family(user, &family, crate::auth::clients::GRANT_DEVICE)
            .await
    }

    /// Unknown device codes are limited per address, so codes cannot be guessed at speed.
    fn count_unknown_device_code(&self) -> Result<(), AppError> {
        let Some(c) = crate::context::current_client() else {
            return Ok(());
        };
        let per_minute = f64::from(self.settings().oauth.unknown_device_codes_per_minute);
        self.inner
            .limiter
            .take(
                &format!("device-unknown:{}", c.ip),
                per_minute / 60.0,
                per_minute,
            )
            .map_err(|wait| AppError::TooManyRequests {
                retry_after_secs: wait.as_secs().max(1),
            })
    }

    /// The pending request a user code names, for the activation page.
    pub async fn device_request(&self, user_code: &str) -> Result<DeviceRequest, AppError> {
        let code = normalize_user_code(user_code).ok_or(AppError::NotFound("device code"))?;
        let mut tx = self.db().begin().await?;
        let row = berth_store::credentials::device::find_pending_by_user_code(
            &mut *tx,
            &code,
            self.now(),
        )
        .await?
        .ok_or(AppError::NotFound("device code"))?;
        tx.commit().await?;
        let client_name = berth_store::credentials::clients::find(self.db(), &row.client_id)
            .await?
            .map_or(row.client_id.clone(), |c| c.name);
        let scopes = row
            .scopes
            .iter()
            .map(|s| {
                (
                    s.clone(),
                    Permission::parse(s)
                        .map_or("", Permission::description)
                        .to_owned(),
                )
            })
            .collect();
        Ok(DeviceRequest {
            user_code: format_user_code(&code),
            client_id: row.client_id,
            client_name,
            scopes,
            expires_at: row.expires_at,
        })
    }

    /// The signed-in user approves or denies the request a user code names.
    pub async fn device_decide(
        &self,
        p: &Principal,
        user_code: &str,
        approve: bool,
    ) -> Result<(), AppError> {
        let code = normalize_user_code(user_code).ok_or(AppError::NotFound("device code"))?;
        let mut tx = self.db().begin().await?;
        let row = berth_store::credentials::device::find_pending_by_user_code(
            &mut *tx,
            &code,
            self.now(),
        )
        .await?
        .ok_or(AppError::NotFound("device code"))?;
        let status = if approve { "approved" } else { "denied" };
        berth_store::credentials::device::set_status(&mut *tx, row.id, status, Some(p.user_id))
            .await?;
        tx.commit().await?;
        let kind = if approve {
            "device.approved"
        } else {
            "device.denied"
        };
        self.audit(
            Event::new(kind)
                .by(p)
                .client(Some(&row.client_id))
                .target("device_authorization", row.id),
        )
        .await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_normalise() {
        assert_eq!(
            normalize_user_code("bcdf-ghjk").as_deref(),
            Some("BCDFGHJK")
        );
        assert_eq!(
            normalize_user_code(" BCDFGHJK ").as_deref(),
            Some("BCDFGHJK")
        );
        assert_eq!(
            normalize_user_code("BCDF-GHJA"),
            None,
            "vowels are not in the alphabet"
        );
        assert_eq!(normalize_user_code("BCDF"), None);
        let code = generate_user_code();
        assert_eq!(normalize_user_code(&format_user_code(&code)), Some(code));
    }

    #[test]
    fn slow_down_adds_five_seconds_and_the_new_cadence_is_accepted() {
        assert_eq!(poll_decision(None, 5), (false, 5));
        assert_eq!(poll_decision(Some(2.0), 5), (true, 10));
        assert_eq!(poll_decision(Some(10.0), 10), (false, 10));
        assert_eq!(poll_decision(Some(9.9), 10), (true, 15));
    }
}
