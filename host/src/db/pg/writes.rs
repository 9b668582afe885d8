//! Writes of fetched records: one statement per call (so one transaction and one round
//! trip), batched as `INSERT … SELECT FROM unnest(arrays) ON CONFLICT …`. Records that
//! share an id are reduced to the last one first, which is what SQLite's row-by-row writes
//! leave (one upsert may not meet a key twice).

use std::collections::HashSet;

use anyhow::Result;
use chrono::Utc;
use postgres::types::ToSql;

use super::Conn;
use super::values::{id, ids, instant, last_per_id};
use crate::api::{ProductRecord, TestRecord};
use crate::db::writes::{Placement, json_list};

const UPSERT_PRODUCTS: &str = "
INSERT INTO products (customer_id, id, title, product_type, data, last_synced)
SELECT $1, t.id, t.title, t.product_type, t.data::jsonb, $2
FROM unnest($3::bigint[], $4::text[], $5::text[], $6::text[]) AS t (id, title, product_type, data)
ON CONFLICT (customer_id, id) DO UPDATE SET
  title = excluded.title, product_type = excluded.product_type,
  data = excluded.data, last_synced = excluded.last_synced";

const UPSERT_FEATURES: &str = "
INSERT INTO features (customer_id, id, product_id, title, description, howtofind,
                      user_stories, section_ids, raw_data, last_synced)
SELECT $1, t.id, $2, t.title, t.description, t.howtofind,
       t.user_stories::jsonb, t.section_ids::jsonb, t.raw_data::jsonb, $3
FROM unnest($4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[])
  AS t (id, title, description, howtofind, user_stories, section_ids, raw_data)
ON CONFLICT (customer_id, id) DO UPDATE SET
  product_id = excluded.product_id, title = excluded.title,
  description = excluded.description, howtofind = excluded.howtofind,
  user_stories = excluded.user_stories, section_ids = excluded.section_ids,
  raw_data = excluded.raw_data, last_synced = excluded.last_synced";

/// A page of tests in one statement (one round trip, one transaction): the tests, then
/// their features and platforms, replaced as a whole so that ones removed upstream do not
/// linger. The children's deletes and upserts touch disjoint rows (a delete spares the rows
/// the upsert writes), which is what lets them share a statement.
const WRITE_PAGE: &str = "
WITH tests_written AS (
  INSERT INTO tests (customer_id, id, product_id, data, status, start_at, end_at, synced_at,
                     created_by, submitted_by, title, testing_type, goal, instructions,
                     out_of_scope, enable_low, enable_high, enable_critical, test_environment)
  SELECT $1, t.id, $2, t.data::jsonb, t.status, t.start_at, t.end_at, $3,
         t.created_by, t.submitted_by, t.title, t.testing_type, t.goal, t.instructions,
         t.out_of_scope, t.enable_low, t.enable_high, t.enable_critical, t.test_environment::jsonb
  FROM unnest($4::bigint[], $5::text[], $6::text[], $7::timestamptz[], $8::timestamptz[], $9::text[],
              $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[],
              $16::bool[], $17::bool[], $18::bool[], $19::text[])
    AS t (id, data, status, start_at, end_at, created_by, submitted_by, title, testing_type, goal,
          instructions, out_of_scope, enable_low, enable_high, enable_critical, test_environment)
  ON CONFLICT (customer_id, id) DO UPDATE SET
    product_id = excluded.product_id, data = excluded.data, status = excluded.status,
    start_at = excluded.start_at, end_at = excluded.end_at, synced_at = excluded.synced_at,
    created_by = excluded.created_by, submitted_by = excluded.submitted_by,
    title = excluded.title, testing_type = excluded.testing_type, goal = excluded.goal,
    instructions = excluded.instructions, out_of_scope = excluded.out_of_scope,
    enable_low = excluded.enable_low, enable_high = excluded.enable_high,
    enable_critical = excluded.enable_critical, test_environment = excluded.test_environment),
features_gone AS (
  DELETE FROM test_features AS f USING unnest($4::bigint[]) AS page (test_id)
  WHERE f.customer_id = $1 AND f.test_id = page.test_id AND f.id <> ALL($20)),
