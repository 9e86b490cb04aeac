//! `windows.csv`: one tidy row per (window, level) (SPEC §6).

use super::Exporter;
use super::model::Report;
use crate::error::ProofError;

/// Writes windows.csv; the `breach` column is the gate's judgement, and with
/// confidence on two more columns carry the Wilson bounds (SPEC §8).
pub struct CsvExporter;

impl Exporter for CsvExporter {
    fn file_name(&self) -> &'static str {
        "windows.csv"
    }

    fn serialize(&self, report: &Report) -> Result<Vec<u8>, ProofError> {
        let bounds = report.gate.confidence.is_some();
        let mut w = csv::Writer::from_writer(Vec::new());
        let mut header = vec![
            "window_start",
            "window_end",
            "rollout_percent",
            "requests",
            "drift_events",
            "drift_ratio",
            "breach",
        ];
        if bounds {
            header.extend(["lower", "upper"]);
        }
        let failed = |e: csv::Error| ProofError::Encode(format!("windows.csv: {e}"));
        w.write_record(&header).map_err(failed)?;
        let num = |x: f64| serde_json::to_string(&x).unwrap_or_else(|_| "null".into());
        for win in &report.windows {
            for d in &win.drift {
                let mut row = vec![
                    win.start.clone(),
                    win.end.clone(),
                    d.rollout_percent.to_string(),
                    win.requests.to_string(),
                    d.events.to_string(),
                    num(d.ratio),
                    d.breach.to_string(),
                ];
                if bounds {
                    row.push(d.lower.map(num).unwrap_or_default());
                    row.push(d.upper.map(num).unwrap_or_default());
                }
                w.write_record(&row).map_err(failed)?;
            }
        }
        w.into_inner()
            .map_err(|e| ProofError::Encode(format!("windows.csv: {e}")))
    }
}
