//! `report.json`: the report model as pretty-printed JSON (SPEC §6).

use super::Exporter;
use super::model::Report;
use crate::error::ProofError;

/// Writes report.json.
pub struct JsonExporter;

impl Exporter for JsonExporter {
    fn file_name(&self) -> &'static str {
        "report.json"
    }

    fn serialize(&self, report: &Report) -> Result<Vec<u8>, ProofError> {
        let mut out = serde_json::to_vec_pretty(report)
            .map_err(|e| ProofError::Encode(format!("report.json: {e}")))?;
        out.push(b'\n');
        Ok(out)
    }
}