features_written AS (
  INSERT INTO test_features (customer_id, id, test_id, feature_id, title, description, howtofind,
                             user_stories, enable_default, enable_content, enable_visual)
  SELECT $1, f.id, f.test_id, f.feature_id, f.title, f.description, f.howtofind,
         f.user_stories::jsonb, f.enable_default, f.enable_content, f.enable_visual
  FROM unnest($20::bigint[], $21::bigint[], $22::bigint[], $23::text[], $24::text[], $25::text[],
              $26::text[], $27::bool[], $28::bool[], $29::bool[])
    AS f (id, test_id, feature_id, title, description, howtofind, user_stories,
          enable_default, enable_content, enable_visual)
  ON CONFLICT (customer_id, id) DO UPDATE SET
    test_id = excluded.test_id, feature_id = excluded.feature_id, title = excluded.title,
    description = excluded.description, howtofind = excluded.howtofind,
    user_stories = excluded.user_stories, enable_default = excluded.enable_default,
    enable_content = excluded.enable_content, enable_visual = excluded.enable_visual),
platforms_gone AS (
  DELETE FROM test_platforms AS p USING unnest($4::bigint[]) AS page (test_id)
  WHERE p.customer_id = $1 AND p.test_id = page.test_id
    AND (p.operating_system_id IS NULL OR (p.test_id, p.operating_system_id) NOT IN (
      SELECT n.test_id, n.os_id FROM unnest($30::bigint[], $31::bigint[]) AS n (test_id, os_id)
      WHERE n.os_id IS NOT NULL))),
platforms_written AS (
  INSERT INTO test_platforms (customer_id, test_id, operating_system_id, operating_system_name, category)
  SELECT $1, p.test_id, p.os_id, p.os_name, p.category
  FROM unnest($30::bigint[], $31::bigint[], $32::text[], $33::text[]) AS p (test_id, os_id, os_name, category)
  ON CONFLICT (customer_id, test_id, operating_system_id) DO UPDATE SET
    operating_system_name = excluded.operating_system_name, category = excluded.category)
SELECT 1";

/// The planner needs statistics to look a page's rows up by test rather than scan the
/// customer's rows, and a new mirror has none until autovacuum comes round (a minute or
/// more: after a cold sync). So a session analyses a new mirror's tables once it has
/// written this many pages, as the docs advise after a bulk load; it takes milliseconds at
/// that size. A mirror with statistics is left to autovacuum.
const ANALYZE_AFTER_PAGES: u32 = 20;

const ANALYZE_IF_NEW: &str = "
DO $analyze$ BEGIN
IF (SELECT reltuples <= 0 FROM pg_class WHERE oid = 'tests'::regclass) THEN
    ANALYZE tests, test_features, test_platforms;
END IF;
END $analyze$";

const KNOWN_TESTS: &str = "SELECT id FROM tests WHERE customer_id = $1 AND id = ANY($2)";

pub fn products(c: &mut Conn, products: &[&ProductRecord]) -> Result<()> {
    let products = last_per_id(products.iter().copied(), |p| p.fields.id);
    let ids = ids(&products.iter().map(|p| p.fields.id).collect::<Vec<_>>())?;
    let titles: Vec<&str> = products.iter().map(|p| p.title()).collect();
    let types: Vec<Option<&str>> = products.iter().map(|p| p.fields.product_type.as_deref()).collect();
    let data: Vec<&str> = products.iter().map(|p| p.raw.get()).collect();
    let upsert = c.prepared(UPSERT_PRODUCTS)?;
    c.client.execute(&upsert, &[&c.customer, &Utc::now(), &ids, &titles, &types, &data])?;
    Ok(())
}

pub fn features(c: &mut Conn, product_id: u64, features: &[Placement]) -> Result<()> {
    let features = last_per_id(features.iter(), |p| p.feature.fields.id);
    let ids = ids(&features.iter().map(|p| p.feature.fields.id).collect::<Vec<_>>())?;
    let fields = || features.iter().map(|p| &p.feature.fields);
    let titles: Vec<&str> = fields().map(|f| f.title.as_deref().unwrap_or("")).collect();
    let descriptions: Vec<Option<&str>> = fields().map(|f| f.description.as_deref()).collect();
    let howtofind: Vec<Option<&str>> = fields().map(|f| f.howtofind.as_deref()).collect();
    let stories: Vec<String> = fields().map(|f| json_list(f.user_stories.as_deref().unwrap_or_default())).collect();
    let sections: Vec<String> = features.iter().map(|p| json_list(p.section_ids)).collect();
    let raw: Vec<&str> = features.iter().map(|p| p.feature.raw.get()).collect();
    let upsert = c.prepared(UPSERT_FEATURES)?;
    let mut tx = c.client.transaction()?;
    tx.execute(
        &upsert,
        &[
            &c.customer,
            &id(product_id)?,
            &Utc::now(),
            &ids,
            &titles,
            &descriptions,
            &howtofind,
            &stories,
            &sections,
            &raw,
        ],
    )?;
    Ok(tx.commit()?)
}

