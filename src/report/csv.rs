//! `windows.csv`: one tidy row per (window, level) (SPEC §6).

use super::Exporter;
use super::model::{Report, breaches};

/// Writes windows.csv.
pub struct CsvExporter {
    /// Gate settings decide the `breach` column.
    pub gate: super::model::GateSettings,
}

impl Exporter for CsvExporter {
    fn file_name(&self) -> &'static str {
        "windows.csv"
    }

    fn serialize(&self, report: &Report) -> Vec<u8> {
        let mut w = csv::Writer::from_writer(Vec::new());
        let _ = w.write_record([
            "window_start",
            "window_end",
            "rollout_percent",
            "requests",
            "drift_events",
            "drift_ratio",
            "breach",
        ]);
        for win in &report.windows {
            for d in &win.drift {
                let (breach, _) = breaches(d.events, win.requests, &self.gate);
                let _ = w.write_record([
                    win.start.as_str(),
                    win.end.as_str(),
                    &d.rollout_percent.to_string(),
                    &win.requests.to_string(),
                    &d.events.to_string(),
                    &serde_json::to_string(&d.ratio).unwrap_or_default(),
                    if breach { "true" } else { "false" },
                ]);
            }
        }
        w.into_inner().unwrap_or_default()
    }
}
