//! `testio:sync/customer-api`: batches of requests run concurrently (each on its own
//! task, so parsing spreads over the cores) under the client's global limit. Each answer
//! is kept as a payload, and summarised for the engine here.

use std::sync::Arc;

use wasmtime::component::{Resource, ResourceTable};

use super::HostState;
use crate::api::{self, ApiError, ApiTime, BugRecord, Failure, FeatureRecord, Payload, ProductRecord, TestRecord};
use crate::capabilities::bindings::customer_api::{
    self as wit, BugList, FeatureList, FeaturesRequest, Host, HostPayload, ProductList, TestsPage, TestsPageRequest,
};

/// A kind of record the API lists, and what the engine is told about a list of them.
trait Listed: Sized + Send + 'static {
    type Reply;
    /// The parser of the endpoint's list; `fetch_parsed` takes another for another shape.
    const PARSE: fn(&[u8]) -> serde_json::Result<Vec<Self>>;
    /// Keeps the records in the table as a payload and summarises them for the engine.
    fn reply(records: Vec<Self>, table: &mut ResourceTable) -> wasmtime::Result<Self::Reply>;
}

impl Listed for ProductRecord {
    type Reply = ProductList;
    const PARSE: fn(&[u8]) -> serde_json::Result<Vec<Self>> = api::parse_products;
    fn reply(records: Vec<Self>, table: &mut ResourceTable) -> wasmtime::Result<ProductList> {
        let products = records.iter().map(product_summary).collect();
        Ok(ProductList { products, body: table.push(Payload::Products(Arc::new(records)))? })
    }
}

impl Listed for FeatureRecord {
    type Reply = FeatureList;
    const PARSE: fn(&[u8]) -> serde_json::Result<Vec<Self>> = api::parse_features;
    fn reply(records: Vec<Self>, table: &mut ResourceTable) -> wasmtime::Result<FeatureList> {
        let feature_ids = records.iter().map(|f| f.fields.id).collect();
        Ok(FeatureList { feature_ids, body: table.push(Payload::Features(Arc::new(records)))? })
    }
}

impl Listed for TestRecord {
    type Reply = TestsPage;
    const PARSE: fn(&[u8]) -> serde_json::Result<Vec<Self>> = api::parse_tests;
    fn reply(records: Vec<Self>, table: &mut ResourceTable) -> wasmtime::Result<TestsPage> {
        let tests = records.iter().map(test_summary).collect();
        Ok(TestsPage { tests, body: table.push(Payload::Tests(Arc::new(records)))? })
    }
}

impl Listed for BugRecord {
    type Reply = BugList;
    const PARSE: fn(&[u8]) -> serde_json::Result<Vec<Self>> = api::parse_bugs;
    fn reply(records: Vec<Self>, table: &mut ResourceTable) -> wasmtime::Result<BugList> {
        let bugs = records.iter().map(|b| wit::BugSummary { id: b.fields.id, test_id: b.test_id() }).collect();
        Ok(BugList { bugs, body: table.push(Payload::Bugs(Arc::new(records)))? })
    }
}

fn test_summary(test: &TestRecord) -> wit::TestSummary {
    let status = test.fields.status.clone().unwrap_or_default();
    wit::TestSummary { id: test.fields.id, end_at: test.end_at.clone().into(), status }
}

fn product_summary(product: &ProductRecord) -> wit::ProductSummary {
    wit::ProductSummary {
        id: product.fields.id,
        name: product.title().to_string(),
        section_ids: product.section_ids(),
        sections_with_default_ids: product.sections_with_default_ids(),
    }
}

impl HostState {
    /// GETs every endpoint on its own task and answers in request order; the statuses in
    /// `handled` come back at their first answer (the engine has its own answer to them).
    async fn fetch_all<R: Listed>(
        &mut self,
        endpoints: Vec<String>,
        handled: Vec<u16>,
    ) -> wasmtime::Result<Vec<Result<R::Reply, wit::ApiError>>> {
        self.fetch_parsed::<R>(endpoints, handled, R::PARSE).await
    }

