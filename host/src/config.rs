//! Settings from flags and the environment, each checked with a message that says what
//! is wrong and how to fix it.

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};

use crate::db::Location;
use crate::db::pg::PgTarget;

pub const DEFAULT_BASE_URL: &str = "https://api.test.io/customer/v2";

/// The environment variable of the database path; `--db` wins over it.
pub const DB_PATH_VAR: &str = "TESTIO_DB_PATH";

/// The variable of a PostgreSQL mirror's URL; `--db` wins over it, and it over
/// `TESTIO_DB_PATH` (which may hold a URL too).
pub const DB_URL_VAR: &str = "TESTIO_DB_URL";

/// The mirror the user chose: a SQLite file, or a PostgreSQL database by its URL. The URL
/// is parsed here, after clap, so that no usage error ever echoes a password.
pub enum Mirror {
    File(DbPath),
    Server(Arc<PgTarget>),
}

impl Mirror {
    /// `--db`, else `TESTIO_DB_URL`, else `TESTIO_DB_PATH`, else the default file; a
    /// `postgres://` (or `postgresql://`) URL in any of them is a PostgreSQL mirror.
    pub fn resolve(flag: Option<&Path>) -> anyhow::Result<Self> {
        let variable = |name| std::env::var_os(name).filter(|value| !value.is_empty());
        if let Some(flag) = flag {
            return match postgres_url(flag.as_os_str()) {
                Some(url) => server(url),
                None => Ok(Self::File(DbPath::resolve(Some(flag))?)),
            };
        }
        if let Some(value) = variable(DB_URL_VAR) {
            let url = postgres_url(&value);
            return server(url.with_context(|| {
                format!("{DB_URL_VAR} is not a postgres:// URL; a SQLite file goes in --db or {DB_PATH_VAR}")
            })?);
        }
        match variable(DB_PATH_VAR).as_deref().and_then(postgres_url) {
            Some(url) => server(url),
            None => Ok(Self::File(DbPath::resolve(None)?)),
        }
    }

    pub fn location(&self) -> Location {
        match self {
            Self::File(db) => Location::Sqlite(db.path.clone()),
            Self::Server(target) => Location::Postgres(target.clone()),
        }
    }

    /// See [`DbPath::check_for_sync`]; a server is checked when it is first reached.
    pub fn check_for_sync(&self) -> anyhow::Result<()> {
        match self {
            Self::File(db) => db.check_for_sync(),
            Self::Server(_) => Ok(()),
        }
    }

    /// See [`DbPath::check_existing`]; a server is checked when it is first reached.
    pub fn check_existing(&self) -> anyhow::Result<()> {
        match self {
            Self::File(db) => db.check_existing(),
            Self::Server(_) => Ok(()),
        }
    }
}

/// The text of a PostgreSQL connection URL, if `value` is one.
fn postgres_url(value: &OsStr) -> Option<&str> {
    value.to_str().filter(|text| text.starts_with("postgres://") || text.starts_with("postgresql://"))
}

fn server(url: &str) -> anyhow::Result<Mirror> {
    Ok(Mirror::Server(Arc::new(PgTarget::parse(url)?)))
}

/// The database path, and where it came from, so that a message names what to change.
pub struct DbPath {
    pub path: PathBuf,
    source: Source,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    Flag,
    Variable,
    Default,
}

impl DbPath {
    /// `--db`, else `TESTIO_DB_PATH`, else `~/.testio-mcp/cache.db`. A leading `~/` is the
    /// home folder, as in a shell (which leaves `--db=~/…` and variables alone). Creates nothing.
    pub fn resolve(flag: Option<&Path>) -> anyhow::Result<Self> {
        let variable = std::env::var_os(DB_PATH_VAR).filter(|value| !value.is_empty());
        let (path, source) = match (flag, variable) {
            (Some(path), _) => (path.to_path_buf(), Source::Flag),
            (None, Some(path)) => (PathBuf::from(path), Source::Variable),
            (None, None) => (home()?.join(".testio-mcp").join("cache.db"), Source::Default),
        };
        let path = match path.strip_prefix("~") {
            Ok(rest) => home()?.join(rest),
            Err(_) => path,
        };
        Ok(Self { path, source })
    }

    /// For the commands that sync: creates the default folder (mode 0700) if needed, then
    /// checks, before any work, that the database can be created or opened there.
    pub fn check_for_sync(&self) -> anyhow::Result<()> {
        let dir = self.folder();
        if self.source == Source::Default && !dir.exists() {
            create_private_dir(dir)?;
        }
        self.check_not_folder()?;
        if !dir.is_dir() {
            bail!(
                "the database folder {} does not exist; create it or choose another {}",
                dir.display(),
                self.setting()
            );
        }
        if !self.path.exists() {
            return probe_writable(dir).with_context(|| format!("cannot create the database in {}", dir.display()));
        }
        self.check_is_sqlite()?;
        OpenOptions::new()
            .write(true)
            .open(&self.path)
            .with_context(|| format!("cannot write to the database {}", self.path.display()))?;
        self.check_folder_writable()
    }

