//! `proof diff BASE NEW`: flags, loading both reports, writing the chosen format
//! (stdout or `-o`, atomically), appending the Markdown to `$GITHUB_STEP_SUMMARY`, and
//! the exit code (0 no regression, 1 regression, 2 bad input, 3 NEW's replay exited 3).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::Args;

use crate::diff::{self, Format, Limits, Links};
use crate::error::ProofError;
use crate::report::writer::write_atomic;

/// Flags of `proof diff`.
#[derive(Debug, Clone, Args)]
pub struct DiffArgs {
    /// What main ships: a `proof replay --out` directory or its report.json (required).
    #[arg(value_name = "BASE")]
    pub base: PathBuf,
    /// The change: a `proof replay --out` directory or its report.json (required).
    #[arg(value_name = "NEW")]
    pub new: PathBuf,
    /// Largest allowed rise of the drift ratio at NEW's gate level (NEW − BASE), a
    /// ratio 0.0..=1.0: 0.001 allows 0.1 percentage points.
    #[arg(long, value_name = "RATIO", default_value = "0", value_parser = super::parse_ratio)]
    pub max_drift_increase: f64,
    /// Largest allowed fall of max_safe_rollout_percent (and of
    /// proven_safe_rollout_percent when BASE has one), in points 0..=100.
    #[arg(long, value_name = "N", default_value_t = 0,
          value_parser = clap::value_parser!(u8).range(0..=100))]
    pub max_safe_decrease: u8,
    /// Count a drift cause that NEW has and BASE has not as a regression.
    #[arg(long)]
    pub fail_on_new_cause: bool,
    /// Output format: text for terminals, markdown for a pull-request comment, json for machines.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Write the output to FILE (atomically) instead of standard output [default: standard output].
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Link to BASE's report.html in the Markdown, an http:// or https:// URL [default: no link].
    #[arg(long, value_name = "URL", value_parser = parse_url)]
    pub base_url: Option<String>,
    /// Link to NEW's report.html in the Markdown, an http:// or https:// URL [default: no link].
    #[arg(long, value_name = "URL", value_parser = parse_url)]
    pub new_url: Option<String>,
}

/// clap value parser for `--base-url` / `--new-url`.
fn parse_url(s: &str) -> Result<String, String> {
    let lower = s.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) || s.len() <= 8 {
        return Err(format!("'{s}' is not an http:// or https:// URL"));
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("'{s}' contains white space or control characters"));
    }
    Ok(s.to_string())
}

/// NO_COLOR (no-color.org): present and not empty turns colour off.
fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// Appends the Markdown to the GitHub Actions job summary (never truncates it).
fn append_step_summary(path: &Path, md: &str) -> Result<(), ProofError> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| ProofError::io(path, e))?;
    f.write_all(md.as_bytes())
        .and_then(|()| f.write_all(b"\n"))
        .map_err(|e| ProofError::io(path, e))
}

/// Runs `proof diff`.
pub fn run(args: DiffArgs) -> anyhow::Result<i32> {
    // Everything that can fail on input happens before anything is written.
    let base = diff::input::load(&args.base)?;
    let new = diff::input::load(&args.new)?;
    let limits = Limits {
        max_drift_increase: args.max_drift_increase,
        max_safe_decrease: args.max_safe_decrease,
        fail_on_new_cause: args.fail_on_new_cause,
    };
    let links = Links {
        base: args.base_url.clone(),
        new: args.new_url.clone(),
    };
    let d = diff::compare(&base, &new, limits, links)?;
    let to_terminal = args.output.is_none() && std::io::stdout().is_terminal();
    let color = args.format == Format::Text && to_terminal && !no_color();
    let bytes = diff::render(&d, args.format, color);
    match &args.output {
        Some(path) => write_atomic(path, &bytes)?,
        None => super::print(&bytes)?,
    }
    if let Some(summary) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|s| !s.is_empty()) {
        // A CI nicety: a failure here is reported but never changes the exit code.
        if let Err(e) = append_step_summary(Path::new(&summary), &diff::markdown::render(&d)) {
            crate::say!("proof: warning: {e}");
        }
    }
    // The text on stdout already says it; otherwise the CI log gets the verdict on stderr.
    if args.format != Format::Text || args.output.is_some() {
        crate::say!("proof: diff: {}", d.headline);
        for t in &d.tripped {
            crate::say!("proof: regression: {}: {}", t.limit, t.message);
        }
    }
    Ok(d.exit_code)
}
