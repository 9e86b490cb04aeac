//! `report.json`: the report model as pretty-printed JSON (SPEC §6).

use super::Exporter;
use super::model::Report;

/// Writes report.json.
pub struct JsonExporter;

impl Exporter for JsonExporter {
    fn file_name(&self) -> &'static str {
        "report.json"
    }

    fn serialize(&self, report: &Report) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(report).unwrap_or_default();
        out.push(b'\n');
        out
    }
}
