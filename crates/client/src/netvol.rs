//! Typed calls for networks and volumes, with the paths and queries the docker CLI sends.

use hyper::Method;
use serde_json::Value;

use crate::{Client, ClientError, MAX_ERROR_BODY, empty_body, json_body, read_all};

/// The most of a list or inspect answer that is read.
const MAX_BODY: usize = 64 << 20;

fn filters_query(filters: &berth_reference::Filters) -> Vec<(&'static str, String)> {
    (!filters.is_empty())
        .then(|| ("filters", filters.to_json()))
        .into_iter()
        .collect()
}

impl Client {
    /// `GET {path}` as the daemon wrote it (field order kept for inspect output).
    pub async fn get_raw(&self, path: &str) -> Result<Vec<u8>, ClientError> {
        let response = self
            .request(Method::GET, path, &[], empty_body(), &[])
            .await?;
        read_all(response.into_body(), MAX_BODY).await
    }

    /// `GET /networks`.
    pub async fn networks(
        &self,
        filters: &berth_reference::Filters,
    ) -> Result<Vec<Value>, ClientError> {
        self.get_json("/networks", &filters_query(filters)).await
    }

    /// `POST /networks/create`; the answer (`Id`, `Warning`).
    pub async fn network_create(&self, body: &Value) -> Result<Value, ClientError> {
        self.post_json("/networks/create", &[], body).await
    }

    /// `DELETE /networks/{id}`.
    pub async fn network_remove(&self, id: &str) -> Result<(), ClientError> {
        self.delete(&format!("/networks/{id}"), &[]).await
    }

    /// `POST /networks/{id}/connect` or `/disconnect` with its JSON body.
    pub async fn network_action(
        &self,
        id: &str,
        action: &str,
        body: &Value,
    ) -> Result<(), ClientError> {
        let response = self
            .request(
                Method::POST,
                &format!("/networks/{id}/{action}"),
                &[],
                json_body(body)?,
                &[("Content-Type", "application/json")],
            )
            .await?;
        read_all(response.into_body(), MAX_ERROR_BODY).await?;
        Ok(())
    }

    /// `GET /volumes`: `{"Volumes": […], "Warnings": …}`.
    pub async fn volumes(&self, filters: &berth_reference::Filters) -> Result<Value, ClientError> {
        self.get_json("/volumes", &filters_query(filters)).await
    }

    /// `POST /volumes/create`; the volume.
    pub async fn volume_create(&self, body: &Value) -> Result<Value, ClientError> {
        self.post_json("/volumes/create", &[], body).await
    }

    /// `DELETE /volumes/{name}[?force=1]`.
    pub async fn volume_remove(&self, name: &str, force: bool) -> Result<(), ClientError> {
        let q: Vec<(&str, String)> = if force {
            vec![("force", "1".to_owned())]
        } else {
            Vec::new()
        };
        self.delete(&format!("/volumes/{name}"), &q).await
    }

    async fn delete(&self, path: &str, query: &[(&str, String)]) -> Result<(), ClientError> {
        let response = self
            .request(Method::DELETE, path, query, empty_body(), &[])
            .await?;
        read_all(response.into_body(), MAX_ERROR_BODY).await?;
        Ok(())
    }
}
