//! The replay progress bar on a terminal: drawn from the counters the run layer
//! updates ([`Progress`]), on its own thread, cleared when the run ends.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::replay::source::Input;
use crate::run::job::Progress;

/// Runs `f` with a progress bar over `inputs` on standard error when it is a terminal
/// and not `quiet`; the bar reads `progress`, which `f` is to update.
pub fn with_bar<R>(inputs: &[Input], quiet: bool, progress: &Progress, f: impl FnOnce() -> R) -> R {
    let Some(bar) = progress_bar(inputs, quiet) else {
        return f();
    };
    let started = Instant::now();
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let (bytes_read, records, done_ref, bar_ref) =
            (&progress.bytes_read, &progress.records, &done, &bar);
        let drawing = s.spawn(move || {
            let (done, bar) = (done_ref, bar_ref);
            while !done.load(Ordering::Relaxed) {
                bar.set_position(bytes_read.load(Ordering::Relaxed));
                let n = records.load(Ordering::Relaxed);
                let secs = started.elapsed().as_secs_f64().max(1e-9);
                bar.set_message(format!("{n} records, {:.0} records/s", n as f64 / secs));
                std::thread::sleep(Duration::from_millis(100));
            }
            bar.finish_and_clear();
        });
        let r = f();
        done.store(true, Ordering::Relaxed);
        let _ = drawing.join();
        r
    })
}

fn progress_bar(inputs: &[Input], quiet: bool) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    let total: Option<u64> = inputs.iter().map(|i| i.bytes).sum();
    let bar = match total {
        Some(t) => indicatif::ProgressBar::new(t).with_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg} ETA {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        ),
        None => indicatif::ProgressBar::new_spinner().with_style(
            indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bytes} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        ),
    };
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    Some(bar)
}
