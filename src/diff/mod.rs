//! `proof diff`: compares two replays (BASE, what main ships, and NEW, the change) and
//! says whether NEW regressed beyond the limits. The flow is one way:
//! [`input`] (report.json → typed [`input::Side`]) → [`model::compare`] (the typed
//! [`model::Diff`], limits and exit code) → one renderer per format ([`text`],
//! [`markdown`], [`json`]). Nothing here writes files or reads flags; `cli::diff` does.

pub mod input;
pub mod json;
pub mod markdown;
pub mod model;
pub mod stats;
pub mod text;

pub use model::{Diff, Limits, Links, compare};

/// Output formats of `proof diff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// For terminals (colour only on a TTY, never with NO_COLOR).
    #[default]
    Text,
    /// A pull-request comment.
    Markdown,
    /// For machines (keys documented in docs/reports.md).
    Json,
}

/// Renders `d` in `format`; `color` applies to text only.
pub fn render(d: &Diff, format: Format, color: bool) -> Vec<u8> {
    match format {
        Format::Text => text::render(d, color).into_bytes(),
        Format::Markdown => markdown::render(d).into_bytes(),
        Format::Json => json::render(d),
    }
}
