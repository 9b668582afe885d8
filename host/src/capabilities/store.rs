//! `testio:sync/store`: queues writes of host-held payloads on the store writer, and the
//! store's types to and from the host's.

use std::collections::HashMap;
use std::sync::Arc;

use wasmtime::component::Resource;

use super::HostState;
use crate::api::{BugRecord, FeatureRecord, Payload, ProductRecord, TestRecord};
use crate::capabilities::bindings::store::{self as wit, FeaturePlacement, Host};
use crate::capabilities::bindings::types::{self as wit_types, Timestamp};
use crate::db::bugs::BugCandidate;
use crate::db::columns::column_millis;
use crate::db::coverage::TestsCoverage;
use crate::db::problems::{Neighbour, ProblemReport, ProblemRow};
use crate::db::recheck::StoredTest;
use crate::db::writes::{Placement, select};
use crate::model::EntityKind;

type Done = wasmtime::Result<Result<(), String>>;

impl Host for HostState {
    async fn write_products(&mut self, products: Resource<Payload>, ids: Vec<u64>) -> Done {
        let Payload::Products(records) = self.table.get(&products)? else {
            return Ok(Err("write-products was given a payload that is not a product list".into()));
        };
        let records = Arc::clone(records);
        Ok(self.write(move |db| {
            let chosen = select(&records, &ids, |p: &ProductRecord| p.fields.id)?;
            db.write_products(&chosen).map_err(|e| db_error("products", e))
        }))
    }

