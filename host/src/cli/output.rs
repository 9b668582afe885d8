//! Every line the command line prints goes through here. `println!` and `eprintln!` panic
//! when their stream is closed (`history | head -1`); here a reader that went away stops the
//! output quietly, as in cargo and ripgrep, and the command keeps its own outcome.

use std::fmt::Display;
use std::io::{BufRead, ErrorKind, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, bail};

/// Set once stdout's reader has gone: nothing more is written there.
static READER_GONE: AtomicBool = AtomicBool::new(false);

/// Writes `line` and a newline to stdout. A closed pipe is not an error; any other failure
/// to write is.
pub fn line(line: impl Display) -> anyhow::Result<()> {
    if READER_GONE.load(Ordering::Relaxed) {
        return Ok(());
    }
    match write(std::io::stdout().lock(), &format!("{line}\n")) {
        Err(e) if e.kind() == ErrorKind::BrokenPipe => {
            READER_GONE.store(true, Ordering::Relaxed);
            Ok(())
        }
        written => written.context("could not write to stdout"),
    }
}

/// Writes `line` and a newline to stderr. When stderr cannot be written there is nowhere
/// left to say so, and the command's outcome (its exit code) still tells.
pub fn note(line: impl Display) {
    prompt(&format!("{line}\n"));
}

/// Writes `text` to stderr as it is, e.g. a question without a newline; see [`note`].
pub fn prompt(text: &str) {
    let _ = write(std::io::stderr().lock(), text);
}

/// Asks for `yes` on a terminal; without one, refuses, since nobody could have read what was
/// said. `what` needs the confirmation; `unchanged` says what stays as it was if refused.
pub fn confirm(what: &str, unchanged: &str) -> anyhow::Result<()> {
    if !std::io::stdin().is_terminal() {
        bail!("{what} and there is no terminal to confirm on; pass --yes to go ahead. {unchanged}");
    }
    prompt("Type 'yes' to go ahead: ");
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if answer.trim() != "yes" {
        bail!("not confirmed. {unchanged}");
    }
    Ok(())
}

fn write(mut stream: impl Write, text: &str) -> std::io::Result<()> {
    stream.write_all(text.as_bytes())?;
    stream.flush()
}
