//! Report model and one exporter per output format; [`write_outputs`] is the only
//! place that writes them, as one set swapped into the locked output directory
//! ([`writer`]). Exporters are pure functions of the model.

pub mod csv;
pub mod drift_details;
pub mod gate_prom;
pub mod html;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod model;
pub mod openmetrics;
pub mod svg;
pub mod view;
pub mod writer;

use crate::error::ProofError;
use model::Report;

/// One output format.
pub trait Exporter {
    /// File name inside the output directory.
    fn file_name(&self) -> &'static str;
    /// The file's bytes; a failed serialization is an error, never an empty file.
    fn serialize(&self, report: &Report) -> Result<Vec<u8>, ProofError>;
}

/// The exporters `replay --out` and `merge --out` write.
pub fn exporters() -> Vec<Box<dyn Exporter>> {
    vec![
        Box::new(json::JsonExporter),
        Box::new(csv::CsvExporter),
        Box::new(openmetrics::OpenMetricsExporter),
        Box::new(html::HtmlExporter),
        Box::new(markdown::MarkdownExporter),
        Box::new(junit::JunitExporter),
        Box::new(gate_prom::GatePromExporter),
    ]
}

/// Writes every exporter's file into the locked output directory as one set (see
/// [`writer::OutputLock::write_set`]): serialised first, so a failure leaves the
/// previous outputs in place, then swapped in whole, so a reader or a signal sees the
/// old set or the new one.
pub fn write_outputs(
    out: &writer::OutputLock,
    report: &Report,
    exporters: &[&dyn Exporter],
) -> Result<Vec<std::path::PathBuf>, ProofError> {
    let files: Vec<(&'static str, Vec<u8>)> = exporters
        .iter()
        .map(|e| Ok((e.file_name(), e.serialize(report)?)))
        .collect::<Result<_, ProofError>>()?;
    out.write_set(&files)
}
