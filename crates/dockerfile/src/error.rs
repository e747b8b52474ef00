//! The one error type of Dockerfile parsing and expansion: a message with its file and line.

use berth_errdefs::{Category, HasCategory};

/// A syntax or semantic error in a Dockerfile, located at the instruction that caused it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct ParseError {
    /// The Dockerfile's name as the caller gave it (`Dockerfile`, `build/Dockerfile.dev`).
    pub file: String,
    /// First physical line (1-based) of the offending instruction; 0 for whole-file problems.
    pub line: usize,
    /// Last physical line of the instruction (same as `line` for one-line instructions).
    pub end_line: usize,
    /// What is wrong, in Docker's words where Docker has words for it.
    pub message: String,
}

impl ParseError {
    pub(crate) fn new(
        file: &str,
        line: usize,
        end_line: usize,
        message: impl Into<String>,
    ) -> Self {
        ParseError {
            file: file.to_string(),
            line,
            end_line,
            message: message.into(),
        }
    }

    /// The message as Docker's builder prints it (`dockerfile parse error on line 3: …`), which
    /// scripts grep for.
    pub fn docker_message(&self) -> String {
        format!(
            "dockerfile parse error on line {}: {}",
            self.line, self.message
        )
    }
}

impl HasCategory for ParseError {
    fn category(&self) -> Category {
        Category::InvalidParameter
    }
}