    async fn write_features(
        &mut self,
        product_id: u64,
        lists: Vec<Resource<Payload>>,
        features: Vec<FeaturePlacement>,
    ) -> Done {
        let mut shared = Vec::with_capacity(lists.len());
        for list in &lists {
            let Payload::Features(list) = self.table.get(list)? else {
                return Ok(Err("write-features was given a payload that is not a feature list".into()));
            };
            shared.push(Arc::clone(list));
        }
        Ok(self.write(move |db| {
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
        Ok(self.db.read(move |db| db.known_tests(&ids).map_err(|e| db_error("tests", e))).await)
    }

    async fn write_tests(&mut self, product_id: u64, page: Resource<Payload>, ids: Vec<u64>) -> Done {
        let Payload::Tests(records) = self.table.get(&page)? else {
            return Ok(Err("write-tests was given a payload that is not a page of tests".into()));
        };
        let records = Arc::clone(records);
        Ok(self.write(move |db| {
            let chosen = select(&records, &ids, |t: &TestRecord| t.fields.id)?;
            db.write_tests(product_id, &chosen).map_err(|e| db_error(&format!("tests of product {product_id}"), e))
        }))
    }

    async fn tests_coverage_of(
        &mut self,
        product_ids: Vec<u64>,
    ) -> wasmtime::Result<Result<Vec<wit::TestsCoverage>, String>> {
        let read = move |db: &mut dyn crate::db::SyncStore| {
            db.tests_coverage(&product_ids).map_err(|e| db_error("coverage", e))
        };
        let coverage = self.db.read(read).await;
        Ok(coverage.map(|list| list.into_iter().map(Into::into).collect()))
    }

    async fn set_tests_coverage(&mut self, product_id: u64, coverage: wit::TestsCoverage) -> Done {
        let coverage = TestsCoverage::from(coverage);
        Ok(self.write(move |db| {
            db.set_tests_coverage(product_id, coverage)
                .map_err(|e| db_error(&format!("coverage of product {product_id}"), e))
        }))
    }

    async fn problem_ranges(
        &mut self,
        product_ids: Vec<u64>,
    ) -> wasmtime::Result<Result<Vec<wit::ProblemRange>, String>> {
        let read = move |db: &mut dyn crate::db::SyncStore| {
            let rows =
                db.problem_ranges(&product_ids).map_err(|e| format!("could not read the problem ranges: {e:#}"))?;
            Ok(rows.iter().map(problem_range).collect())
        };
        Ok(self.db.read(read).await)
    }

    async fn add_problem_range(&mut self, report: wit::ProblemReport, seen_at: Timestamp) -> Done {
        let report = ProblemReport::from(report);
        Ok(self.write(move |db| db.add_problem_range(&report, seen_at).map_err(|e| db_error("a problem range", e))))
    }

    async fn update_problem_range(
        &mut self,
        id: u64,
        report: wit::ProblemReport,
        attempts: u32,
        seen_at: Timestamp,
    ) -> Done {
        let report = ProblemReport::from(report);
        Ok(self.write(move |db| {
            db.update_problem_range(id, &report, attempts, seen_at).map_err(|e| db_error("a problem range", e))
        }))
    }

    async fn clear_problem_range(&mut self, id: u64) -> Done {
        Ok(self.write(move |db| db.clear_problem_range(id).map_err(|e| db_error("a problem range", e))))
    }

    async fn tests_to_recheck(
        &mut self,
        product_ids: Vec<u64>,
        final_statuses: Vec<String>,
        since: Option<Timestamp>,
        written_before: Timestamp,
    ) -> wasmtime::Result<Result<Vec<wit::StoredTest>, String>> {
        let read = move |db: &mut dyn crate::db::SyncStore| {
            db.tests_to_recheck(&product_ids, &final_statuses, since, written_before)
                .map_err(|e| format!("could not read the tests to re-check: {e:#}"))
        };
        let due = self.db.read(read).await;
        Ok(due.map(|list| list.into_iter().map(Into::into).collect()))
    }

    async fn remove_tests(&mut self, ids: Vec<u64>) -> wasmtime::Result<Result<u32, String>> {
        let remove = move |db: &mut dyn crate::db::SyncStore| {
            db.remove_tests(&ids).map_err(|e| format!("could not remove the tests the API no longer returns: {e:#}"))
        };
        if let Some(why) = self.lock.lost() {
            return Ok(Err(why));
        }
        Ok(self.db.read(remove).await)
    }

    async fn bug_candidates(
        &mut self,
        product_ids: Vec<u64>,
        since: Option<Timestamp>,
    ) -> wasmtime::Result<Result<Vec<wit::BugCandidate>, String>> {
        let read = move |db: &mut dyn crate::db::SyncStore| {
            db.bug_candidates(&product_ids, since)
                .map_err(|e| format!("could not read the tests whose bugs to fetch: {e:#}"))
        };
        let candidates = self.db.read(read).await;
        Ok(candidates.map(|list| list.into_iter().map(Into::into).collect()))
    }

    async fn write_bugs(&mut self, bugs: Resource<Payload>, ids: Vec<u64>, test_ids: Vec<u64>) -> Done {
        let Payload::Bugs(records) = self.table.get(&bugs)? else {
            return Ok(Err("write-bugs was given a payload that is not a bug list".into()));
        };
        let records = Arc::clone(records);
        Ok(self.write(move |db| {
            let chosen = select(&records, &ids, |b: &BugRecord| b.fields.id)?;
            db.write_bugs(&chosen, &test_ids).map_err(|e| db_error("bugs", e))
        }))
    }

    async fn sweep(
        &mut self,
        kind: wit_types::EntityKind,
        product_ids: Option<Vec<u64>>,
        since: Option<Timestamp>,
        written_before: Timestamp,
    ) -> wasmtime::Result<Result<u32, String>> {
        let kind = EntityKind::from(kind);
        let sweep = move |db: &mut dyn crate::db::SyncStore| {
            db.sweep(kind, product_ids.as_deref(), since, written_before)
                .map_err(|e| format!("could not delete the rows the API no longer returns: {e:#}"))
        };
        if let Some(why) = self.lock.lost() {
            return Ok(Err(why));
        }
        Ok(self.db.read(sweep).await)
    }

    async fn flush(&mut self) -> Done {
        Ok(self.db.read(|_| Ok(())).await)
    }
}

fn db_error(what: &str, error: anyhow::Error) -> String {
    format!("could not write {what} to the database: {error:#}")
}

/// A stored range as the engine sees it.
fn problem_range(row: &ProblemRow) -> wit::ProblemRange {
    wit::ProblemRange {
        id: row.id as u64,
        report: row.report().into(),
        attempts: row.attempts,
        first_seen: column_millis(&row.first_seen).unwrap_or_default(),
        last_seen: column_millis(&row.last_seen).unwrap_or_default(),
    }
}

impl From<wit::TestsCoverage> for TestsCoverage {
    fn from(coverage: wit::TestsCoverage) -> Self {
        match coverage {
            wit::TestsCoverage::None => TestsCoverage::None,
            wit::TestsCoverage::Since(at) => TestsCoverage::Since(at),
            wit::TestsCoverage::All => TestsCoverage::All,
        }
    }
}

impl From<TestsCoverage> for wit::TestsCoverage {
    fn from(coverage: TestsCoverage) -> Self {
        match coverage {
            TestsCoverage::None => wit::TestsCoverage::None,
            TestsCoverage::Since(at) => wit::TestsCoverage::Since(at),
            TestsCoverage::All => wit::TestsCoverage::All,
        }
    }
}

impl From<wit::Neighbour> for Neighbour {
    fn from(n: wit::Neighbour) -> Self {
        Neighbour { id: n.id, end_at: n.end_at }
    }
}

impl From<Neighbour> for wit::Neighbour {
    fn from(n: Neighbour) -> Self {
        wit::Neighbour { id: n.id, end_at: n.end_at }
    }
}

impl From<wit::ProblemReport> for ProblemReport {
    fn from(r: wit::ProblemReport) -> Self {
        ProblemReport {
            product_id: r.product_id,
            first_offset: r.first_offset,
            last_offset: r.last_offset,
            before: r.before.map(Into::into),
            after: r.after.map(Into::into),
        }
    }
}

impl From<ProblemReport> for wit::ProblemReport {
    fn from(r: ProblemReport) -> Self {
        wit::ProblemReport {
            product_id: r.product_id,
            first_offset: r.first_offset,
            last_offset: r.last_offset,
            before: r.before.map(Into::into),
            after: r.after.map(Into::into),
        }
    }
}

impl From<StoredTest> for wit::StoredTest {
    fn from(t: StoredTest) -> Self {
        wit::StoredTest { id: t.id, product_id: t.product_id, status: t.status, position: t.position }
    }
}

impl From<BugCandidate> for wit::BugCandidate {
    fn from(c: BugCandidate) -> Self {
        wit::BugCandidate { id: c.id, product_id: c.product_id, status: c.status, bugs_synced_at: c.bugs_synced_at }
    }
}
