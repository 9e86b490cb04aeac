//! Hot reload: every `--reload-interval`, a blocking task looks at the metadata of the
//! policy files (both IRs, both weights files, the lists) and the access map, re-reads
//! those whose metadata changed, and `state` swaps in what changed and loads; what
//! happened is said on stderr. A read never blocks (`files::FileSet::for_reload`).

use std::sync::Arc;
use std::time::Duration;

use super::App;
use super::state::{self, Reload};

impl App {
    /// One reload check of the policy files and the access map (blocking I/O).
    pub fn reload_tick(&self) {
        match state::reload_policy(&self.cfg, &self.policy, &self.metrics) {
            Reload::Unchanged | Reload::SameContent => {}
            Reload::Swapped => {
                let p = self.policy.get();
                crate::say!("proof serve: reloaded policy {}", p.describe());
            }
            Reload::Refused(e) => {
                let p = self.policy.get();
                crate::say!(
                    "proof serve: reload refused, still serving {}: {e}",
                    p.describe()
                );
            }
        }
        if let Some((slot, rm)) = &self.access {
            match state::reload_access(&self.cfg, slot, rm) {
                Reload::Unchanged | Reload::SameContent => {}
                Reload::Swapped => crate::say!(
                    "proof serve: reloaded access map ({} tokens, etag {})",
                    slot.get().len(),
                    slot.get().etag
                ),
                Reload::Refused(e) => {
                    crate::say!("proof serve: access map reload refused, previous map kept: {e}")
                }
            }
        }
    }
}

pub(super) async fn reload_loop(app: Arc<App>) {
    let period = Duration::from_millis(app.cfg.reload_interval_ms.max(1));
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let a = app.clone();
        // File reads and IR compilation are blocking work: keep them off the workers.
        let _ = tokio::task::spawn_blocking(move || a.reload_tick()).await;
    }
}
