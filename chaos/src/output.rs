//! Printing to stdout that survives a closed pipe (`chaos ... | head`): a broken pipe ends the output quietly
//! instead of panicking like `println!`.

use std::io::Write;

/// Prints `text` and a newline to stdout; a broken pipe is a normal end, other errors are logged.
pub fn print_stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    let result = out
        .write_all(text.as_bytes())
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    match result {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => tracing::warn!(error = %e, "cannot write to stdout"),
    }
}