    /// For the commands that read (`status`, `history`, `problems`): a database that exists
    /// and can be opened. They create nothing, not even the default folder.
    pub fn check_existing(&self) -> anyhow::Result<()> {
        self.check_not_folder()?;
        if !self.path.is_file() {
            bail!(
                "there is no database at {}; run `testio-sync sync` first, or choose another {}",
                self.path.display(),
                self.setting()
            );
        }
        self.check_is_sqlite()?;
        self.check_folder_writable()
    }

    fn setting(&self) -> &'static str {
        match self.source {
            Source::Flag => "--db",
            Source::Variable => DB_PATH_VAR,
            Source::Default => "--db or TESTIO_DB_PATH",
        }
    }

    fn folder(&self) -> &Path {
        match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        }
    }

    fn check_not_folder(&self) -> anyhow::Result<()> {
        if self.path.is_dir() {
            bail!("the database path {} is a folder; give a file path in {}", self.path.display(), self.setting());
        }
        Ok(())
    }

    /// Refuses a file that is something else, rather than fail halfway.
    fn check_is_sqlite(&self) -> anyhow::Result<()> {
        let mut header = [0u8; 16];
        let cannot_read = || format!("cannot read the database {}", self.path.display());
        let mut file = File::open(&self.path).with_context(cannot_read)?;
        let read = file.read(&mut header).with_context(cannot_read)?;
        if read == 0 || header == *b"SQLite format 3\0" {
            return Ok(());
        }
        bail!("{} is not a SQLite database; choose another {}", self.path.display(), self.setting())
    }

    /// SQLite writes its -wal and -shm files beside the database, even to read it.
    fn check_folder_writable(&self) -> anyhow::Result<()> {
        let dir = self.folder();
        probe_writable(dir).with_context(|| {
            format!("cannot write in the database folder {}, where SQLite keeps its -wal and -shm files", dir.display())
        })
    }
}

fn home() -> anyhow::Result<PathBuf> {
    dirs::home_dir().context("cannot find the home folder; set TESTIO_DB_PATH or pass --db")
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("could not create {}", dir.display()))
}

/// Creating a file is the only reliable test of writability (root ignores mode bits).
fn probe_writable(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".testio-sync-probe-{}", std::process::id()));
    OpenOptions::new().write(true).create_new(true).open(&probe)?;
    std::fs::remove_file(&probe)
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

/// Product ids separated by commas, spaces or both (`598,599`, `598 599`): one word of
/// `--product-ids`, all of `TESTIO_PRODUCT_IDS`, or MCP's `product_ids` as a string.
pub fn parse_product_ids(text: &str) -> Result<Vec<u64>, String> {
    let mut ids = Vec::new();
    if text.trim().is_empty() {
        return Ok(ids);
    }
    for piece in text.split(',') {
        if piece.trim().is_empty() {
            return Err(format!("{text:?} has an empty entry"));
        }
        for word in piece.split_whitespace() {
            ids.push(parse_product_id(word)?);
        }
    }
    Ok(ids)
}

/// The ids one `--product-ids` word names; the flag takes several words
/// (`--product-ids 598 599`), each of which may hold several ids (`598,599`).
#[derive(Clone, Debug, PartialEq)]
pub struct ProductIds(Vec<u64>);

impl ProductIds {
    /// clap's value parser for a `--product-ids` word.
    pub fn parse(text: &str) -> Result<Self, String> {
        parse_product_ids(text).map(Self)
    }

    /// Every id the words name, in order; `None` (all products) when they name none.
    pub fn all(words: &[Self]) -> Option<Vec<u64>> {
        let ids: Vec<u64> = words.iter().flat_map(|w| w.0.iter().copied()).collect();
        (!ids.is_empty()).then_some(ids)
    }
}

/// A clap value parser for a whole number in `min..=max`, whose message gives the range.
pub fn whole_number<T>(min: T, max: T) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy + Send + Sync + 'static,
{
    move |text| match text.trim().parse::<T>() {
        Ok(value) if value >= min && value <= max => Ok(value),
        _ => Err(format!("use a whole number from {min} to {max}")),
    }
}

/// The value of `var` read with `parse`, as clap reads a flag's variable: unset or blank is
/// `None`, and a bad value is an error naming the variable.
pub fn setting<T>(var: &str, parse: impl Fn(&str) -> Result<T, String>) -> anyhow::Result<Option<T>> {
    match std::env::var(var) {
        Ok(value) if value.trim().is_empty() => Ok(None),
        Ok(value) => parse(&value).map(Some).map_err(|why| anyhow::anyhow!("{var}={value:?} is not valid; {why}")),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => bail!("{var} is not valid UTF-8"),
    }
}

/// The API token from `TESTIO_CUSTOMER_API_TOKEN`.
pub fn token_from_env() -> anyhow::Result<String> {
    match std::env::var(crate::api::TOKEN_VAR) {
        Ok(token) if !token.trim().is_empty() => Ok(token.trim().to_string()),
        _ => bail!("{} is not set; export your Customer API token in it", crate::api::TOKEN_VAR),
    }
}
