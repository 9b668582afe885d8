//! Settings from a file, the reference's way: the environment first; then `--env-file PATH`
//! (an error if missing), else `~/.testio-mcp.env` if it exists, else `.env` in the working
//! folder. At most one file is read, and it never overrides a variable already set. It is
//! read before clap parses, since clap reads the variables while it parses. A value from
//! the file is never printed: it may be a token.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use anyhow::{anyhow, bail};

pub const FLAG: &str = "--env-file";
/// The file in the home folder, the reference's.
const HOME_FILE: &str = ".testio-mcp.env";

/// The file read, and the variables it set (names only).
pub struct Loaded {
    pub path: PathBuf,
    pub keys: Vec<String>,
}

/// Loads the file `args` (argv without the program) names, or the first default file that
/// exists; `None` when there is none. Call it before any thread starts: it sets variables.
pub fn load(args: impl IntoIterator<Item = OsString>) -> anyhow::Result<Option<Loaded>> {
    let path = match flag_value(args) {
        Some(path) if path.is_file() => path,
        Some(path) => bail!("{FLAG} {}: there is no such file", path.display()),
        None => match default_file() {
            Some(path) => path,
            None => return Ok(None),
        },
    };
    let before: HashSet<OsString> = std::env::vars_os().map(|(key, _)| key).collect();
    dotenvy::from_path(&path).map_err(|e| match e {
        // Its message quotes the line, which may hold a token.
        dotenvy::Error::LineParse(_, at) => anyhow!("{}: a line is not KEY=VALUE (at character {at})", path.display()),
        other => anyhow!("{}: {other}", path.display()),
    })?;
    let keys = std::env::vars_os()
        .map(|(key, _)| key)
        .filter(|key| !before.contains(key))
        .map(|key| key.to_string_lossy().into_owned())
        .collect();
    Ok(Some(Loaded { path, keys }))
}

/// `--env-file PATH` or `--env-file=PATH`, before any `--`.
fn flag_value(args: impl IntoIterator<Item = OsString>) -> Option<PathBuf> {
    let mut args = args.into_iter().take_while(|a| a != "--");
    while let Some(arg) = args.next() {
        if arg == FLAG {
            return args.next().map(PathBuf::from);
        }
        let prefix = format!("{FLAG}=");
        if let Some(value) = arg.to_str().and_then(|a| a.strip_prefix(&prefix)) {
            return Some(PathBuf::from(value));
        }
    }
    None
}

/// Absolute, so that a message saying where a value came from is plain.
fn default_file() -> Option<PathBuf> {
    let home = dirs::home_dir().map(|home| home.join(HOME_FILE));
    let work = std::env::current_dir().map_or_else(|_| PathBuf::from(".env"), |dir| dir.join(".env"));
    home.into_iter().chain([work]).find(|path| path.is_file())
}

impl Loaded {
    /// ` (from PATH)` when `var` came from the file, for a message about its value.
    pub fn origin(&self, var: &OsStr) -> String {
        match self.keys.iter().any(|key| OsStr::new(key) == var) {
            true => format!(" (from {})", self.path.display()),
            false => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_flag_is_found_in_either_spelling_and_not_after_a_double_dash() {
        assert_eq!(flag_value(argv(&["sync", "--env-file", "a.env"])), Some(PathBuf::from("a.env")));
        assert_eq!(flag_value(argv(&["--env-file=b.env", "status"])), Some(PathBuf::from("b.env")));
        assert_eq!(flag_value(argv(&["sync", "--", "--env-file", "c.env"])), None);
        assert_eq!(flag_value(argv(&["sync", "--env-file"])), None);
        assert_eq!(flag_value(argv(&["sync"])), None);
    }
}
