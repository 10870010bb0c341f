//! Data sources: external databases to import instances from.

use berth_types::{
    CreateDataSource, DataSource, DataSourceQuery, DataSourceTest, Page, UpdateDataSource,
};
use reqwest::Method;
use uuid::Uuid;

use crate::{Berth, HttpError};

const PATH: &str = "/api/v1/data-sources";

impl Berth {
    pub async fn list_data_sources(
        &self,
        q: &DataSourceQuery,
    ) -> Result<Page<DataSource>, HttpError> {
        self.get_query(PATH, q).await
    }

    pub async fn create_data_source(
        &self,
        req: &CreateDataSource,
    ) -> Result<DataSource, HttpError> {
        self.send(Method::POST, PATH, req).await
    }

    pub async fn get_data_source(&self, id: Uuid) -> Result<DataSource, HttpError> {
        self.get(&format!("{PATH}/{id}")).await
    }

    pub async fn update_data_source(
        &self,
        id: Uuid,
        req: &UpdateDataSource,
    ) -> Result<DataSource, HttpError> {
        self.send(Method::PATCH, &format!("{PATH}/{id}"), req).await
    }

    pub async fn delete_data_source(&self, id: Uuid) -> Result<(), HttpError> {
        self.call(Method::DELETE, &format!("{PATH}/{id}")).await
    }

    /// Connects to the data source from the server and reports what it found.
    pub async fn test_data_source(&self, id: Uuid) -> Result<DataSourceTest, HttpError> {
        self.act(Method::POST, &format!("{PATH}/{id}/test")).await
    }
}
