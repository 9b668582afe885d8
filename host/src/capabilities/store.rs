//! `testio:sync/store`: writes the records of host-held payloads into SQLite.

use wasmtime::component::Resource;

use super::HostState;
use crate::api::{FeatureRecord, Payload, ProductRecord, TestRecord};
use crate::bindings::store::{FeaturePlacement, Host};
use crate::db::writes::{Placement, select};

type Written = wasmtime::Result<Result<u32, String>>;

impl Host for HostState {
    fn write_products(&mut self, products: Resource<Payload>, ids: Vec<u64>) -> Written {
        self.touch();
        let Payload::Products(records) = self.table.get(&products)? else {
            return Ok(Err("write-products was given a payload that is not a product list".into()));
        };
        let chosen = match select(records, &ids, |p: &ProductRecord| p.fields.id) {
            Ok(chosen) => chosen,
            Err(e) => return Ok(Err(e)),
        };
        Ok(self.db.get().and_then(|db| db.write_products(&chosen).map_err(|e| db_error("products", e))))
    }

    fn write_features(
        &mut self,
        product_id: u64,
        lists: Vec<Resource<Payload>>,
        features: Vec<FeaturePlacement>,
    ) -> Written {
        self.touch();
        let mut records: Vec<&FeatureRecord> = Vec::new();
        for list in &lists {
            let Payload::Features(list) = self.table.get(list)? else {
                return Ok(Err("write-features was given a payload that is not a feature list".into()));
            };
            records.extend(list);
        }
        let by_id: std::collections::HashMap<u64, &FeatureRecord> = records.iter().map(|f| (f.fields.id, *f)).collect();
        let mut placements = Vec::with_capacity(features.len());
        for f in &features {
            let Some(feature) = by_id.get(&f.id) else {
                return Ok(Err(format!("feature {} is not in the feature lists it was said to come from", f.id)));
            };
            placements.push(Placement { feature, section_ids: &f.section_ids });
        }
        let written = self.db.get().and_then(|db| {
            db.write_features(product_id, &placements)
                .map_err(|e| db_error(&format!("features of product {product_id}"), e))
        });
        Ok(written)
    }

    fn known_tests(&mut self, ids: Vec<u64>) -> wasmtime::Result<Result<Vec<u64>, String>> {
        self.touch();
        Ok(self.db.get().and_then(|db| db.known_tests(&ids).map_err(|e| db_error("tests", e))))
    }

    fn write_tests(&mut self, product_id: u64, page: Resource<Payload>, ids: Vec<u64>) -> Written {
        self.touch();
        let Payload::Tests(records) = self.table.get(&page)? else {
            return Ok(Err("write-tests was given a payload that is not a page of tests".into()));
        };
        let chosen = match select(records, &ids, |t: &TestRecord| t.fields.id) {
            Ok(chosen) => chosen,
            Err(e) => return Ok(Err(e)),
        };
        let written = self.db.get().and_then(|db| {
            db.write_tests(product_id, &chosen).map_err(|e| db_error(&format!("tests of product {product_id}"), e))
        });
        Ok(written)
    }
}

fn db_error(what: &str, error: rusqlite::Error) -> String {
    format!("could not write {what} to the database: {error}")
}
