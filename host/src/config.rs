//! Settings from flags and the environment, each checked with a message that says what
//! is wrong and how to fix it.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

pub const DEFAULT_BASE_URL: &str = "https://api.test.io/customer/v2";

/// `~/.testio-mcp/cache.db`, creating `~/.testio-mcp` (mode 0700) if needed.
pub fn default_db_path() -> anyhow::Result<PathBuf> {
    let home = dirs::home_dir().context("cannot find the home folder; set TESTIO_DB_PATH or pass --db")?;
    let dir = home.join(".testio-mcp");
    if !dir.exists() {
        create_private_dir(&dir)?;
    }
    Ok(dir.join("cache.db"))
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("could not create {}", dir.display()))
}

/// Checks, before any work, that the database can be created or opened at `path`.
pub fn check_db_path(path: &Path) -> anyhow::Result<()> {
    if path.is_dir() {
        bail!("the database path {} is a folder; give a file path", path.display());
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        bail!("the database folder {} does not exist; create it or choose another --db", dir.display());
    }
    if path.exists() { check_is_sqlite(path) } else { probe_writable(dir) }
}

/// Refuses to sync into a file that is something else, rather than fail halfway.
fn check_is_sqlite(path: &Path) -> anyhow::Result<()> {
    use std::io::Read;
    let mut header = [0u8; 16];
    let mut file = std::fs::File::open(path).with_context(|| format!("cannot read the database {}", path.display()))?;
    let read = file.read(&mut header).with_context(|| format!("cannot read the database {}", path.display()))?;
    if read == 0 || header == *b"SQLite format 3\0" {
        return Ok(());
    }
    bail!("{} is not a SQLite database; choose another --db", path.display())
}

/// Creating a file is the only reliable test of writability (root ignores mode bits).
fn probe_writable(dir: &Path) -> anyhow::Result<()> {
    let probe = dir.join(format!(".testio-sync-probe-{}", std::process::id()));
    match std::fs::OpenOptions::new().write(true).create_new(true).open(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => bail!("cannot create the database in {}: {e}", dir.display()),
    }
}

/// The largest id SQLite stores (an i64); a larger one would wrap to a negative number.
pub const MAX_ID: u64 = i64::MAX as u64;

/// One product id, as the user wrote it: from 1 to [`MAX_ID`].
pub fn parse_product_id(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(id) if (1..=MAX_ID).contains(&id) => Ok(id),
        _ => Err(format!("{text:?} is not a product id: use a whole number from 1 to {MAX_ID}")),
    }
}

/// The API token from `TESTIO_CUSTOMER_API_TOKEN`.
pub fn token_from_env() -> anyhow::Result<String> {
    match std::env::var(crate::api::TOKEN_VAR) {
        Ok(token) if !token.trim().is_empty() => Ok(token.trim().to_string()),
        _ => bail!("{} is not set; export your Customer API token in it", crate::api::TOKEN_VAR),
    }
}
