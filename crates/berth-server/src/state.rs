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

    /// Turns the app layer's page queries into absolute URLs for `path`.
    pub fn page<T>(&self, path: &str, mut page: berth_types::Page<T>) -> berth_types::Page<T> {
        page.next = page.next.map(|q| self.url(path, Some(&q)));
        page.previous = page.previous.map(|q| self.url(path, Some(&q)));
        page
    }
}
