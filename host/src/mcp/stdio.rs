//! MCP over stdin/stdout, screened (see [`super::screen`]). Both ends are plain threads:
//! tokio's stdin is a blocking read that nothing can cancel, so a runtime shutdown
//! would wait for the client's next line. Replies and rmcp's output meet in the stdout
//! thread one whole line at a time, so they never interleave mid-line.

use std::io::{BufRead, ErrorKind, Write};
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, oneshot};

use super::screen::{INVALID_REQUEST, Screen, error_line, screen};

/// rmcp's own cap (`DEFAULT_MAX_LINE_LENGTH`).
const MAX_LINE: usize = 16 << 20;

/// Starts the threads and pumps, and returns the transport for rmcp's `serve` and
/// what tells when stdout has everything. `on_eof` runs when the client closes stdin,
/// before rmcp sees the end of its input.
pub fn start(on_eof: impl FnOnce() + Send + 'static) -> anyhow::Result<(DuplexStream, Written)> {
    let (transport, ours) = tokio::io::duplex(1 << 16);
    let (from_rmcp, to_rmcp) = tokio::io::split(ours);
    let (out, out_lines) = std_mpsc::channel();
    let (screened, screened_lines) = mpsc::channel(64);
    let (done, written) = oneshot::channel();
    let replies = out.clone();
    std::thread::Builder::new()
        .name("mcp-stdin".into())
        .spawn(move || read_stdin(&screened, &replies, on_eof))
        .context("could not start the thread that reads stdin")?;
    std::thread::Builder::new()
        .name("mcp-stdout".into())
        .spawn(move || write_stdout(out_lines, done))
        .context("could not start the thread that writes stdout")?;
    tokio::spawn(feed_rmcp(screened_lines, to_rmcp));
    tokio::spawn(collect_rmcp(from_rmcp, out));
    Ok((transport, Written(written)))
}

/// Resolves once everything rmcp wrote is on stdout: stdin is closed and rmcp has closed
/// its end.
pub struct Written(oneshot::Receiver<()>);

impl Written {
    /// Waits at most `within`, so that a client that closed stdin still gets the answers
    /// to what it sent.
    pub async fn wait(self, within: Duration) {
        if tokio::time::timeout(within, self.0).await.is_err() {
            tracing::warn!("some MCP answers were not written to stdout within {}s", within.as_secs());
        }
    }
}

fn read_stdin(screened: &mpsc::Sender<Vec<u8>>, replies: &std_mpsc::Sender<Vec<u8>>, on_eof: impl FnOnce()) {
    let mut stdin = std::io::stdin().lock();
    let mut line = Vec::new();
    loop {
        let verdict = match read_line(&mut stdin, &mut line, MAX_LINE) {
            Ok(Read::Line) => screen(&line),
            Ok(Read::TooLong) => Screen::Reply(too_long()),
            Ok(Read::Eof) => break,
            Err(e) => {
                tracing::warn!("could not read stdin: {e}; the MCP client is taken as gone");
                break;
            }
        };
        match verdict {
            Screen::Pass => {
                line.push(b'\n');
                if screened.blocking_send(std::mem::take(&mut line)).is_err() {
                    return; // rmcp has stopped reading: the session is over
                }
            }
            Screen::Reply(reply) => {
                let _ = replies.send(reply);
            }
            Screen::Ignore => {}
        }
    }
    on_eof();
}

fn too_long() -> Vec<u8> {
    let message = format!("Invalid Request: the message is longer than {} MiB", MAX_LINE >> 20);
    error_line(serde_json::Value::Null, INVALID_REQUEST, &message)
}

#[derive(Debug, PartialEq)]
enum Read {
    /// `line` holds the next line, without its newline.
    Line,
    /// The line was longer than the cap; it was skipped to its end.
    TooLong,
    Eof,
}

/// Reads one line into `line`, keeping at most `max` bytes in memory: a longer line is
/// skipped. A last line without a newline still counts as a line.
fn read_line(input: &mut impl BufRead, line: &mut Vec<u8>, max: usize) -> std::io::Result<Read> {
    line.clear();
    let mut too_long = false;
    loop {
        let available = match input.fill_buf() {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            let read = if too_long {
                Read::TooLong
            } else if line.is_empty() {
                Read::Eof
            } else {
                Read::Line
            };
            return Ok(read);
        }
        let newline = available.iter().position(|b| *b == b'\n');
        let chunk = &available[..newline.unwrap_or(available.len())];
        too_long = too_long || line.len() + chunk.len() > max;
        if too_long {
            line.clear();
        } else {
            line.extend_from_slice(chunk);
        }
        let used = newline.map_or(available.len(), |at| at + 1);
        input.consume(used);
        if newline.is_some() {
            return Ok(if too_long { Read::TooLong } else { Read::Line });
        }
    }
}

/// Screened lines into rmcp; when stdin ends, rmcp's input ends too.
async fn feed_rmcp(mut lines: mpsc::Receiver<Vec<u8>>, mut to_rmcp: WriteHalf<DuplexStream>) {
    while let Some(line) = lines.recv().await {
        if to_rmcp.write_all(&line).await.is_err() {
            return;
        }
    }
    let _ = to_rmcp.shutdown().await;
}

/// rmcp's output, one whole line at a time, to the stdout thread.
async fn collect_rmcp(from_rmcp: ReadHalf<DuplexStream>, out: std_mpsc::Sender<Vec<u8>>) {
    let mut reader = BufReader::new(from_rmcp);
    loop {
        let mut line = Vec::new();
        match reader.read_until(b'\n', &mut line).await {
            Ok(n) if n > 0 && out.send(line).is_ok() => {}
            _ => return,
        }
    }
}

/// Ends when every sender is gone (stdin closed and rmcp done), or stdout is closed.
fn write_stdout(lines: std_mpsc::Receiver<Vec<u8>>, done: oneshot::Sender<()>) {
    let mut stdout = std::io::stdout();
    for line in lines {
        if let Err(e) = stdout.write_all(&line).and_then(|()| stdout.flush()) {
            tracing::debug!("stdout is closed ({e}); the MCP client is gone");
            break;
        }
    }
    let _ = done.send(());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<(Read, String)> {
        let mut input = std::io::BufReader::with_capacity(4, input);
        let mut line = Vec::new();
        let mut seen = Vec::new();
        loop {
            let read = read_line(&mut input, &mut line, max).unwrap();
            if read == Read::Eof {
                return seen;
            }
            seen.push((read, String::from_utf8_lossy(&line).into_owned()));
        }
    }

    #[test]
    fn lines_are_read_whole_across_buffers_and_long_ones_are_skipped_to_their_end() {
        let read = lines(b"first line\n0123456789abc\n\nlast", 10);
        let expected = [(Read::Line, "first line"), (Read::TooLong, ""), (Read::Line, ""), (Read::Line, "last")];
        assert_eq!(read, expected.map(|(r, s)| (r, s.to_string())));
        assert_eq!(lines(b"", 10), []);
        assert_eq!(lines(b"0123456789abc", 10), [(Read::TooLong, String::new())]);
    }
}
