//! `sync --refresh-bugs`: the bugs of every test in scope, 15 tests per request, a
//! timed-out batch bisected, final tests skipped unless forced, and `--nuke` of one product.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use rusqlite::Connection;
use testio_sim::{Faults, SimConfig};

use crate::support::{Account, count};

/// A bugs request the simulator saw: the test ids asked for, and the answer's status.
struct BugsRequest {
    tests: Vec<u64>,
    status: u16,
}

fn bugs_requests(account: &Account) -> Vec<BugsRequest> {
    account
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/bugs"))
        .map(|r| {
            let query = r.query.unwrap_or_default();
            let list = query.strip_prefix("filter_test_cycle_ids=").expect("the test ids are the filter");
            BugsRequest { tests: list.split(',').map(|id| id.parse().unwrap()).collect(), status: r.status }
        })
        .collect()
}

fn ids(db: &Path, sql: &str) -> BTreeSet<u64> {
    let conn = Connection::open(db).unwrap();
    let mut stmt = conn.prepare(sql).unwrap();
    stmt.query_map([], |r| r.get::<_, i64>(0)).unwrap().map(|id| id.unwrap() as u64).collect()
}

/// Bug id → test id, as the database holds them.
fn stored_bugs(db: &Path, filter: &str) -> BTreeMap<u64, u64> {
    let conn = Connection::open(db).unwrap();
    let mut stmt = conn.prepare(&format!("SELECT id, test_id FROM bugs WHERE {filter}")).unwrap();
    stmt.query_map([], |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Bug id → test id, as the simulator lists them for these tests, asked over HTTP.
async fn served_bugs(account: &Account, tests: &BTreeSet<u64>) -> BTreeMap<u64, u64> {
    let client = reqwest::Client::new();
    let mut bugs = BTreeMap::new();
    let tests: Vec<u64> = tests.iter().copied().collect();
    for chunk in tests.chunks(15) {
        let list = chunk.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
        let url = format!("{}/bugs?filter_test_cycle_ids={list}", account.sim.base_url());
        let auth = format!("Token {}", account.sim.token());
        let body = client.get(url).header("Authorization", auth).send().await.unwrap().bytes().await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        for bug in body["bugs"].as_array().unwrap() {
            bugs.insert(bug["id"].as_u64().unwrap(), bug["test"]["id"].as_u64().unwrap());
        }
    }
    bugs
}

#[tokio::test(flavor = "multi_thread")]
async fn refresh_bugs_stores_the_bugs_of_every_test_in_scope() {
    let account = Account::start(3, 2, 40).await;
    let run = account.sync(&["--refresh-bugs", "--product-ids", "1,3", "--json"]).await.expect(0);
    let db = account.db();
    let requests = bugs_requests(&account);
    let tests = ids(&db, "SELECT id FROM tests");
    assert_eq!(tests.len(), 80);
    let expected = served_bugs(&account, &tests).await;
    assert!(expected.len() > 40, "the account has bugs to store: {}", expected.len());
    assert_eq!(stored_bugs(&db, "1"), expected, "every bug, under its test");
    let json = run.json();
    assert_eq!(json["bugs_refreshed"], expected.len());
    assert_eq!(json["phases_completed"].as_array().unwrap().last().unwrap(), "bugs");
    let logged = count(&db, "SELECT bugs_refreshed FROM sync_events");
    assert_eq!(logged as usize, expected.len(), "the sync log counts the bugs");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM tests WHERE bugs_synced_at IS NULL"), 0);

    let sizes: Vec<usize> = requests.iter().map(|r| r.tests.len()).collect();
    assert_eq!(sizes.iter().sum::<usize>(), 80, "each test asked for once");
    assert!(sizes.iter().all(|&n| n <= 15) && requests.len() == 6, "{sizes:?}");

    // Steps come as a list or as a string; both are stored as text, a line per step.
    assert!(count(&db, "SELECT COUNT(*) FROM bugs WHERE json_type(raw_data, '$.steps') = 'text'") > 0);
    assert!(count(&db, "SELECT COUNT(*) FROM bugs WHERE json_type(raw_data, '$.steps') = 'array'") > 0);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM bugs WHERE steps IS NULL OR instr(steps, char(10)) = 0"), 0);
    let auto = "SELECT COUNT(*) FROM bugs WHERE json_extract(raw_data, '$.auto_accepted') = 1
                AND json_extract(raw_data, '$.status') = 'accepted' AND status != 'auto_accepted'";
    assert_eq!(count(&db, auto), 0, "automatically accepted bugs are told apart");
    assert!(run.stderr.contains("bugs refreshed"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_that_times_out_is_bisected_and_every_good_bug_is_stored() {
    let slow = 1_000_005;
    let faults = Faults { slow_bug_tests: [slow].into(), ..Faults::default() };
    let account =
        Account::with(SimConfig { products: 2, features: 2, tests: 30, faults, ..SimConfig::default() }).await;
    let run = account.sync(&["--refresh-bugs", "--json"]).await.expect(2);
    let db = account.db();

    let errors = run.json()["errors"].as_array().unwrap().clone();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let error = errors[0].as_str().unwrap();
    assert!(error.starts_with(&format!("test {slow}:")) && error.contains("HTTP 524"), "{error}");

    let timed_out: Vec<usize> =
        bugs_requests(&account).iter().filter(|r| r.status == 524).map(|r| r.tests.len()).collect();
    assert_eq!(timed_out, [15, 8, 4, 2, 1], "halved down to the slow test, each asked for once");

    account.sim.set_faults(Faults::default());
    let mut good = ids(&db, "SELECT id FROM tests");
    good.remove(&slow);
    let expected = served_bugs(&account, &good).await;
    assert_eq!(stored_bugs(&db, "1"), expected);
    assert_eq!(run.json()["bugs_refreshed"], expected.len());
    assert_eq!(ids(&db, "SELECT id FROM tests WHERE bugs_synced_at IS NULL"), [slow].into());
}

#[tokio::test(flavor = "multi_thread")]
async fn final_tests_whose_bugs_were_synced_are_skipped_unless_forced() {
    let account = Account::start(2, 2, 40).await;
    account.sync(&["--refresh-bugs"]).await.expect(0);
    let db = account.db();
    let all = ids(&db, "SELECT id FROM tests");
    let open = ids(&db, "SELECT id FROM tests WHERE status NOT IN ('archived', 'cancelled')");
    assert!(open.len() < all.len() && !open.is_empty(), "the account has tests of both kinds");
    let bugs_before = stored_bugs(&db, "1");

    account.sim.clear_requests();
    account.sync(&["--refresh-bugs"]).await.expect(0);
    assert!(bugs_requests(&account).is_empty(), "bugs fetched within the freshness limit are fresh");

    let run = account.sync(&["--refresh-bugs", "--max-age", "0", "--json"]).await.expect(0);
    let asked: BTreeSet<u64> = bugs_requests(&account).into_iter().flat_map(|r| r.tests).collect();
    assert_eq!(asked, open, "archived and cancelled tests are skipped");
    let open_bugs = bugs_before.values().filter(|t| open.contains(t)).count();
    assert_eq!(run.json()["bugs_refreshed"], open_bugs);
    assert_eq!(stored_bugs(&db, "1"), bugs_before, "the skipped tests keep their bugs");

    account.sim.clear_requests();
    let run = account.sync(&["--refresh-bugs", "--force", "--json"]).await.expect(0);
    let asked: BTreeSet<u64> = bugs_requests(&account).into_iter().flat_map(|r| r.tests).collect();
    assert_eq!(asked, all, "--force fetches them all again");
    assert_eq!(run.json()["bugs_refreshed"], bugs_before.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn nuking_one_product_refetches_only_its_bugs() {
    let account = Account::start(2, 2, 30).await;
    account.sync(&["--refresh-bugs"]).await.expect(0);
    let db = account.db();
    let rows_of_product_1 = || {
        let conn = Connection::open(&db).unwrap();
        let mut stmt = conn
            .prepare("SELECT * FROM bugs WHERE test_id IN (SELECT id FROM tests WHERE product_id = 1) ORDER BY id")
            .unwrap();
        let width = stmt.column_count();
        let mut rows = stmt.query([]).unwrap();
        let mut all = Vec::new();
        while let Some(row) = rows.next().unwrap() {
            all.push((0..width).map(|i| format!("{:?}", row.get_ref(i).unwrap())).collect::<Vec<_>>().join("|"));
        }
        all
    };
    let product_1 = rows_of_product_1();
    let of_product_2 = "test_id IN (SELECT id FROM tests WHERE product_id = 2)";
    let product_2 = stored_bugs(&db, of_product_2);
    assert!(!product_1.is_empty() && !product_2.is_empty());

    account.sim.clear_requests();
    let run = account.sync(&["--nuke", "--product-ids", "2", "--yes", "--refresh-bugs", "--json"]).await.expect(0);
    let shown =
        run.stderr.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["bugs", &product_2.len().to_string()]);
    assert!(shown, "the nuke names the bugs it deletes:\n{}", run.stderr);
    assert_eq!(rows_of_product_1(), product_1, "product 1's bugs are untouched");
    assert_eq!(stored_bugs(&db, of_product_2), product_2, "product 2's bugs are back");
    assert_eq!(run.json()["bugs_refreshed"], product_2.len());
    let asked: BTreeSet<u64> = bugs_requests(&account).into_iter().flat_map(|r| r.tests).collect();
    assert_eq!(asked, ids(&db, "SELECT id FROM tests WHERE product_id = 2"));
}