    /// Like `fetch_all`, with every body parsed by `parse`.
    async fn fetch_parsed<R: Listed>(
        &mut self,
        endpoints: Vec<String>,
        handled: Vec<u16>,
        parse: fn(&[u8]) -> serde_json::Result<Vec<R>>,
    ) -> wasmtime::Result<Vec<Result<R::Reply, wit::ApiError>>> {
        let handled = Arc::new(handled);
        let tasks: Vec<_> = endpoints
            .into_iter()
            .map(|endpoint| {
                let (client, handled) = (self.api.clone(), handled.clone());
                tokio::spawn(async move { client.get_with(&endpoint, parse, &handled).await })
            })
            .collect();
        let mut replies = Vec::with_capacity(tasks.len());
        for task in tasks {
            let fetched = task.await.map_err(|e| wasmtime::format_err!("a request task failed: {e}"))?;
            replies.push(match fetched {
                Ok(records) => Ok(R::reply(records, &mut self.table)?),
                Err(e) => Err(e.into()),
            });
        }
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
    async fn list_products(&mut self) -> wasmtime::Result<Result<ProductList, wit::ApiError>> {
        let replies = self.fetch_all::<ProductRecord>(vec!["products".into()], Vec::new()).await?;
        replies.into_iter().next().ok_or_else(|| wasmtime::format_err!("one request got no reply"))
    }

    async fn fetch_features(
        &mut self,
        requests: Vec<FeaturesRequest>,
    ) -> wasmtime::Result<Vec<Result<FeatureList, wit::ApiError>>> {
        let endpoints = requests
            .iter()
            .map(|r| match r.section_id {
                Some(section) => format!("products/{}/sections/{section}/features", r.product_id),
                None => format!("products/{}/features", r.product_id),
            })
            .collect();
        self.fetch_all::<FeatureRecord>(endpoints, Vec::new()).await
    }

    async fn fetch_tests_pages(
        &mut self,
        requests: Vec<TestsPageRequest>,
    ) -> wasmtime::Result<Vec<Result<TestsPage, wit::ApiError>>> {
        let endpoints = requests
            .iter()
            .map(|r| format!("products/{}/exploratory_tests?page={}&per_page={}", r.product_id, r.page, r.per_page))
            .collect();
        self.fetch_all::<TestRecord>(endpoints, Vec::new()).await
    }

    async fn fetch_tests(&mut self, ids: Vec<u64>) -> wasmtime::Result<Vec<Result<TestsPage, wit::ApiError>>> {
        let endpoints = ids.iter().map(|id| format!("exploratory_tests/{id}")).collect();
        self.fetch_parsed::<TestRecord>(endpoints, Vec::new(), api::parse_test).await
    }

    async fn fetch_bugs(
        &mut self,
        batches: Vec<Vec<u64>>,
        handled: Vec<u16>,
    ) -> wasmtime::Result<Vec<Result<BugList, wit::ApiError>>> {
        let endpoints = batches
            .iter()
            .map(|ids| {
                let ids: Vec<String> = ids.iter().map(u64::to_string).collect();
                format!("bugs?filter_test_cycle_ids={}", ids.join(","))
            })
            .collect();
        self.fetch_all::<BugRecord>(endpoints, handled).await
    }
}

impl From<ApiError> for wit::ApiError {
    fn from(e: ApiError) -> Self {
        let failure = match e.failure {
            Failure::HttpStatus(code) => wit::Failure::HttpStatus(code),
            Failure::Network => wit::Failure::Network,
            Failure::BadPayload => wit::Failure::BadPayload,
            Failure::TooLarge => wit::Failure::TooLarge,
        };
        wit::ApiError { failure, endpoint: e.endpoint, attempts: e.attempts, message: e.message }
    }
}

impl From<ApiTime> for wit::EndTime {
    fn from(time: ApiTime) -> Self {
        match time {
            ApiTime::Missing => wit::EndTime::Missing,
            ApiTime::Unparsable(text) => wit::EndTime::Unparsable(text),
            ApiTime::At(ms) => wit::EndTime::At(ms),
        }
    }
}
