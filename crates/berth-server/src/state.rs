//! What every handler shares.

use berth_core::App;
use metrics_exporter_prometheus::PrometheusHandle;

#[derive(Clone)]
pub struct AppState {
    pub app: App,
    pub public_url: url::Url,
    pub metrics: PrometheusHandle,
}

impl AppState {
    /// Absolute URL of `path?query` under the public base URL.
    pub fn url(&self, path: &str, query: Option<&str>) -> String {
        let base = self.public_url.as_str().trim_end_matches('/');
        match query {
            Some(q) => format!("{base}{path}?{q}"),
            None => format!("{base}{path}"),
        }
    }

    /// Turns the app layer's page queries into absolute URLs for `path`, keeping the
    /// request's other query parameters (its filters).
    pub fn page<T>(&self, path: &str, mut page: berth_types::Page<T>) -> berth_types::Page<T> {
        page.next = page.next.map(|q| self.page_url(path, &q));
        page.previous = page.previous.map(|q| self.page_url(path, &q));
        page
    }

    pub fn page_url(&self, path: &str, paging: &str) -> String {
        let filters: Vec<String> = crate::middleware::current_query()
            .unwrap_or_default()
            .split('&')
            .filter(|kv| !kv.is_empty() && !kv.starts_with("limit=") && !kv.starts_with("offset="))
            .map(str::to_owned)
            .collect();
        let query = if filters.is_empty() {
            paging.to_owned()
        } else {
            format!("{}&{paging}", filters.join("&"))
        };
        self.url(path, Some(&query))
    }
}
