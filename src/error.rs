//! Errors the library reports to its callers. Every variant names the file (and the
//! line, field or id where one is known) so that a user can act on the message.
//! All of them are exit code 2 in the CLI (SPEC §5): usage, config, IR or schema.

use std::fmt;
use std::path::{Path, PathBuf};

/// A problem with the user's configuration, policy or input files.
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    /// A file could not be opened or read.
    // Not `source`: thiserror would make it the error's source, and `{:#}` at the
    // binary edge would then print the OS message twice.
    #[error("{path}: {err}")]
    Io {
        /// The file.
        path: Location,
        /// What the OS said.
        err: std::io::Error,
    },
    /// A JSON, YAML or CSV file did not parse, or a setting in it is invalid.
    #[error("{path}: {msg}")]
    Config {
        /// File with line (and column) where known.
        path: Location,
        /// What is wrong and, where it helps, what to do.
        msg: String,
    },
    /// The policy IR is invalid.
    #[error("{path}: invalid IR: {msg}")]
    Ir {
        /// The IR file.
        path: Location,
        /// Names the offending id.
        msg: String,
    },
    /// The declared `ir_hash` differs from the computed one.
    #[error(
        "{path}: ir_hash mismatch: the file declares {declared} but its content hashes to {computed}; \
         fix the file or remove the ir_hash key (see `proof hash`)"
    )]
    HashMismatch {
        /// The IR file.
        path: Location,
        /// Value in the file.
        declared: String,
        /// Value computed per SPEC §1.
        computed: String,
    },
    /// A Parquet file lacks a required column or has one of an unusable type.
    #[error("{path}: schema error: {msg}")]
    Schema {
        /// The Parquet file.
        path: Location,
        /// What is missing or wrong.
        msg: String,
    },
    /// A resource limit was reached.
    #[error("{path}: {msg}")]
    Limit {
        /// Where.
        path: Location,
        /// Names the limit and how to raise it.
        msg: String,
    },
    /// Flags that do not fit together or are out of range.
    #[error("{0}")]
    Usage(String),
    /// An output could not be encoded (names the output).
    #[error("cannot encode {0}")]
    Encode(String),
    /// The process could not set itself up (threads, signal handlers, metric
    /// registration) or a worker died: not the user's input, still exit 2.
    #[error("{0}")]
    Internal(String),
}

impl ProofError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, err: std::io::Error) -> Self {
        ProofError::Io {
            path: Location::file(path),
            err,
        }
    }

    /// A config error at `line` (0 = unknown) of `path`.
    pub fn config(path: &Path, line: u64, msg: String) -> Self {
        ProofError::Config {
            path: Location::at(path, line, 0),
            msg,
        }
    }

    /// A JSON parse error of `path`, with the position serde_json reports.
    pub fn json(path: &Path, e: &serde_json::Error) -> Self {
        let msg = strip_position(&e.to_string());
        let msg = if is_depth_error(e) {
            format!(
                "JSON nested more than {JSON_MAX_DEPTH} levels deep (the parser's recursion \
                 limit, fixed at build time so that no input can overflow the stack); \
                 flatten the document"
            )
        } else {
            msg
        };
        ProofError::Config {
            path: Location::at(path, e.line() as u64, e.column() as u64),
            msg,
        }
    }

    /// An IR validation error.
    pub fn ir(path: &Path, msg: String) -> Self {
        ProofError::Ir {
            path: Location::file(path),
            msg,
        }
    }
}

/// Deepest JSON nesting serde_json parses (its fixed recursion limit); deeper input is
/// an error (files) or a `malformed` record (logs), never a stack overflow.
pub const JSON_MAX_DEPTH: usize = 128;

/// Whether serde_json stopped at its recursion limit ([`JSON_MAX_DEPTH`]). serde_json
/// files it under `Category::Syntax` with no code of its own, so this is the one place
/// that reads the message.
pub fn is_depth_error(e: &serde_json::Error) -> bool {
    e.classify() == serde_json::error::Category::Syntax
        && strip_position(&e.to_string()) == "recursion limit exceeded"
}

/// serde_json appends " at line L column C"; the location already says that.
pub fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// `file[:line[:column]]`, printed the way compilers and ripgrep do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file.
    pub path: PathBuf,
    /// 1-based line, 0 if unknown.
    pub line: u64,
    /// 1-based column, 0 if unknown.
    pub column: u64,
}

impl Location {
    /// A whole file.
    pub fn file(path: &Path) -> Self {
        Location::at(path, 0, 0)
    }

    /// A position in a file.
    pub fn at(path: &Path, line: u64, column: u64) -> Self {
        Location {
            path: path.to_path_buf(),
            line,
            column,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
            if self.column > 0 {
                write!(f, ":{}", self.column)?;
            }
        }
        Ok(())
    }
}
