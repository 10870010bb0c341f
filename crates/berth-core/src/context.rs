//! Who is on the other end of the current request (address, user agent), carried in a
//! task-local so the audit log can record it without every operation taking it as a parameter.
//! The HTTP layer sets it once per request; background work has none.

use std::future::Future;

use crate::ClientInfo;

tokio::task_local! {
    static CLIENT: ClientInfo;
}

/// Runs `f` with `client` as the current request's client.
pub async fn with_client<F: Future>(client: ClientInfo, f: F) -> F::Output {
    CLIENT.scope(client, f).await
}

pub(crate) fn current_client() -> Option<ClientInfo> {
    CLIENT.try_with(Clone::clone).ok()
}