/// The ids among `ids` that are stored, in the order asked (repeats included).
pub fn known_tests(c: &mut Conn, wanted: &[u64]) -> Result<Vec<u64>> {
    let select = c.prepared(KNOWN_TESTS)?;
    let rows = c.client.query(&select, &[&c.customer, &ids(wanted)?])?;
    let stored: HashSet<i64> = rows.iter().map(|r| r.get(0)).collect();
    Ok(wanted.iter().copied().filter(|&i| id(i).is_ok_and(|i| stored.contains(&i))).collect())
}

pub fn tests(c: &mut Conn, product_id: u64, tests: &[&TestRecord]) -> Result<()> {
    let tests = last_per_id(tests.iter().copied(), |t| t.fields.id);
    let (t, f, p) = (TestColumns::of(&tests)?, FeatureColumns::of(&tests)?, PlatformColumns::of(&tests)?);
    let write = c.prepared(WRITE_PAGE)?;
    let (product, now) = (id(product_id)?, Utc::now());
    let head: [&(dyn ToSql + Sync); 3] = [&c.customer, &product, &now];
    let params: Vec<_> = head.into_iter().chain(t.params()).chain(f.params()).chain(p.params()).collect();
    c.client.execute(&write, &params)?;
    c.pages_written += 1;
    if c.pages_written == ANALYZE_AFTER_PAGES {
        c.client.batch_execute(ANALYZE_IF_NEW)?;
    }
    Ok(())
}

/// A page of tests as one array per column, valued as SQLite's `upsert_test` values them.
struct TestColumns<'a> {
    ids: Vec<i64>,
    data: Vec<&'a str>,
    status: Vec<&'a str>,
    start_at: Vec<Option<chrono::DateTime<Utc>>>,
    end_at: Vec<Option<chrono::DateTime<Utc>>>,
    created_by: Vec<Option<&'a str>>,
    submitted_by: Vec<Option<&'a str>>,
    title: Vec<Option<&'a str>>,
    testing_type: Vec<&'a str>,
    goal: Vec<Option<&'a str>>,
    instructions: Vec<Option<&'a str>>,
    out_of_scope: Vec<Option<&'a str>>,
    enable_low: Vec<Option<bool>>,
    enable_high: Vec<Option<bool>>,
    enable_critical: Vec<Option<bool>>,
    environment: Vec<Option<String>>,
}

impl<'a> TestColumns<'a> {
    fn of(tests: &[&'a TestRecord]) -> Result<Self> {
        let fields = || tests.iter().map(|t| &t.fields);
        let text = |pick: fn(&'a TestRecord) -> &'a Option<String>| -> Vec<Option<&'a str>> {
            tests.iter().map(|&t| pick(t).as_deref()).collect()
        };
        Ok(Self {
            ids: ids(&fields().map(|f| f.id).collect::<Vec<_>>())?,
            data: tests.iter().map(|t| t.raw.get()).collect(),
            status: fields().map(|f| f.status.as_deref().unwrap_or("unknown")).collect(),
            start_at: tests.iter().map(|t| t.start_at.at().and_then(instant)).collect(),
            end_at: tests.iter().map(|t| t.end_at.at().and_then(instant)).collect(),
            created_by: text(|t| &t.fields.created_by),
            submitted_by: text(|t| &t.fields.submitted_by),
            title: fields().map(|f| f.title.as_deref().or(f.test_title.as_deref())).collect(),
            testing_type: fields().map(|f| f.testing_type.as_deref().unwrap_or("test_case")).collect(),
            goal: text(|t| &t.fields.goal_text),
            instructions: text(|t| &t.fields.instructions_text),
            out_of_scope: text(|t| &t.fields.out_of_scope_text),
            enable_low: fields().map(|f| f.enable_low).collect(),
            enable_high: fields().map(|f| f.enable_high).collect(),
            enable_critical: fields().map(|f| f.enable_critical).collect(),
            environment: tests.iter().map(|t| environment(t)).collect(),
        })
    }

    /// `$4` to `$19` of WRITE_PAGE.
    fn params(&self) -> [&(dyn ToSql + Sync); 16] {
        [
            &self.ids,
            &self.data,
            &self.status,
            &self.start_at,
            &self.end_at,
            &self.created_by,
            &self.submitted_by,
            &self.title,
            &self.testing_type,
            &self.goal,
            &self.instructions,
            &self.out_of_scope,
            &self.enable_low,
            &self.enable_high,
            &self.enable_critical,
            &self.environment,
        ]
    }
}

/// Only the environment's id and title are kept (its record may hold credentials).
fn environment(test: &TestRecord) -> Option<String> {
    let e = test.fields.test_environment.as_ref()?;
    Some(serde_json::json!({ "id": e.id?, "title": e.title.as_deref()? }).to_string())
}

/// The features of a page's tests; those without an id or a feature id are skipped.
#[derive(Default)]
struct FeatureColumns<'a> {
    ids: Vec<i64>,
    test_ids: Vec<i64>,
    feature_ids: Vec<i64>,
    titles: Vec<&'a str>,
    descriptions: Vec<Option<&'a str>>,
    howtofind: Vec<Option<&'a str>>,
    stories: Vec<String>,
    enable_default: Vec<bool>,
    enable_content: Vec<bool>,
    enable_visual: Vec<bool>,
}

