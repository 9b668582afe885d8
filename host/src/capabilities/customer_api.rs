//! `testio:sync/customer-api`: batches of requests run concurrently (each on its own
//! task, so parsing spreads over the cores) under the client's global limit.

use std::future::Future;

use wasmtime::component::Resource;

use super::HostState;
use crate::api::{self, Payload};
use crate::bindings::customer_api::{
    ApiError, FeatureList, FeaturesRequest, Host, HostPayload, ProductList, TestsPage, TestsPageRequest,
};

impl HostPayload for HostState {
    async fn drop(&mut self, payload: Resource<Payload>) -> wasmtime::Result<()> {
        self.table.delete(payload)?;
        Ok(())
    }
}

impl Host for HostState {
    async fn list_products(&mut self) -> wasmtime::Result<Result<ProductList, ApiError>> {
        let fetched = self.api.get("products", api::parse_products).await;
        self.touch();
        match fetched {
            Ok(records) => {
                let products = records.iter().map(|p| p.summary()).collect();
                let body = self.table.push(Payload::Products(records))?;
                Ok(Ok(ProductList { products, body }))
            }
            Err(e) => Ok(Err(e)),
        }
    }

    async fn fetch_features(
        &mut self,
        requests: Vec<FeaturesRequest>,
    ) -> wasmtime::Result<Vec<Result<FeatureList, ApiError>>> {
        let fetched = run_batch(requests.iter().map(|r| {
            let client = self.api.clone();
            let endpoint = match r.section_id {
                Some(section) => format!("products/{}/sections/{section}/features", r.product_id),
                None => format!("products/{}/features", r.product_id),
            };
            async move { client.get(&endpoint, api::parse_features).await }
        }))
        .await?;
        self.touch();
        fetched
            .into_iter()
            .map(|result| {
                Ok(match result {
                    Ok(records) => {
                        let feature_ids = records.iter().map(|f| f.fields.id).collect();
                        Ok(FeatureList { feature_ids, body: self.table.push(Payload::Features(records))? })
                    }
                    Err(e) => Err(e),
                })
            })
            .collect()
    }

    async fn fetch_tests_pages(
        &mut self,
        requests: Vec<TestsPageRequest>,
    ) -> wasmtime::Result<Vec<Result<TestsPage, ApiError>>> {
        let fetched = run_batch(requests.iter().map(|r| {
            let client = self.api.clone();
            let endpoint =
                format!("products/{}/exploratory_tests?page={}&per_page={}", r.product_id, r.page, r.per_page);
            async move { client.get(&endpoint, api::parse_tests).await }
        }))
        .await?;
        self.touch();
        fetched
            .into_iter()
            .map(|result| {
                Ok(match result {
                    Ok(records) => {
                        let tests = records.iter().map(|t| t.summary()).collect();
                        Ok(TestsPage { tests, body: self.table.push(Payload::Tests(records))? })
                    }
                    Err(e) => Err(e),
                })
            })
            .collect()
    }
}

/// Spawns every request and collects the results in request order.
async fn run_batch<T, F>(requests: impl Iterator<Item = F>) -> wasmtime::Result<Vec<T>>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let tasks: Vec<_> = requests.map(tokio::spawn).collect();
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(task.await.map_err(|e| wasmtime::format_err!("a request task failed: {e}"))?);
    }
    Ok(results)
}
