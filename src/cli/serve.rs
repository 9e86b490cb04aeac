//! `proof serve`: flags of the HTTP server and their checks; the server itself lives
//! in `crate::serve`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use super::PolicyArgs;
use super::adapt::{CandidateArgs, engine_files};
use crate::error::ProofError;
use crate::orchestrator::{EnforceOptions, RolloutPercent, SelectorKind};
use crate::policy::ListSpec;
use crate::replay::gate::Confidence;
use crate::serve::ServeConfig;

/// Flags of `proof serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub policy: PolicyArgs,
    /// Address to listen on (IP:PORT; port 0 picks a free one). Without --rbac only
    /// loopback addresses are allowed.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9464")]
    pub listen: SocketAddr,
    /// Selector of the enforced path (the candidate IR; shadow: --shadow-selector).
    #[arg(long, value_enum, default_value_t = SelectorKind::Basic)]
    pub selector: SelectorKind,
    /// Weights file (YAML or JSON) for --selector weighted: per-rule costs, optional budget
    /// [default: none: every rule at its op's default cost, no budget].
    #[arg(long, value_name = "FILE")]
    pub weights: Option<PathBuf>,
    /// Bind a reference list: NAME=FILE (CSV: first column; else one value a line).
    /// Repeatable [default: none].
    #[arg(long = "list", value_name = "NAME=FILE")]
    pub lists: Vec<ListSpec>,
    /// Let the candidate path decide for sampled requests [default: off = shadow only].
    #[arg(long)]
    pub enforce: bool,
    /// Share of requests enforced, whole percent 0..=100.
    #[arg(long, value_name = "PERCENT", default_value = "0", value_parser = super::parse_rollout)]
    pub rollout: RolloutPercent,
    /// Drift ratio limit, 0.0..=1.0 (0.005 = 0.5 %); the readiness gate compares the 5-minute drift ratio with it.
    #[arg(long, value_name = "RATIO", default_value = "0.005", value_parser = super::parse_ratio)]
    pub drift_max: f64,
    /// Answer /readyz with 503 while the 5-minute drift ratio exceeds --drift-max.
    #[arg(long)]
    pub readiness_gate: bool,
    /// Judge the readiness gate by the 5-minute window's one-sided Wilson lower bound at
    /// this confidence, as replay's gate does (lower bound > --drift-max = not ready);
    /// a decimal, 0.5..=0.9999 [default: off: the point ratio].
    #[arg(long, value_name = "C", value_parser = Confidence::parse)]
    pub confidence: Option<Confidence>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub candidate: CandidateArgs,
    /// Access map (YAML): bearer tokens as SHA-256 hex, each with scopes (see docs/serve.md)
    /// [default: none: every route open, loopback --listen only].
    #[arg(long, value_name = "FILE")]
    pub rbac: Option<PathBuf>,
    /// How often the IR, weights, lists and access map are re-checked for changes: a whole
    /// number with unit ms, s, m, h or d. Range 1ms..=1d.
    #[arg(long, value_name = "SPAN", default_value = "2s", value_parser = parse_interval)]
    pub reload_interval: u64,
    /// Time a connection has to send a request's complete headers, counted from when
    /// the server starts waiting for them (connection opened or previous answer sent;
    /// so it also closes idle keep-alive connections). Range 1ms..=1h.
    #[arg(long, value_name = "SPAN", default_value = "10s", value_parser = parse_timeout)]
    pub header_timeout: u64,
    /// Time a /v1/adapt request has to deliver its body once its headers are in;
    /// slower bodies get 408 and the connection is closed. Range 1ms..=1h.
    #[arg(long, value_name = "SPAN", default_value = "10s", value_parser = parse_timeout)]
    pub body_timeout: u64,
    /// After SIGINT/SIGTERM, how long open requests may take to finish before the
    /// remaining connections are closed and the process exits. Range 1ms..=1h.
    #[arg(long, value_name = "SPAN", default_value = "5s", value_parser = parse_timeout)]
    pub shutdown_timeout: u64,
    /// Most connections open at once; further ones wait in the listen backlog until
    /// one closes. Range 1..=65536.
    #[arg(long, value_name = "N", default_value = "1024", value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub max_connections: u32,
    /// Serving threads, each an event loop of its own; 1..=1024 [default: the number of CPUs].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,
    /// Test-only: scales the 1m/5m readiness windows (0.01 makes 5m last 3 s).
    #[arg(long, value_name = "FACTOR", default_value = "1", hide = true, value_parser = parse_scale)]
    pub window_scale: f64,
}

