//! The reference's configuration habits: settings from `--env-file`, `~/.testio-mcp.env` or
//! `./.env` (at most one, never over a variable already set), and product ids as words.

use std::path::{Path, PathBuf};

use crate::support::{Account, Run, command, count};

/// A home folder and a working folder, each with its settings file.
struct Folders {
    _root: tempfile::TempDir,
    root: PathBuf,
    home: PathBuf,
    work: PathBuf,
}

impl Folders {
    fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().to_path_buf();
        let (home, work) = (path.join("home"), path.join("work"));
        for dir in [&home, &work] {
            std::fs::create_dir(dir).unwrap();
        }
        // Empty files are databases `status` opens.
        for db in ["home.db", "work.db", "env.db", "flag.db"] {
            std::fs::write(path.join(db), "").unwrap();
        }
        Self { _root: root, root: path, home, work }
    }

    fn db(&self, name: &str) -> String {
        self.root.join(name).to_str().unwrap().to_string()
    }

    /// `testio-sync ARGS` at home in `home`, working in `work`, with `env` set.
    async fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        command(args)
            .envs(env.iter().copied())
            .env("HOME", &self.home)
            // The compiled engine stays cached where it is.
            .env("XDG_CACHE_HOME", dirs::cache_dir().unwrap())
            .current_dir(&self.work)
            .output()
            .await
            .unwrap()
            .into()
    }

    /// `status --json`'s database and customer id.
    async fn status(&self, args: &[&str], env: &[(&str, &str)]) -> (String, i64) {
        let json = self.run(&[&["status", "--json"], args].concat(), env).await.expect(0).json();
        (json["db_path"].as_str().unwrap().to_string(), json["customer_id"].as_i64().unwrap())
    }
}

fn write(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn settings_come_from_the_environment_then_one_file_never_over_a_variable_already_set() {
    let folders = Folders::new();
    let home_file = folders.home.join(".testio-mcp.env");
    write(&home_file, &[format!("TESTIO_DB_PATH={}", folders.db("home.db"))]);
    let work_file = folders.work.join(".env");
    write(&work_file, &[format!("TESTIO_DB_PATH={}", folders.db("work.db")), "TESTIO_CUSTOMER_ID=9".to_string()]);

    // Both files exist: only the home file is read.
    assert_eq!(folders.status(&[], &[]).await, (folders.db("home.db"), 1), "a key only in ./.env stays unset");
    // A variable already set keeps its value.
    assert_eq!(folders.status(&[], &[("TESTIO_DB_PATH", &folders.db("env.db"))]).await, (folders.db("env.db"), 1));
    // --env-file replaces both files, in either spelling.
    let flag_file = folders.root.join("flag.env");
    write(&flag_file, &[format!("TESTIO_DB_PATH={}", folders.db("flag.db")), "TESTIO_CUSTOMER_ID=4".to_string()]);
    let flag = flag_file.to_str().unwrap();
    assert_eq!(folders.status(&["--env-file", flag], &[]).await, (folders.db("flag.db"), 4));
    assert_eq!(folders.status(&[&format!("--env-file={flag}")], &[]).await, (folders.db("flag.db"), 4));
    // No home file: ./.env.
    std::fs::remove_file(&home_file).unwrap();
    assert_eq!(folders.status(&[], &[]).await, (folders.db("work.db"), 9));

    let missing = folders.root.join("missing.env");
    let run = folders.run(&["status", "--env-file", missing.to_str().unwrap()], &[]).await.expect(1);
    assert_eq!(run.stderr.trim(), format!("error: --env-file {}: there is no such file", missing.display()));

    // A bad value says which file it came from; a line that is not KEY=VALUE is not quoted.
    write(&work_file, &["TESTIO_CUSTOMER_ID=abc".to_string()]);
    let run = folders.run(&["status"], &[]).await.expect(1);
    let from = format!("TESTIO_CUSTOMER_ID=\"abc\" (from {}) is not valid", work_file.display());
    assert!(run.stderr.contains(&from), "{}", run.stderr);
    write(&work_file, &["tok-in-a-line-5d is not a setting".to_string()]);
    let run = folders.run(&["status"], &[]).await.expect(1);
    assert!(run.stderr.contains("a line is not KEY=VALUE"), "{}", run.stderr);
    assert!(!run.stderr.contains("tok-in-a-line-5d"), "{}", run.stderr);
}

/// The products the tests table holds, in order.
fn products_synced(db: &Path) -> String {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row("SELECT group_concat(product_id) FROM (SELECT DISTINCT product_id FROM tests ORDER BY 1)", [], |r| {
        r.get(0)
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn product_ids_are_taken_as_separate_words_with_commas_or_spaces() {
    let account = Account::start(4, 1, 3).await;
    account.sync(&["--product-ids", "1", "3"]).await.expect(0);
    assert_eq!(products_synced(&account.db()), "1,3");
    account.sync(&["--product-ids", "2,4", "1"]).await.expect(0);
    assert_eq!(count(&account.db(), "SELECT COUNT(DISTINCT product_id) FROM tests"), 4);

    let spaced = Account::start(4, 1, 3).await;
    let db = spaced.db();
    let env = [("TESTIO_PRODUCT_IDS", "2 4")];
    spaced.run_with(&["sync", "--db", db.to_str().unwrap()], spaced.sim.token(), &env).await.expect(0);
    assert_eq!(products_synced(&db), "2,4");
}
