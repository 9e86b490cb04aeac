//! Metric families in one place: [`catalogue`] names every family proof exports (its
//! name, type, unit, labels and HELP text), [`encode`] writes every sample line (one
//! float format, one timestamp format, label names from the catalogue), and the
//! helpers here write the family headers and escape label values the same way for
//! every writer — replay's timestamped `metrics.om`, the textfile-collector
//! `gate.prom`, and `serve`'s live OpenMetrics encoder. Nothing here holds values or
//! registries.

pub mod catalogue;
pub mod encode;

use std::fmt::Write;

pub use catalogue::{Family, Kind};

/// Escapes a label value or HELP text (backslash, quote, newline), as OpenMetrics and
/// the Prometheus text format both require.
pub fn escape(v: &str) -> std::borrow::Cow<'_, str> {
    // Nearly every label value (policy ids, levels, window starts) needs no escape:
    // borrowed as it is, without the three copies `replace` would make.
    if !v.contains(['\\', '"', '\n']) {
        return std::borrow::Cow::Borrowed(v);
    }
    std::borrow::Cow::Owned(
        v.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n"),
    )
}

/// Writes an OpenMetrics family header: `# TYPE`, `# UNIT` when there is one, and
/// `# HELP` when `help` is not empty.
pub fn openmetrics_header(
    out: &mut String,
    name: &str,
    kind: &str,
    unit: Option<&str>,
    help: &str,
) {
    let _ = writeln!(out, "# TYPE {name} {kind}");
    if let Some(u) = unit {
        let _ = writeln!(out, "# UNIT {name} {u}");
    }
    if !help.is_empty() {
        let _ = writeln!(out, "# HELP {name} {}", escape(help));
    }
}
