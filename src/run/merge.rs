//! Judging merged partials (SPEC §10): the report of a partial under the gate
//! settings of `proof merge` (or the Python package's `merge`), built as a replay's
//! report is.

use std::path::Path;

use super::job::{REDACT_KEY_VAR, part_policy_ref};
use crate::error::ProofError;
use crate::replay::partial::Partial;
use crate::replay::redact::redact;
use crate::replay::settings::Settings;
use crate::replay::window::WindowLen;
use crate::report::model::{ConfigOut, InputFile, Inputs, ListRef, Report, ReportContext};

/// The report of a (merged) partial under gate settings taken from `settings` (its
/// window, lists and policies come from the partial; `settings.window` must match).
pub fn report(p: &Partial, settings: &Settings) -> Result<Report, ProofError> {
    let fp = &p.header.fingerprint;
    let window = WindowLen::from_ms(fp.window_ms).ok_or_else(|| ProofError::Config {
        path: crate::error::Location::file(Path::new("partial")),
        msg: format!("window_ms {} out of range", fp.window_ms),
    })?;
    let mut gate = settings.gate();
    gate.window = window;
    if let Some(plan) = &settings.plan {
        plan.plan.check_window(window, &plan.origin)?;
    }
    let files = p
        .header
        .files
        .iter()
        .enumerate()
        .map(|(i, f)| InputFile {
            path: f.path.clone(),
            format: f.format.clone(),
            compression: f.compression.clone(),
            bytes: f.bytes,
            counts: p.agg.files.get(&(i as u32)).copied().unwrap_or_default(),
        })
        .collect();
    let redact_key = std::env::var_os(REDACT_KEY_VAR)
        .filter(|k| !k.is_empty())
        .map(|k| k.into_encoded_bytes());
    let key = redact_key
        .clone()
        .unwrap_or_else(|| fp.salt.as_bytes().to_vec());
    // Ids a part redacted when it was written are shown as they are (never hashed twice).
    let redact_ids = settings.redact_ids || p.header.ids_redacted;
    let hash_here = settings.redact_ids && !p.header.ids_redacted;
    let show_id = |id: &str| {
        if hash_here {
            redact(&key, id)
        } else {
            id.to_string()
        }
    };
    let config = ConfigOut {
        window: window.to_string(),
        rollout: gate.rollout,
        drift_max: gate.drift_max,
        levels: gate.levels.clone(),
        min_requests: gate.min_requests,
        rollback_factor: gate.rollback_factor,
        max_rejects: gate.max_rejects,
        salt: fp.salt.clone(),
        redact_ids,
        redact_key_set: redact_ids && redact_key.is_some(),
        scenario: None,
        max_eval_error_ratio: gate.max_eval_error_ratio,
    };
    let mut agg = p.agg.clone();
    agg.bounds.examples = agg.bounds.examples.min(settings.examples);
    agg.finish();
    Ok(Report::build(
        &agg,
        ReportContext {
            gate: &gate,
            inputs: Inputs {
                files,
                baseline: part_policy_ref(&p.header.baseline),
                candidate: part_policy_ref(&p.header.candidate),
                lists: p
                    .header
                    .lists
                    .iter()
                    .map(|l| ListRef {
                        name: l.name.clone(),
                        path: l.path.clone(),
                        values: l.values,
                    })
                    .collect(),
            },
            config,
            show_id: &show_id,
            warnings: Vec::new(),
            rule_ids: p.header.rule_ids.clone(),
        },
    ))
}
