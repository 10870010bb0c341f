//! What proves who a caller is, and the state of issuing it: sign-in grants (sessions and token
//! families) with their refresh tokens, API keys, API clients, user tokens, device
//! authorizations, the JWT signing keys, and sign-in throttling.

pub mod api_keys;
pub mod clients;
pub mod device;
pub mod grants;
pub mod login_failures;
pub mod signing_keys;
pub mod user_tokens;

mod owned;
