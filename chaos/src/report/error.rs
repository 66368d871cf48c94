//! The error of building or writing a report.

/// A report that could not be built: a required file is missing or unreadable. Names the file and line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// `manifest.json` or `history.jsonl` does not exist.
    #[error("{path}: missing (a run folder needs manifest.json and history.jsonl)")]
    Missing {
        /// The file.
        path: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// The system's error.
        message: String,
    },
    /// A required file is malformed.
    #[error("{path}:{line}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// 1-based line (0: the whole file).
        line: u64,
        /// What is wrong.
        message: String,
    },
}
