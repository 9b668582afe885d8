//! `testio:sync/store`: queues writes of host-held payloads on the store writer.

use std::collections::HashMap;
use std::sync::Arc;

use wasmtime::component::Resource;

use super::HostState;
use crate::api::{BugRecord, FeatureRecord, Payload, ProductRecord, TestRecord};
use crate::bindings::store::{BugCandidate, FeaturePlacement, Host, ProblemRange, ProblemReport, TestsCoverage};
use crate::bindings::types::Timestamp;
use crate::db::writes::{Placement, select};

type Written = wasmtime::Result<Result<u32, String>>;

impl Host for HostState {
    async fn write_products(&mut self, products: Resource<Payload>, ids: Vec<u64>) -> Written {
        self.touch();
        let Payload::Products(records) = self.table.get(&products)? else {
            return Ok(Err("write-products was given a payload that is not a product list".into()));
        };
        let records = Arc::clone(records);
        Ok(self.queue(ids.len(), move |db| {
            let chosen = select(&records, &ids, |p: &ProductRecord| p.fields.id)?;
            db.write_products(&chosen).map_err(|e| db_error("products", e))
        }))
    }

    async fn write_features(
        &mut self,
        product_id: u64,
        lists: Vec<Resource<Payload>>,
        features: Vec<FeaturePlacement>,
    ) -> Written {
        self.touch();
        let mut shared = Vec::with_capacity(lists.len());
        for list in &lists {
            let Payload::Features(list) = self.table.get(list)? else {
                return Ok(Err("write-features was given a payload that is not a feature list".into()));
            };
            shared.push(Arc::clone(list));
        }
        Ok(self.queue(features.len(), move |db| {
            let by_id: HashMap<u64, &FeatureRecord> =
                shared.iter().flat_map(|l| l.iter()).map(|f| (f.fields.id, f)).collect();
            let placements = features
                .iter()
                .map(|f| match by_id.get(&f.id) {
                    Some(feature) => Ok(Placement { feature, section_ids: &f.section_ids }),
                    None => Err(format!("feature {} is not in the feature lists it was said to come from", f.id)),
                })
                .collect::<Result<Vec<_>, String>>()?;
            db.write_features(product_id, &placements)
                .map_err(|e| db_error(&format!("features of product {product_id}"), e))
        }))
    }

    async fn known_tests(&mut self, ids: Vec<u64>) -> wasmtime::Result<Result<Vec<u64>, String>> {
        let known = self.db.read(move |db| db.known_tests(&ids).map_err(|e| db_error("tests", e))).await;
        self.touch();
        Ok(known)
    }

    async fn write_tests(&mut self, product_id: u64, page: Resource<Payload>, ids: Vec<u64>) -> Written {
        self.touch();
        let Payload::Tests(records) = self.table.get(&page)? else {
            return Ok(Err("write-tests was given a payload that is not a page of tests".into()));
        };
        let records = Arc::clone(records);
        Ok(self.queue(ids.len(), move |db| {
            let chosen = select(&records, &ids, |t: &TestRecord| t.fields.id)?;
            db.write_tests(product_id, &chosen).map_err(|e| db_error(&format!("tests of product {product_id}"), e))
        }))
    }

    async fn tests_coverage_of(
        &mut self,
        product_ids: Vec<u64>,
    ) -> wasmtime::Result<Result<Vec<TestsCoverage>, String>> {
        let read =
            move |db: &mut crate::db::Store| db.tests_coverage(&product_ids).map_err(|e| db_error("coverage", e));
        let coverage = self.db.read(read).await;
        self.touch();
        Ok(coverage)
    }

    async fn set_tests_coverage(
        &mut self,
        product_id: u64,
        coverage: TestsCoverage,
    ) -> wasmtime::Result<Result<(), String>> {
        self.touch();
        Ok(self.db.write(move |db| {
            db.set_tests_coverage(product_id, coverage)
                .map_err(|e| db_error(&format!("coverage of product {product_id}"), e))
        }))
    }

    async fn problem_ranges(&mut self, product_ids: Vec<u64>) -> wasmtime::Result<Result<Vec<ProblemRange>, String>> {
        let read = move |db: &mut crate::db::Store| {
            let rows =
                db.problem_ranges(&product_ids).map_err(|e| format!("could not read the problem ranges: {e}"))?;
            Ok(rows.iter().map(|r| r.to_wit()).collect())
        };
        let ranges = self.db.read(read).await;
        self.touch();
        Ok(ranges)
    }

    async fn record_problem_range(&mut self, report: ProblemReport) -> wasmtime::Result<Result<(), String>> {
        self.touch();
        Ok(self.db.write(move |db| db.record_problem_range(&report).map_err(|e| db_error("a problem range", e))))
    }

    async fn clear_problem_range(&mut self, id: u64) -> wasmtime::Result<Result<(), String>> {
        self.touch();
        Ok(self.db.write(move |db| db.clear_problem_range(id).map_err(|e| db_error("a problem range", e))))
    }

    async fn bug_candidates(
        &mut self,
        product_ids: Vec<u64>,
        since: Option<Timestamp>,
    ) -> wasmtime::Result<Result<Vec<BugCandidate>, String>> {
        let read = move |db: &mut crate::db::Store| {
            db.bug_candidates(&product_ids, since)
                .map_err(|e| format!("could not read the tests whose bugs to fetch: {e}"))
        };
        let candidates = self.db.read(read).await;
        self.touch();
        Ok(candidates)
    }

    async fn write_bugs(&mut self, bugs: Resource<Payload>, ids: Vec<u64>, test_ids: Vec<u64>) -> Written {
        self.touch();
        let Payload::Bugs(records) = self.table.get(&bugs)? else {
            return Ok(Err("write-bugs was given a payload that is not a bug list".into()));
        };
        let records = Arc::clone(records);
        Ok(self.queue(ids.len(), move |db| {
            let chosen = select(&records, &ids, |b: &BugRecord| b.fields.id)?;
            db.write_bugs(&chosen, &test_ids).map_err(|e| db_error("bugs", e))
        }))
    }

    async fn flush(&mut self) -> wasmtime::Result<Result<(), String>> {
        let flushed = self.db.read(|_| Ok(())).await;
        self.touch();
        Ok(flushed)
    }
}

impl HostState {
    /// Queues a write of `count` records; the count is what the engine is told.
    fn queue(
        &self,
        count: usize,
        write: impl FnOnce(&mut crate::db::Store) -> Result<u32, String> + Send + 'static,
    ) -> Result<u32, String> {
        self.db.write(move |db| write(db).map(drop))?;
        Ok(count as u32)
    }
}

fn db_error(what: &str, error: rusqlite::Error) -> String {
    format!("could not write {what} to the database: {error}")
}