impl<'a> FeatureColumns<'a> {
    fn of(tests: &[&'a TestRecord]) -> Result<Self> {
        let listed = tests.iter().flat_map(|t| {
            let features = t.fields.features.iter().flatten();
            features.filter_map(move |f| Some((t.fields.id, f.id?, f.feature_id?, f)))
        });
        let listed: Vec<_> = listed.collect();
        let mut columns = Self::default();
        for (test_id, feature_row, feature_id, f) in last_per_id(listed.into_iter(), |(_, row, _, _)| row) {
            columns.ids.push(id(feature_row)?);
            columns.test_ids.push(id(test_id)?);
            columns.feature_ids.push(id(feature_id)?);
            columns.titles.push(f.title.as_deref().unwrap_or(""));
            columns.descriptions.push(f.description.as_deref());
            columns.howtofind.push(f.howtofind.as_deref());
            columns.stories.push(json_list(f.user_stories.as_deref().unwrap_or_default()));
            columns.enable_default.push(f.enable_default.unwrap_or(false));
            columns.enable_content.push(f.enable_content.unwrap_or(false));
            columns.enable_visual.push(f.enable_visual.unwrap_or(false));
        }
        Ok(columns)
    }

    /// `$20` to `$29` of WRITE_PAGE.
    fn params(&self) -> [&(dyn ToSql + Sync); 10] {
        [
            &self.ids,
            &self.test_ids,
            &self.feature_ids,
            &self.titles,
            &self.descriptions,
            &self.howtofind,
            &self.stories,
            &self.enable_default,
            &self.enable_content,
            &self.enable_visual,
        ]
    }
}

/// One row per operating system of a test's requirements; the first of one id is kept,
/// as SQLite's `INSERT OR IGNORE` keeps it.
#[derive(Default)]
struct PlatformColumns<'a> {
    test_ids: Vec<i64>,
    os_ids: Vec<Option<i64>>,
    os_names: Vec<&'a str>,
    categories: Vec<Option<&'a str>>,
}

impl<'a> PlatformColumns<'a> {
    fn of(tests: &[&'a TestRecord]) -> Result<Self> {
        let mut columns = Self::default();
        let mut seen = HashSet::new();
        for test in tests {
            for requirement in test.fields.requirements.iter().flatten() {
                let Some(os) = &requirement.operating_system else { continue };
                let Some(name) = &os.name else { continue };
                // Rows without an operating system id never conflict: all are kept.
                if os.id.is_some_and(|os_id| !seen.insert((test.fields.id, os_id))) {
                    continue;
                }
                columns.test_ids.push(id(test.fields.id)?);
                columns.os_ids.push(os.id.map(id).transpose()?);
                columns.os_names.push(name);
                columns.categories.push(requirement.category.as_ref().and_then(|c| c.key.as_deref()));
            }
        }
        Ok(columns)
    }

    /// `$30` to `$33` of WRITE_PAGE.
    fn params(&self) -> [&(dyn ToSql + Sync); 4] {
        [&self.test_ids, &self.os_ids, &self.os_names, &self.categories]
    }
}
