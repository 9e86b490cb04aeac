//! `proof merge` under attack and carelessness (issue 24: hardening, round three):
//! parts named twice, directories holding what is not a partial, memory bounds, crafted
//! counts, drift details and redacted ids of shard runs.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{conformance, text};
use proof::replay::partial::{self, Partial};
use serde_json::Value;

fn proof(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_proof"))
        .args(args)
        .current_dir(conformance())
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("PROOF_REDACT_KEY")
        .output()
        .unwrap()
}

/// `proof` under a 1 GiB address-space limit (`ulimit -v`): a run that tries to hold
/// gigabytes fails instead of passing slowly.
fn proof_in_1gib(args: &[&str]) -> Output {
    let mut line = String::from("ulimit -v 1048576; exec \"$0\"");
    for i in 1..=args.len() {
        line.push_str(&format!(" \"${i}\""));
    }
    Command::new("sh")
        .arg("-c")
        .arg(line)
        .arg(env!("CARGO_BIN_EXE_proof"))
        .args(args)
        .current_dir(conformance())
        .output()
        .unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A shard of the whole conformance traffic (1-minute windows), with `extra` flags.
fn shard(out: &Path, extra: &[&str]) {
    let mut a = vec!["replay", "traffic.jsonl"];
    a.extend_from_slice(common::CONF_POLICIES);
    a.extend_from_slice(&["--window", "1m", "--partial-out", s(out), "-q"]);
    a.extend_from_slice(extra);
    let o = proof(&a);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

/// Rewrites a partial through the library (the checksum is recomputed: it detects
/// damage, not forgery).
fn craft(from: &Path, to: &Path, f: impl FnOnce(&mut Partial)) {
    let mut p = partial::decode(&std::fs::read(from).unwrap(), "x").unwrap();
    f(&mut p);
    std::fs::write(to, partial::encode(&p).unwrap()).unwrap();
}

#[test]
fn a_part_named_twice_or_inside_a_named_directory_is_read_once() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("parts");
    std::fs::create_dir(&dir).unwrap();
    let p = dir.join("all.partial");
    shard(&p, &[]);
    let once = json(&proof(&["merge", s(&p)]));
    assert_eq!(once["records"]["read"], 43);
    for args in [
        vec![s(&p), s(&p)],
        vec![s(&dir), s(&p)],
        vec![s(&p), s(&dir)],
    ] {
        let o = proof(&[&["merge"][..], &args].concat());
        let twice = json(&o);
        assert_eq!(twice["records"], once["records"], "{args:?}");
        assert_eq!(twice["examples"], once["examples"], "{args:?}");
        assert_eq!(twice["gate"], once["gate"], "{args:?}");
        let e = err(&o);
        assert!(
            e.contains("warning") && e.contains("same file") && e.contains("read once"),
            "{e}"
        );
    }
}

#[test]
fn a_directory_entry_that_is_not_a_partial_file_stops_the_merge() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("parts");
    std::fs::create_dir(&dir).unwrap();
    shard(&dir.join("a.partial"), &[]);
    // A dangling symlink: a shard not uploaded yet.
    let link = dir.join("b.partial");
    std::os::unix::fs::symlink(d.path().join("not-yet.partial"), &link).unwrap();
    let o = proof(&["merge", s(&dir)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(err(&o).contains("b.partial"), "{}", text(&o));
    std::fs::remove_file(&link).unwrap();
    // A FIFO (never opened: it would block) and a subdirectory.
    let fifo = dir.join("c.partial");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let o = proof(&["merge", s(&dir)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        err(&o).contains("c.partial") && err(&o).contains("FIFO"),
        "{}",
        text(&o)
    );
    std::fs::remove_file(&fifo).unwrap();
    std::fs::create_dir(dir.join("d")).unwrap();
    let o = proof(&["merge", s(&dir)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        err(&o).contains("parts/d") && err(&o).contains("directory"),
        "{}",
        text(&o)
    );
}

#[test]
fn merge_memory_is_bounded() {
    let d = tempfile::tempdir().unwrap();
    // The magic is checked first: /dev/zero is "not a partial" at once, not 4 GiB later.
    let o = proof_in_1gib(&["merge", "/dev/zero"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(err(&o).contains("not a proof partial"), "{}", text(&o));

    // --max-windows, as replay has it: 22 one-minute windows.
    let p = d.path().join("p.partial");
    shard(&p, &[]);
    let o = proof(&["merge", s(&p), "--max-windows", "10"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(err(&o).contains("--max-windows"), "{}", text(&o));
    let o = proof(&["merge", s(&p), "--max-windows", "100"]);
    assert_ne!(o.status.code(), Some(2), "{}", text(&o));

    // A body that inflates to 3 GiB (its real counts, then zeros), checksum valid: the
    // header declares the real size, and no more is inflated.
    let bomb = d.path().join("bomb.partial");
    let bytes = std::fs::read(&p).unwrap();
    let n = u64::from_le_bytes(bytes[18..26].try_into().unwrap()) as usize;
    let header = &bytes[26..26 + n];
    let m_at = 26 + n;
    let m = u64::from_le_bytes(bytes[m_at..m_at + 8].try_into().unwrap()) as usize;
    let raw = zstd::decode_all(&bytes[m_at + 8..m_at + 8 + m]).unwrap();
    let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
    {
        use std::io::Write;
        enc.write_all(&raw).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..3072 {
            enc.write_all(&zeros).unwrap();
        }
    }
    let body = enc.finish().unwrap();
    let mut out = bytes[..26].to_vec();
    out.extend_from_slice(header);
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&body);
    use sha2::Digest;
    let sum = sha2::Sha256::digest(&out);
    out.extend_from_slice(&sum);
    std::fs::write(&bomb, &out).unwrap();
    let o = proof_in_1gib(&["merge", s(&bomb)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        err(&o).contains("bomb.partial") && err(&o).contains("partial body"),
        "{}",
        text(&o)
    );
}

#[test]
fn crafted_counts_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("p.partial");
    shard(&p, &[]);
    let bad = d.path().join("bad.partial");
    // read = 0 with evaluated + skipped overflowing u64.
    craft(&p, &bad, |p| {
        p.agg.read = 0;
        p.agg.skipped = u64::MAX - p.agg.evaluated - p.agg.rejected.iter().sum::<u64>() + 1;
    });
    let o = proof(&["merge", s(&bad)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(err(&o).contains("do not add up"), "{}", text(&o));
    // A window with more drift events than requests (a drift ratio above 1).
    craft(&p, &bad, |p| {
        let w = p.agg.windows.values_mut().next().unwrap();
        w.drift_by_pct[0] += 50;
        p.agg.by_kind[0] += 50;
        *p.agg.by_cause.values_mut().next().unwrap() += 50;
    });
    let o = proof(&["merge", s(&bad)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(err(&o).contains("more drift than requests"), "{}", text(&o));
    // A window start outside RFC 3339's years.
    craft(&p, &bad, |p| {
        let (_, w) = p.agg.windows.pop_first().unwrap();
        p.agg.windows.insert(i64::MIN, w);
    });
    let o = proof(&["merge", s(&bad)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(err(&o).contains("window start outside"), "{}", text(&o));
    // Two parts whose sums overflow together, each consistent on its own.
    let big = d.path().join("big.partial");
    craft(&p, &big, |p| {
        let extra = u64::MAX / 2 + 1 - p.agg.read;
        p.agg.read += extra;
        p.agg.skipped += extra;
        p.agg.skipped_by[0] += extra;
        p.agg.files.values_mut().next().unwrap().read += extra;
        p.agg.files.values_mut().next().unwrap().skipped += extra;
    });
    let big2 = d.path().join("big2.partial");
    std::fs::copy(&big, &big2).unwrap();
    let o = proof(&["merge", s(&big), s(&big2)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(err(&o).contains("overflow"), "{}", text(&o));
}

#[test]
fn a_shards_drift_details_are_written_and_carried_to_merge() {
    let d = tempfile::tempdir().unwrap();
    let whole = d.path().join("whole.jsonl");
    let mut a = vec!["replay", "traffic.jsonl"];
    a.extend_from_slice(common::CONF_POLICIES);
    a.extend_from_slice(&["--window", "1m", "--drift-details", s(&whole), "-q"]);
    proof(&a);
    let rows = std::fs::read_to_string(&whole).unwrap().lines().count();
    assert!(rows > 0);
    let (p, f) = (d.path().join("p.partial"), d.path().join("shard.jsonl"));
    shard(&p, &["--drift-details", s(&f)]);
    assert_eq!(std::fs::read(&f).unwrap(), std::fs::read(&whole).unwrap());
    let merged = d.path().join("merged.jsonl");
    let o = proof(&["merge", s(&p), "--drift-details", s(&merged), "-q"]);
    assert_ne!(o.status.code(), Some(2), "{}", text(&o));
    assert_eq!(
        std::fs::read(&merged).unwrap(),
        std::fs::read(&whole).unwrap()
    );
    // A part without them cannot give them.
    let q = d.path().join("q.partial");
    shard(&q, &[]);
    let o = proof(&["merge", s(&q), "--drift-details", s(&merged)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        err(&o).contains("q.partial") && err(&o).contains("without --drift-details"),
        "{}",
        text(&o)
    );
}

#[test]
fn redacted_ids_never_leave_a_shard_raw() {
    let d = tempfile::tempdir().unwrap();
    let raw = json(&proof(
        &[
            &["replay", "traffic.jsonl"][..],
            common::CONF_POLICIES,
            &["--window", "1m", "-q"],
        ]
        .concat(),
    ));
    let ids: Vec<String> = raw["examples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["request_id"].as_str().unwrap().to_string())
        .collect();
    assert!(!ids.is_empty());
    let p = d.path().join("p.partial");
    let details = d.path().join("d.jsonl");
    shard(&p, &["--redact-ids", "--drift-details", s(&details)]);
    let bytes = std::fs::read(&p).unwrap();
    let body = String::from_utf8_lossy(&bytes).into_owned();
    let decoded = partial::decode(&bytes, "p").unwrap();
    for id in &ids {
        assert!(!body.contains(id.as_str()), "{id} in the partial's bytes");
        for e in decoded.agg.examples.iter().chain(&decoded.agg.drifts) {
            assert_ne!(&e.request_id, id);
        }
    }
    // merge shows the shard's hashes as they are, with or without --redact-ids.
    let redacted = json(&proof(
        &[
            &["replay", "traffic.jsonl"][..],
            common::CONF_POLICIES,
            &["--window", "1m", "-q", "--redact-ids"],
        ]
        .concat(),
    ));
    for flags in [&[][..], &["--redact-ids"][..]] {
        let m = json(&proof(&[&["merge", s(&p), "-q"][..], flags].concat()));
        assert_eq!(m["examples"], redacted["examples"], "{flags:?}");
        assert_eq!(m["config"]["redact_ids"], true);
    }
    // Mixing redacted and raw parts is refused.
    let r = d.path().join("raw.partial");
    shard(&r, &[]);
    let o = proof(&["merge", s(&p), s(&r)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(err(&o).contains("redacted"), "{}", text(&o));
}

#[test]
fn a_hundred_thousand_inputs_merge_into_one_sorted_list() {
    // Two parts of 100 000 inputs each, half of them shared (byte ranges of one file):
    // 150 000 inputs in the merge, sorted, the shared ones with their counts added.
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("p.partial");
    shard(&p, &[]);
    let make = |to: &PathBuf, from: usize| {
        craft(&p, to, |part| {
            let f0 = part.header.files[0].clone();
            let counts = part.agg.files[&0];
            part.header.files = (from..from + 100_000)
                .map(|i| partial::PartFile {
                    path: format!("logs/{i:06}.jsonl"),
                    ..f0.clone()
                })
                .collect();
            // All the records in the part's last input; the others read nothing.
            part.agg.files.clear();
            part.agg.files.insert(99_999, counts);
            for e in part.agg.examples.iter_mut().chain(&mut part.agg.drifts) {
                e.origin.file = 99_999;
            }
            for (o, _) in &mut part.agg.rejection_samples {
                o.file = 99_999;
            }
        })
    };
    let (a, b) = (d.path().join("a.partial"), d.path().join("b.partial"));
    make(&a, 0);
    make(&b, 50_000);
    let o = proof(&["merge", s(&a), s(&b)]);
    let r = json(&o);
    let files = r["inputs"]["files"].as_array().unwrap();
    assert_eq!(files.len(), 150_000);
    assert!(
        files
            .windows(2)
            .all(|w| w[0]["path"].as_str() < w[1]["path"].as_str())
    );
    assert_eq!(files[99_999]["read"], 43);
    assert_eq!(files[149_999]["read"], 43);
    assert_eq!(r["records"]["read"], 86);
}
