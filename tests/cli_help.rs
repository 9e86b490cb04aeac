//! The CLI explains itself: `proof man` and `proof completions bash` (run as the real
//! binary) cover every subcommand and the replay flags SPEC §6 fixes, and every flag
//! of every subcommand has help text stating its default and its range or format.

use std::process::Command;

use clap::CommandFactory;
use proof::cli::Cli;

/// Replay flags whose names SPEC §6 fixes.
const FIXED_REPLAY_FLAGS: [&str; 21] = [
    "--policy",
    "--ir",
    "--candidate-ir",
    "--candidate-policy",
    "--selector",
    "--weights",
    "--shadow-selector",
    "--shadow-weights",
    "--list",
    "--window",
    "--rollout",
    "--drift-max",
    "--levels",
    "--min-requests",
    "--rollback-factor",
    "--max-rejects",
    "--salt",
    "--format",
    "--threads",
    "--scenario",
    "--out",
];

fn proof(args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_proof"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "proof {args:?}: {:?}\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn subcommands() -> Vec<String> {
    let names: Vec<String> = Cli::command()
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    for expected in ["adapt", "replay", "serve", "hash", "completions", "man"] {
        assert!(
            names.iter().any(|n| n == expected),
            "no subcommand {expected}"
        );
    }
    names
}

/// The text of roff with its escaped hyphens and font switches removed.
fn unroff(s: &str) -> String {
    s.replace("\\-", "-")
        .replace("\\fB", "")
        .replace("\\fI", "")
        .replace("\\fR", "")
}

#[test]
fn man_page_covers_every_subcommand_and_the_fixed_replay_flags() {
    let man = unroff(&proof(&["man"]));
    for sub in subcommands() {
        assert!(
            man.contains(&format!("proof-{sub}")),
            "man lacks proof-{sub}"
        );
    }
    // One page per subcommand, each with its own title line.
    assert!(
        man.contains(".TH proof-replay 1"),
        "no proof-replay(1) page"
    );
    let replay_page = man
        .split(".TH ")
        .find(|p| p.starts_with("proof-replay "))
        .unwrap();
    for flag in FIXED_REPLAY_FLAGS {
        assert!(
            replay_page.contains(&format!("{flag} ")) || replay_page.contains(&format!("{flag}=")),
            "man page of replay lacks {flag}"
        );
    }
    // A flag of another subcommand must not leak into the replay page.
    assert!(!replay_page.contains("--metrics-out"));
    assert!(
        man.contains("--metrics-out"),
        "adapt page lacks --metrics-out"
    );
}

#[test]
fn bash_completions_cover_every_subcommand_and_the_fixed_replay_flags() {
    let bash = proof(&["completions", "bash"]);
    let words: std::collections::BTreeSet<&str> = bash
        .split(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '|' || c == ')')
        .collect();
    for sub in subcommands() {
        assert!(words.contains(sub.as_str()), "completions lack {sub}");
    }
    // The replay case of the script offers exactly the replay flags.
    // Its label is `proof__replay)` or `proof__subcmd__replay)` depending on the
    // clap_complete version; the help subcommand's cases are not it.
    let opts_line = bash
        .lines()
        .skip_while(|l| {
            let t = l.trim();
            !(t.starts_with("proof__") && t.ends_with("__replay)") && !t.contains("help"))
        })
        .find(|l| l.trim_start().starts_with("opts="))
        .expect("no replay case in the bash completions");
    let opts: Vec<&str> = opts_line.split_whitespace().collect();
    for flag in FIXED_REPLAY_FLAGS {
        assert!(opts.contains(&flag), "replay completions lack {flag}");
    }
}

/// What a flag's help must say for its value to count as having a range or format,
/// by value name. A new value name fails the check below until it is added here, so
/// that every flag is looked at once.
fn states_range(value_name: &str, help: &str) -> bool {
    let any = |marks: &[&str]| marks.iter().any(|m| help.contains(m));
    match value_name {
        // Paths: the value is a path; what the file holds is in the text.
        "FILE" | "DIR" | "NAME=FILE" | "LOG" | "BASE" | "NEW" | "PARTIAL" => true,
        "URL" => help.contains("http://") && help.contains("https://"),
        "N" | "PERCENT" | "RATIO" | "FACTOR" | "LIST" | "C" => any(&["..=", "≥"]),
        "SPAN" => help.contains("unit ms, s, m, h or d") || help.contains("Range 1ms..="),
        "TIME" => help.contains("RFC 3339"),
        "ADDR" => help.contains("IP:PORT"),
        "ID" | "S" | "PATH" => any(&["any string", "such as"]),
        "MODE" => help.contains("`recorded`"),
        _ => false,
    }
}

#[test]
fn every_flag_of_every_subcommand_has_help_stating_default_and_range() {
    let mut cmd = Cli::command();
    cmd.build();
    let mut checked = 0;
    let mut missing = Vec::new();
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = sub.get_name();
        for arg in sub.get_arguments() {
            let id = arg.get_id().as_str();
            let help = arg
                .get_long_help()
                .or(arg.get_help())
                .map(|h| h.to_string())
                .unwrap_or_default();
            assert!(
                !help.trim().is_empty(),
                "proof {name} --{id} has no help text"
            );
            if arg.is_hide_set() || matches!(id, "help" | "version") {
                continue;
            }
            // Switches are off unless given; nothing to state.
            if !arg.get_action().takes_values() {
                continue;
            }
            checked += 1;
            let flag = match arg.get_long() {
                Some(l) => format!("--{l}"),
                None => format!("<{id}>"),
            };
            // A default: clap's [default: …], one written in the text, or the value
            // is required (by clap, or "one of … is required" in the text).
            let has_default = !arg.get_default_values().is_empty()
                || help.contains("[default:")
                || arg.is_required_set()
                || help.contains("required");
            if !has_default {
                missing.push(format!("proof {name} {flag} states no default: {help}"));
            }
            let is_enum = !arg.get_possible_values().is_empty();
            let value_name = arg
                .get_value_names()
                .and_then(|v| v.first().map(|s| s.to_string()))
                .unwrap_or_else(|| id.to_uppercase());
            if !(is_enum || states_range(&value_name, &help)) {
                missing.push(format!(
                    "proof {name} {flag} <{value_name}> states no range or format \
                     (see states_range in this file): {help}"
                ));
            }
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
    assert!(checked > 50, "only {checked} value flags checked");
}

#[test]
fn runbook_flag_tables_list_every_flag_of_adapt_and_replay() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/runbook_rollout.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let cmd = Cli::command();
    for name in ["adapt", "replay"] {
        let heading = format!("### `proof {name}`");
        let start = doc.find(&heading).unwrap_or_else(|| panic!("no {heading}"));
        let section = &doc[start + heading.len()..];
        let section = &section[..section.find("\n### ").unwrap_or(section.len())];
        let sub = cmd.find_subcommand(name).unwrap();
        for arg in sub.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            let row = match arg.get_short() {
                Some(s) => format!("| `-{s}, --{long}` |"),
                None => format!("| `--{long}` |"),
            };
            assert!(
                section.contains(&row),
                "docs/runbook_rollout.md: the {name} table lacks {row} (regenerate it from `proof {name} --help`)"
            );
        }
    }
}

#[test]
fn metrics_out_warns_that_its_counters_restart_every_run() {
    // Each `proof adapt` run is its own process: its counters start at 1 every time,
    // so the help and the runbook must steer rate() users to `proof serve`.
    let cmd = Cli::command();
    let adapt = cmd.find_subcommand("adapt").unwrap();
    let arg = adapt
        .get_arguments()
        .find(|a| a.get_id() == "metrics_out")
        .unwrap();
    let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
    for want in ["restart at 1 every run", "rate()", "proof serve"] {
        assert!(
            help.contains(want),
            "--metrics-out help lacks {want:?}: {help}"
        );
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/runbook_rollout.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let heading = "## `adapt --metrics-out` and node_exporter's textfile collector";
    let start = doc.find(heading).expect("no textfile collector section");
    let section = &doc[start..];
    let section = &section[..section[heading.len()..]
        .find("\n## ")
        .map_or(section.len(), |i| i + heading.len())];
    for want in ["counters restart at 1 every run", "rate()", "proof serve"] {
        assert!(
            section.contains(want),
            "the textfile collector section lacks {want:?}"
        );
    }
}
