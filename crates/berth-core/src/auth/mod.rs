//! How a presented credential becomes a [`Principal`](crate::Principal), and everything that
//! issues, rotates or revokes credentials: password sign-in and its throttling, sessions and
//! token pairs, API keys, API clients, user tokens, the OAuth endpoints (token, device grant,
//! exchange), trusted external issuers (`federation`), the signing keys, and the cache of
//! authenticated principals. Deciding what a principal may do is `authz`'s business, not this.

pub(crate) mod api_keys;
pub(crate) mod authenticate;
pub(crate) mod cache;
pub(crate) mod clients;
pub(crate) mod device;
pub(crate) mod exchange;
pub(crate) mod federation;
pub(crate) mod keyring;
pub(crate) mod login;
pub(crate) mod oauth;
pub(crate) mod ratelimit;
pub(crate) mod tokens;
pub(crate) mod user_tokens;
