//! `testio:sync/customer-api`: batches of requests run concurrently (each on its own
//! task, so parsing spreads over the cores) under the client's global limit.

use std::sync::Arc;

use wasmtime::component::{Resource, ResourceTable};

use super::HostState;
use crate::api::{self, BugRecord, FeatureRecord, Payload, ProductRecord, TestRecord};
use crate::bindings::customer_api::{
    ApiError, BugList, FeatureList, FeaturesRequest, Host, HostPayload, ProductList, TestsPage, TestsPageRequest,
};

/// A kind of record the API lists, and what the engine is told about a list of them.
trait Listed: Sized + Send + 'static {
    type Reply;
    /// Transient statuses that come back at once instead of being retried.
    const AT_ONCE: &'static [u16] = &[];
    fn parse(body: &[u8]) -> serde_json::Result<Vec<Self>>;
    /// Keeps the records in the table as a payload and summarises them for the engine.
    fn reply(records: Vec<Self>, table: &mut ResourceTable) -> wasmtime::Result<Self::Reply>;
}

impl Listed for ProductRecord {
    type Reply = ProductList;
    fn parse(body: &[u8]) -> serde_json::Result<Vec<Self>> {
        api::parse_products(body)
    }
    fn reply(records: Vec<Self>, table: &mut ResourceTable) -> wasmtime::Result<ProductList> {
        let products = records.iter().map(ProductRecord::summary).collect();
        Ok(ProductList { products, body: table.push(Payload::Products(Arc::new(records)))? })
    }
}

impl Listed for FeatureRecord {
    type Reply = FeatureList;
    fn parse(body: &[u8]) -> serde_json::Result<Vec<Self>> {
        api::parse_features(body)
    }
    fn reply(records: Vec<Self>, table: &mut ResourceTable) -> wasmtime::Result<FeatureList> {
        let feature_ids = records.iter().map(|f| f.fields.id).collect();
        Ok(FeatureList { feature_ids, body: table.push(Payload::Features(Arc::new(records)))? })
    }
}

impl Listed for TestRecord {
    type Reply = TestsPage;
    fn parse(body: &[u8]) -> serde_json::Result<Vec<Self>> {
        api::parse_tests(body)
    }
    fn reply(records: Vec<Self>, table: &mut ResourceTable) -> wasmtime::Result<TestsPage> {
        let tests = records.iter().map(TestRecord::summary).collect();
        Ok(TestsPage { tests, body: table.push(Payload::Tests(Arc::new(records)))? })
    }
}

impl Listed for BugRecord {
    type Reply = BugList;
    /// A 524 means "too many tests at once": the engine splits the batch instead.
    const AT_ONCE: &'static [u16] = &[524];
    fn parse(body: &[u8]) -> serde_json::Result<Vec<Self>> {
        api::parse_bugs(body)
    }
    fn reply(records: Vec<Self>, table: &mut ResourceTable) -> wasmtime::Result<BugList> {
        let bugs = records.iter().map(BugRecord::summary).collect();
        Ok(BugList { bugs, body: table.push(Payload::Bugs(Arc::new(records)))? })
    }
}

impl HostState {
    /// GETs every endpoint on its own task and answers in request order.
    async fn fetch_all<R: Listed>(
        &mut self,
        endpoints: Vec<String>,
    ) -> wasmtime::Result<Vec<Result<R::Reply, ApiError>>> {
        let tasks: Vec<_> = endpoints
            .into_iter()
            .map(|endpoint| {
                let client = self.api.clone();
                tokio::spawn(async move { client.get_with(&endpoint, R::parse, R::AT_ONCE).await })
            })
            .collect();
        let mut replies = Vec::with_capacity(tasks.len());
        for task in tasks {
            let fetched = task.await.map_err(|e| wasmtime::format_err!("a request task failed: {e}"))?;
            replies.push(match fetched {
                Ok(records) => Ok(R::reply(records, &mut self.table)?),
                Err(e) => Err(e),
            });
        }
        self.touch();
        Ok(replies)
    }
}

impl HostPayload for HostState {
    async fn drop(&mut self, payload: Resource<Payload>) -> wasmtime::Result<()> {
        self.table.delete(payload)?;
        Ok(())
    }
}

impl Host for HostState {
    async fn list_products(&mut self) -> wasmtime::Result<Result<ProductList, ApiError>> {
        let mut replies = self.fetch_all::<ProductRecord>(vec!["products".into()]).await?;
        Ok(replies.pop().expect("one request, one reply"))
    }

    async fn fetch_features(
        &mut self,
        requests: Vec<FeaturesRequest>,
    ) -> wasmtime::Result<Vec<Result<FeatureList, ApiError>>> {
        let endpoints = requests
            .iter()
            .map(|r| match r.section_id {
                Some(section) => format!("products/{}/sections/{section}/features", r.product_id),
                None => format!("products/{}/features", r.product_id),
            })
            .collect();
        self.fetch_all::<FeatureRecord>(endpoints).await
    }

    async fn fetch_tests_pages(
        &mut self,
        requests: Vec<TestsPageRequest>,
    ) -> wasmtime::Result<Vec<Result<TestsPage, ApiError>>> {
        let endpoints = requests
            .iter()
            .map(|r| format!("products/{}/exploratory_tests?page={}&per_page={}", r.product_id, r.page, r.per_page))
            .collect();
        self.fetch_all::<TestRecord>(endpoints).await
    }

    async fn fetch_bugs(&mut self, batches: Vec<Vec<u64>>) -> wasmtime::Result<Vec<Result<BugList, ApiError>>> {
        let endpoints = batches
            .iter()
            .map(|ids| {
                let ids: Vec<String> = ids.iter().map(u64::to_string).collect();
                format!("bugs?filter_test_cycle_ids={}", ids.join(","))
            })
            .collect();
        self.fetch_all::<BugRecord>(endpoints).await
    }
}