/// clap value parser for `--reload-interval` (milliseconds, 1ms..=1d).
fn parse_interval(s: &str) -> Result<u64, String> {
    match crate::policy::time::parse_span_ms(s) {
        Some(ms) if ms <= 86_400_000 => Ok(ms as u64),
        _ => Err(format!(
            "'{s}' is not an interval: expected e.g. 500ms, 2s, 1m; allowed range 1ms..=1d"
        )),
    }
}

/// clap value parser for the timeouts (milliseconds, 1ms..=1h).
fn parse_timeout(s: &str) -> Result<u64, String> {
    match crate::policy::time::parse_span_ms(s) {
        Some(ms) if ms <= 3_600_000 => Ok(ms as u64),
        _ => Err(format!(
            "'{s}' is not a timeout: expected e.g. 500ms, 10s, 1m; allowed range 1ms..=1h"
        )),
    }
}

fn parse_scale(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if x > 0.0 && x <= 1.0 => Ok(x),
        _ => Err(format!(
            "'{s}' is not a window scale: allowed range is (0.0, 1.0]"
        )),
    }
}

impl ServeArgs {
    /// The server configuration these flags describe.
    pub fn config(&self) -> Result<ServeConfig, ProofError> {
        let engine = engine_files(
            &self.policy,
            self.selector,
            self.weights.as_ref(),
            &self.lists,
            &self.candidate,
        )?;
        Ok(ServeConfig {
            engine,
            confidence: self.confidence,
            options: EnforceOptions {
                enforce: self.enforce,
                rollout_percent: self.rollout,
                drift_max_ratio: self.drift_max,
            },
            readiness_gate: self.readiness_gate,
            rbac: self.rbac.clone(),
            reload_interval_ms: self.reload_interval,
            listen: self.listen,
            window_scale: self.window_scale,
            header_timeout_ms: self.header_timeout,
            body_timeout_ms: self.body_timeout,
            shutdown_timeout_ms: self.shutdown_timeout,
            max_connections: self.max_connections as usize,
            bucket_key: self.candidate.bucket_key.clone(),
            threads: match self.threads {
                Some(n) => usize::from(n),
                None => std::thread::available_parallelism().map_or(1, |n| n.get()),
            },
        })
    }
}

/// Runs `proof serve` until SIGINT/SIGTERM.
pub fn run(args: ServeArgs) -> anyhow::Result<i32> {
    crate::serve::run(args.config()?)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};

    fn parse(flags: &[&str]) -> Result<super::ServeArgs, String> {
        let mut argv = vec!["proof", "serve", "--ir", "x.ir.json"];
        argv.extend_from_slice(flags);
        match Cli::try_parse_from(argv) {
            Ok(Cli {
                command: Command::Serve(a),
            }) => Ok(*a),
            Ok(other) => panic!("parsed as {other:?}"),
            Err(e) => Err(e.to_string()),
        }
    }

    #[test]
    fn ranges_in_the_help_are_enforced() {
        assert_eq!(parse(&[]).unwrap().reload_interval, 2000);
        assert_eq!(
            parse(&["--reload-interval", "1ms"])
                .unwrap()
                .reload_interval,
            1
        );
        assert_eq!(
            parse(&["--reload-interval", "1d"]).unwrap().reload_interval,
            86_400_000
        );
        for bad in ["0s", "25h", "2d", "1w", "x"] {
            let e = parse(&["--reload-interval", bad]).unwrap_err();
            assert!(e.contains("allowed range 1ms..=1d"), "{bad}: {e}");
        }
        for bad in ["0ms", "61m"] {
            let e = parse(&["--header-timeout", bad]).unwrap_err();
            assert!(e.contains("1ms..=1h"), "{bad}: {e}");
        }
        assert_eq!(parse(&["--threads", "1024"]).unwrap().threads, Some(1024));
        for bad in ["0", "1025"] {
            let e = parse(&["--threads", bad]).unwrap_err();
            assert!(e.contains("1..=1024"), "{bad}: {e}");
        }
        let e = parse(&["--max-connections", "65537"]).unwrap_err();
        assert!(e.contains("1..=65536"), "{e}");
    }
}
