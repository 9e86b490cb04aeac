//! report.html as a browser sees it: the real `proof` binary replays the conformance
//! case, a real headless Chromium opens report.html from disk (`file://`, no
//! network) and dumps the rendered DOM; the headline, the key figures, the levels
//! table, the what-if points and the worst-windows tables are checked against
//! report.json, also with --min-requests above 1 (where the windows that count for
//! the gate and all windows differ), and the fidelity banner of a replay whose records
//! carry production's verdicts. Chart text is measured to lie inside its chart,
//! and a 3-day run with 18 levels checks the time axis and the line styles. A
//! screenshot is saved as target/report-screenshot.png for review.
//!
//! Needs Chromium (Debian package `chromium`; CHROMIUM=/path overrides). Without it
//! the test fails and says to run scripts/test.sh, which installs it.

mod common;

use common::{CASE_V1_WEIGHTED_R25, CASE_V2_BASIC_R50, conformance, text};

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The two command lines of fixtures/conformance/README.md, run in that directory.
fn replay(case: u8, out: &Path, extra: &[&str]) -> (i32, Value) {
    let case_args = if case == 1 {
        CASE_V2_BASIC_R50
    } else {
        CASE_V1_WEIGHTED_R25
    };
    // A flag in `extra` replaces the case's own (clap takes each flag once).
    let mut args: Vec<&str> = Vec::new();
    let mut it = case_args.iter();
    while let Some(a) = it.next() {
        let value = it.next().unwrap();
        if !extra.contains(a) || *a == "--list" {
            args.extend([*a, *value]);
        }
    }
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_proof"));
    cmd.current_dir(conformance())
        .args(["replay", "traffic.jsonl", "--quiet"])
        .args(&args);
    let o = cmd.args(extra).arg("--out").arg(out).output().unwrap();
    let json = std::fs::read(out.join("report.json"))
        .unwrap_or_else(|e| panic!("no report.json ({e}): {}", text(&o)));
    (
        o.status.code().unwrap_or(-1),
        serde_json::from_slice(&json).unwrap(),
    )
}

fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        return PathBuf::from(p);
    }
    for p in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if Path::new(p).is_file() {
            return PathBuf::from(p);
        }
    }
    panic!(
        "Chromium not found (looked for /usr/bin/chromium, /usr/bin/chromium-browser, $CHROMIUM). \
         This test opens report.html in a real browser: run scripts/test.sh, which installs the \
         Debian package `chromium`, or `apt-get install chromium`."
    );
}

/// Runs headless Chromium on `html` with a fresh profile and the network features off.
fn browse(html: &Path, extra: &[String]) -> Output {
    let profile = tempfile::tempdir().unwrap();
    let url = format!("file://{}", html.canonicalize().unwrap().display());
    let bin = chromium();
    Command::new(&bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(url)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}): run scripts/test.sh, which installs Chromium",
                bin.display()
            )
        })
}

fn dump_dom(html: &Path) -> String {
    let o = browse(html, &["--dump-dom".to_string()]);
    assert!(
        o.status.success(),
        "chromium --dump-dom failed: {}",
        text(&o)
    );
    let dom = String::from_utf8(o.stdout).unwrap();
    assert!(dom.contains("</html>"), "no DOM dumped: {dom}");
    dom
}

/// The start tag of the element with `id`, and the markup up to `close`.
fn element<'a>(dom: &'a str, id: &str, close: &str) -> (&'a str, &'a str) {
    let at = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no element #{id} in the DOM"));
    let start = dom[..at].rfind('<').unwrap();
    let tag_end = at + dom[at..].find('>').unwrap() + 1;
    let end = tag_end + dom[tag_end..].find(close).unwrap();
    (&dom[start..tag_end], &dom[tag_end..end])
}

fn attr<'a>(tag: &'a str, name: &str) -> &'a str {
    let key = format!(" {name}=\"");
    let at = tag
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in {tag}"))
        + key.len();
    &tag[at..at + tag[at..].find('"').unwrap()]
}

/// Text content with tags removed (entities of the escaped characters decoded).
fn strip(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
        .trim()
        .to_string()
}

/// Rows (`<tr …>` start tag, cell texts) of a table body.
fn rows(table: &str) -> Vec<(String, Vec<String>)> {
    let body = &table[table.find("<tbody>").expect("tbody")..];
    body.split("<tr")
        .skip(1)
        .map(|row| {
            let tag = format!("<tr{}", &row[..=row.find('>').unwrap()]);
            let cells = row
                .split("<td")
                .skip(1)
                .map(|c| strip(&format!("<td{}", &c[..c.find("</td>").unwrap()])))
                .collect();
            (tag, cells)
        })
        .collect()
}

/// The big number of a key figure, without its note.
fn figure(inner: &str) -> String {
    strip(inner.split("<small>").next().unwrap())
}

fn json_f64(v: &Value) -> f64 {
    v.as_f64().unwrap()
}

/// Column headers of a table.
fn headers(table: &str) -> Vec<String> {
    let head = &table[..table.find("</thead>").expect("thead")];
    head.split("<th")
        .skip(1)
        .filter(|c| c.starts_with(['>', ' ']))
        .map(|c| strip(&format!("<th{}", &c[..c.find("</th>").unwrap()])))
        .collect()
}

/// A ratio as the page shows it (`0.50 %`, `9.09 %`, `22.2 %`, `0 %`).
fn shown_pct(x: f64) -> String {
    let p = x * 100.0;
    if p == 0.0 {
        "0 %".into()
    } else if p < 10.0 {
        format!("{p:.2} %")
    } else {
        format!("{p:.1} %")
    }
}

/// The largest ratio at level index `li` over the windows with at least
/// --min-requests requests (the ones the gate counts), from report.json alone.
fn max_counted(r: &Value, li: usize) -> Option<f64> {
    let min = r["config"]["min_requests"].as_u64().unwrap();
    r["windows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["requests"].as_u64().unwrap() >= min)
        .map(|w| json_f64(&w["drift"][li]["ratio"]))
        .reduce(f64::max)
}

/// The worst-windows tables against report.json: the windows with drift at the gate
/// level that count for the gate (at least --min-requests requests), worst ratio
/// first, then by start, up to 20, with report.json's numbers and the right status;
/// windows with too few requests only in their own list, up to 5.
fn check_worst_windows(dom: &str, r: &Value) {
    let gate = &r["gate"];
    let level = gate["rollout_percent"].as_u64().unwrap();
    let li = r["levels"]
        .as_array()
        .unwrap()
        .iter()
        .position(|l| l["rollout_percent"].as_u64() == Some(level))
        .unwrap();
    let min = r["config"]["min_requests"].as_u64().unwrap();
    let drift_max = json_f64(&gate["drift_max"]);
    let rollback = drift_max * json_f64(&r["config"]["rollback_factor"]);
    let mut drifting: Vec<&Value> = r["windows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["drift"][li]["events"].as_u64().unwrap() > 0)
        .collect();
    drifting.sort_by(|a, b| {
        json_f64(&b["drift"][li]["ratio"])
            .total_cmp(&json_f64(&a["drift"][li]["ratio"]))
            .then_with(|| a["start"].as_str().cmp(&b["start"].as_str()))
    });
    let (counted, few): (Vec<&Value>, Vec<&Value>) = drifting
        .into_iter()
        .partition(|w| w["requests"].as_u64().unwrap() >= min);
    for (id, want, top) in [
        ("worst-windows", &counted, 20),
        ("worst-windows-too-few", &few, 5),
    ] {
        let want: Vec<&&Value> = want.iter().take(top).collect();
        if want.is_empty() {
            assert!(
                !dom.contains(&format!("<table id=\"{id}\"")),
                "#{id} should not be a table"
            );
            continue;
        }
        let (_, table) = element(dom, id, "</table>");
        let got = rows(table);
        assert_eq!(got.len(), want.len(), "rows of #{id}");
        for ((tag, cells), w) in got.iter().zip(want) {
            let d = &w["drift"][li];
            let (requests, events, ratio) = (
                w["requests"].as_u64().unwrap(),
                d["events"].as_u64().unwrap(),
                json_f64(&d["ratio"]),
            );
            assert_eq!(attr(tag, "data-start"), w["start"].as_str().unwrap());
            assert_eq!(attr(tag, "data-requests"), requests.to_string());
            assert_eq!(attr(tag, "data-events"), events.to_string());
            assert_eq!(attr(tag, "data-ratio").parse::<f64>().unwrap(), ratio);
            let status = if requests < min {
                "too-few"
            } else if ratio > rollback {
                "rollback"
            } else if ratio > drift_max {
                "breach"
            } else {
                "ok"
            };
            assert_eq!(attr(tag, "data-status"), status);
            // What a reader sees.
            assert_eq!(
                cells[0],
                format!(
                    "{} – {}",
                    w["start"].as_str().unwrap(),
                    w["end"].as_str().unwrap()
                )
            );
            assert_eq!(cells[1], requests.to_string());
            assert_eq!(cells[2], events.to_string());
            assert_eq!(cells[3], shown_pct(ratio));
            assert_eq!(cells[4], status);
        }
    }
}

/// Data first, then the reference lines and their labels on top; in the time chart
/// the gate level's line is the last of the level lines.
fn check_draw_order(dom: &str, r: &Value) {
    let level = r["gate"]["rollout_percent"].to_string();
    for id in ["chart-drift-time", "chart-whatif"] {
        let (_, svg) = element(dom, id, "</svg>");
        let last_data = svg.rfind("<path").expect("a data line");
        for label in [">drift max ", ">rollback "] {
            let at = svg
                .find(label)
                .unwrap_or_else(|| panic!("no {label} label in #{id}"));
            assert!(
                at > last_data,
                "#{id}: {label} label drawn under a data line"
            );
        }
    }
    let (_, svg) = element(dom, "chart-drift-time", "</svg>");
    let lines: Vec<&str> = svg
        .split("<path")
        .skip(1)
        .filter(|p| p[..p.find('>').unwrap()].contains("data-rollout="))
        .map(|p| &p[..p.find('>').unwrap()])
        .collect();
    assert_eq!(lines.len(), r["levels"].as_array().unwrap().len());
    let last = lines.last().unwrap();
    assert!(
        last.contains(&format!("data-rollout=\"{level}\"")),
        "the gate level is not drawn last: {last}"
    );
}

/// Checks the rendered DOM against report.json.
fn check_dom(dom: &str, r: &Value) {
    let gate = &r["gate"];
    let passed = gate["passed"].as_bool().unwrap();
    let max_safe = gate["max_safe_rollout_percent"].as_u64().unwrap();
    let level = gate["rollout_percent"].as_u64().unwrap();

    let (h1, h1_text) = element(dom, "headline", "</h1>");
    let gate_words = format!(
        "{} at {level} %: safe up to {max_safe} % rollout",
        if passed { "passed" } else { "FAILED" }
    );
    // Exit code 3 fails the run whatever the gate says, and the headline says so first.
    let expected = if gate["exit_code"] == 3 {
        format!(
            "Run FAILED: {} records rejected, more than --max-rejects {}; gate {gate_words}",
            r["records"]["rejected"], r["config"]["max_rejects"]
        )
    } else if r["plan"].is_object() {
        // With a plan its verdict leads (SPEC §9), checked by the plan test itself.
        let h = r["summary"]["headline"].as_str().unwrap();
        assert!(
            h.starts_with("Plan ") && h.ends_with(&format!("; gate {gate_words}")),
            "{h}"
        );
        h.to_string()
    } else {
        format!("Gate {gate_words}")
    };
    assert_eq!(strip(h1_text), expected);
    assert_eq!(expected, r["summary"]["headline"].as_str().unwrap());
    assert_eq!(attr(h1, "data-passed"), passed.to_string());
    assert_eq!(attr(h1, "data-exit-code"), gate["exit_code"].to_string());

    let (tag, inner) = element(dom, "max-safe", "</dd>");
    assert_eq!(attr(tag, "data-value"), max_safe.to_string());
    assert_eq!(figure(inner), format!("{max_safe} %"));
    let (tag, _) = element(dom, "gate-level", "</dd>");
    assert_eq!(attr(tag, "data-value"), level.to_string());
    let (tag, inner) = element(dom, "breached-windows", "</dd>");
    let breached = gate["breached_windows"].as_array().unwrap().len();
    assert_eq!(attr(tag, "data-value"), breached.to_string());
    assert_eq!(
        figure(inner),
        format!("{breached} of {}", r["windows"].as_array().unwrap().len())
    );
    let (tag, _) = element(dom, "drift-max", "</dd>");
    assert_eq!(
        json_f64(&serde_json::from_str(attr(tag, "data-value")).unwrap()),
        json_f64(&gate["drift_max"])
    );
    let (tag, _) = element(dom, "records-evaluated", "</dd>");
    assert_eq!(
        attr(tag, "data-value"),
        r["records"]["evaluated"].to_string()
    );
    let (tag, _) = element(dom, "exit-code", "</dd>");
    assert_eq!(attr(tag, "data-value"), gate["exit_code"].to_string());
    let (tag, _) = element(dom, "whatif-max-safe", "</line>");
    assert_eq!(attr(tag, "data-value"), max_safe.to_string());

    // Levels table: one row per level, in report.json's order, same numbers.
    let min = r["config"]["min_requests"].as_u64().unwrap();
    let (_, levels_table) = element(dom, "levels", "</table>");
    let heads = headers(levels_table);
    let col = |name: &str| {
        heads
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name:?} in {heads:?}"))
    };
    // With --min-requests above 1 both worst-window figures are shown, each named.
    let (all_col, counted_col) = if min > 1 {
        (col("Worst window (all)"), Some(col("Worst counted window")))
    } else {
        (col("Worst window"), None)
    };
    let got = rows(levels_table);
    let want = r["levels"].as_array().unwrap();
    assert_eq!(got.len(), want.len());
    for (li, ((tag, cells), l)) in got.iter().zip(want).enumerate() {
        let lv = l["rollout_percent"].as_u64().unwrap();
        assert_eq!(attr(tag, "data-rollout"), lv.to_string());
        for key in ["drift_events", "breached_windows", "rollback_windows"] {
            assert_eq!(
                attr(tag, &format!("data-{}", key.replace('_', "-"))),
                l[key].to_string()
            );
        }
        for key in ["drift_ratio", "max_window_ratio"] {
            let v: f64 = attr(tag, &format!("data-{}", key.replace('_', "-")))
                .parse()
                .unwrap();
            assert_eq!(v, json_f64(&l[key]), "{key} at {lv} %");
        }
        // The counted figure, recomputed from report.json's windows.
        let counted = max_counted(r, li);
        match counted {
            Some(c) => {
                let v: f64 = attr(tag, "data-max-counted-window-ratio").parse().unwrap();
                assert_eq!(v, c, "counted worst window at {lv} %");
                // It is what the gate sees: above drift max exactly when a window breaches.
                assert_eq!(
                    c > json_f64(&gate["drift_max"]),
                    l["breached_windows"].as_u64() != Some(0),
                    "at {lv} %"
                );
            }
            None => assert!(!tag.contains("data-max-counted-window-ratio")),
        }
        // What a reader sees: level, events, both worst windows, breached and rollback
        // windows, safe or not.
        let gate_mark = if lv == level { " (gate)" } else { "" };
        assert_eq!(cells[col("Rollout")], format!("{lv} %{gate_mark}"));
        assert_eq!(cells[col("Drift events")], l["drift_events"].to_string());
        assert_eq!(cells[all_col], shown_pct(json_f64(&l["max_window_ratio"])));
        if let Some(cc) = counted_col {
            assert_eq!(cells[cc], counted.map_or("–".to_string(), shown_pct));
        }
        assert_eq!(
            cells[col("Breached windows")],
            l["breached_windows"].to_string()
        );
        assert_eq!(
            cells[col("Rollback windows")],
            l["rollback_windows"].to_string()
        );
        let safe = l["breached_windows"].as_u64() == Some(0);
        assert_eq!(cells[col("Safe")], if safe { "yes" } else { "no" });
        assert_eq!(tag.contains("class=\"gate\""), lv == level);
    }

    // The what-if chart has one point per reported level, at the worst window that
    // counts for the gate, red exactly when the level breaches; report.json's
    // max_window_ratio (all windows) rides along.
    let (_, whatif) = element(dom, "chart-whatif", "</svg>");
    for (li, l) in want.iter().enumerate() {
        let key = format!("data-rollout=\"{}\"", l["rollout_percent"]);
        let at = whatif
            .find(&key)
            .unwrap_or_else(|| panic!("no point {key}"));
        let tag = &whatif[whatif[..at].rfind('<').unwrap()..at + whatif[at..].find('>').unwrap()];
        let v: f64 = attr(tag, "data-max-window-ratio").parse().unwrap();
        assert_eq!(v, json_f64(&l["max_window_ratio"]));
        if let Some(c) = max_counted(r, li) {
            let v: f64 = attr(tag, "data-max-counted-window-ratio").parse().unwrap();
            assert_eq!(v, c);
        }
        let breached = l["breached_windows"].as_u64() != Some(0);
        assert_eq!(
            attr(tag, "fill"),
            if breached { "#b91c1c" } else { "#1a7f37" }
        );
    }

    check_worst_windows(dom, r);
    check_draw_order(dom, r);

    // Every drift example and every rejection reason is listed.
    let examples = r["examples"].as_array().unwrap();
    if !examples.is_empty() {
        let (_, t) = element(dom, "examples", "</table>");
        let got = rows(t);
        assert_eq!(got.len(), examples.len());
        for ((_, cells), e) in got.iter().zip(examples) {
            assert_eq!(cells[0], e["ts"].as_str().unwrap());
            assert_eq!(cells[1], e["request_id"].as_str().unwrap());
            assert_eq!(cells[3], e["cause"].as_str().unwrap());
            assert_eq!(cells[4], e["bucket"].to_string());
        }
    }
    let by_reason = r["records"]["rejected_by_reason"].as_object().unwrap();
    if !by_reason.is_empty() {
        let (_, t) = element(dom, "rejections", "</table>");
        let got = rows(t);
        assert_eq!(got.len(), by_reason.len());
        for ((_, cells), (reason, n)) in got.iter().zip(by_reason) {
            assert_eq!((&cells[0], &cells[1]), (reason, &n.to_string()));
        }
    }
    // Fidelity (SPEC §11): the banner's figures, kinds and examples are report.json's.
    match r["fidelity"].as_object() {
        None => assert!(!dom.contains("id=\"fidelity\"")),
        Some(f) => {
            let (tag, _) = element(dom, "fidelity", "</section>");
            for key in ["checked", "faithful", "unfaithful"] {
                assert_eq!(attr(tag, &format!("data-{key}")), f[key].to_string());
            }
            let kinds = f["by_kind"].as_object().unwrap();
            if kinds.is_empty() {
                assert!(!dom.contains("id=\"unfaithful-examples\""));
            } else {
                let (_, t) = element(dom, "fidelity-kinds", "</table>");
                let got: Vec<(String, String)> = rows(t)
                    .into_iter()
                    .map(|(_, c)| (c[0].clone(), c[1].clone()))
                    .collect();
                let want: Vec<(String, String)> = kinds
                    .iter()
                    .map(|(k, n)| (k.replace("->", " → "), n.to_string()))
                    .collect();
                assert_eq!(got, want);
                let (_, t) = element(dom, "unfaithful-examples", "</table>");
                let got = rows(t);
                let want = r["unfaithful_examples"].as_array().unwrap();
                assert_eq!(got.len(), want.len());
                assert!(!want.is_empty());
                for ((_, cells), u) in got.iter().zip(want) {
                    for (i, key) in ["ts", "request_id", "recorded", "replayed"]
                        .iter()
                        .enumerate()
                    {
                        assert_eq!(cells[i], u[key].as_str().unwrap(), "{key}");
                    }
                }
            }
        }
    }
    // Inputs: the IR hashes of both paths.
    let (_, t) = element(dom, "policies", "</table>");
    let got = rows(t);
    for ((_, cells), key) in got.iter().zip(["baseline", "candidate"]) {
        assert_eq!(cells[1], r["inputs"][key]["policy_id"].as_str().unwrap());
        assert_eq!(cells[2], r["inputs"][key]["ir_hash"].as_str().unwrap());
    }
}

/// The insides of every tag, `<` and `>` left out.
fn tags(html: &str) -> Vec<&str> {
    html.split('<')
        .skip(1)
        .map(|t| &t[..t.find('>').unwrap_or(t.len())])
        .collect()
}

/// No script, no external resource: the page works from a CI artifact, offline.
/// Text is escaped, so every `<` starts a real tag; tags and the style sheet are checked.
fn check_self_contained(html: &str) {
    for tag in tags(html) {
        let name = tag.split([' ', '>', '/']).next().unwrap_or("");
        assert!(
            ![
                "script", "link", "img", "iframe", "object", "embed", "image", "use"
            ]
            .contains(&name),
            "report.html has a <{tag}> tag"
        );
        // Attribute values are data (escaped); what matters is the attribute names,
        // and no style attribute may load anything.
        let names: String = tag.split('"').step_by(2).collect();
        for a in names.split_whitespace().skip(1) {
            assert!(
                !["src=", "href=", "xlink:href=", "on"]
                    .iter()
                    .any(|bad| a.starts_with(bad)),
                "report.html tag <{tag}> has the attribute {a}"
            );
        }
        assert!(!tag.contains("url("), "report.html tag <{tag}> loads a url");
    }
    let css = &html[html.find("<style>").unwrap()..html.find("</style>").unwrap()];
    for bad in ["@import", "url(", "@font-face"] {
        assert!(!css.contains(bad), "the style sheet contains {bad:?}");
    }
}

#[test]
fn rendered_dom_matches_report_json_and_screenshot_is_saved() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let (code, report) = replay(1, &out, &[]);
    assert_eq!(code, 1);
    let html = out.join("report.html");
    let source = std::fs::read_to_string(&html).unwrap();
    check_self_contained(&source);
    let dom = dump_dom(&html);
    check_dom(&dom, &report);
    check_text_inside_charts(&html);
    // The conformance case by hand: gate at 50 % fails, safe up to 23 %.
    assert!(dom.contains(">Gate FAILED at 50 %: safe up to 23 % rollout</h1>"));

    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap();
    let shot = target.join("report-screenshot.png");
    let _ = std::fs::remove_file(&shot);
    let o = browse(
        &html,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,2400".to_string(),
            "--hide-scrollbars".to_string(),
        ],
    );
    assert!(
        o.status.success(),
        "chromium --screenshot failed: {}",
        text(&o)
    );
    let png = std::fs::read(&shot).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!((width, height), (1280, 2400));
}

#[test]
fn passing_gate_renders_its_own_numbers_and_the_fidelity_banner() {
    // The fidelity command line (SPEC §11: traffic_verdicts.jsonl carries production's
    // verdicts, two of which the replayed baseline does not reproduce) with
    // --max-rejects 0: its 4 rejected records exit 3 although the gate passes, and
    // 2 unfaithful of 39 stay within --max-unfaithful-ratio 0.1.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut args: Vec<&str> = common::CASE_V2_FIDELITY_SCORE_R25.to_vec();
    let at = args.iter().position(|a| *a == "--max-rejects").unwrap();
    args[at + 1] = "0";
    let o = Command::new(env!("CARGO_BIN_EXE_proof"))
        .current_dir(conformance())
        .args(["replay", "traffic_verdicts.jsonl", "--quiet"])
        .args(&args)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let report: Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let dom = dump_dom(&out.join("report.html"));
    check_dom(&dom, &report);
    // The run fails first; the gate's own finding follows.
    assert!(dom.contains(
        ">Run FAILED: 4 records rejected, more than --max-rejects 0; gate passed at 25 %: safe up to 34 % rollout</h1>"
    ));
    let verdict = report["summary"]["verdict"].as_str().unwrap();
    assert!(
        verdict.starts_with("run FAILED: 4 records rejected, more than --max-rejects 0 ("),
        "{verdict}"
    );
    // The banner under the headline: 37 of 39 reproduced, 2 unfaithful (5.13 %) within 0.1.
    let (tag, inner) = element(&dom, "fidelity", "</section>");
    for (name, want) in [
        ("data-checked", "39"),
        ("data-faithful", "37"),
        ("data-unfaithful", "2"),
        ("data-limit", "0.1"),
        ("data-passed", "true"),
    ] {
        assert_eq!(attr(tag, name), want, "{name}");
    }
    assert_eq!(attr(tag, "class"), "good");
    let (_, head) = element(inner, "fidelity-headline", "</p>");
    assert_eq!(
        strip(head),
        "The replay reproduced 37 of 39 production verdicts (94.9 %)."
    );
    assert!(dom.find("id=\"fidelity\"").unwrap() < dom.find("id=\"gate-level\"").unwrap());
}

#[test]
fn min_requests_splits_the_windows_that_count_from_the_rest() {
    // Gate at 100 % with --min-requests 10: windows of 9 requests never breach. The
    // 08:10 window (2 of 9, 22.2 %) is the worst of all windows but does not count;
    // the worst counted window is 08:05 (1 of 10).
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let (code, report) = replay(1, &out, &["--min-requests", "10", "--rollout", "100"]);
    assert_eq!(code, 1);
    let dom = dump_dom(&out.join("report.html"));
    check_dom(&dom, &report);
    let at100 = &report["levels"][6];
    assert_eq!(at100["rollout_percent"], 100);
    assert_eq!(json_f64(&at100["max_window_ratio"]), 2.0 / 9.0);
    let (_, t) = element(&dom, "worst-windows", "</table>");
    let starts: Vec<String> = rows(t)
        .iter()
        .map(|(tag, _)| attr(tag, "data-start").to_string())
        .collect();
    assert_eq!(starts, ["2026-11-05T08:05:00Z", "2026-11-05T08:15:00Z"]);
    let (_, t) = element(&dom, "worst-windows-too-few", "</table>");
    let few: Vec<String> = rows(t)
        .iter()
        .map(|(tag, _)| attr(tag, "data-start").to_string())
        .collect();
    assert_eq!(few, ["2026-11-05T08:10:00Z"]);
    // The what-if point at 100 % sits at 10 %, not at 22.2 %.
    let (_, whatif) = element(&dom, "chart-whatif", "</svg>");
    assert!(whatif.contains("data-rollout=\"100\" data-max-counted-window-ratio=\"0.1\""));
    assert!(
        whatif.contains("id=\"whatif-all\""),
        "the all-windows curve is drawn"
    );
    check_text_inside_charts(&out.join("report.html"));
}

/// Text of every chart (tick labels, reference-line labels) lies inside its SVG, as
/// Chromium lays it out: a copy of the page with a measuring script (the page itself
/// has none) writes what sticks out into `#overflow`.
fn check_text_inside_charts(html: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("measure.html");
    let page = std::fs::read_to_string(html).unwrap();
    let script = r#"<script>
const out = [];
for (const svg of document.querySelectorAll('svg.chart')) {
  const box = svg.getBoundingClientRect();
  for (const t of svg.querySelectorAll('text')) {
    const b = t.getBoundingClientRect();
    if (b.width > 0 && (b.left < box.left - 0.5 || b.right > box.right + 0.5)) {
      out.push(svg.id + ': "' + t.textContent + '" spans ' + b.left.toFixed(1) + '..' + b.right.toFixed(1) +
        ' of ' + box.left.toFixed(1) + '..' + box.right.toFixed(1));
    }
  }
}
const pre = document.createElement('pre');
pre.id = 'overflow';
pre.textContent = 'checked;' + out.join('; ');
document.body.appendChild(pre);
</script></body>"#;
    std::fs::write(&copy, page.replace("</body>", script)).unwrap();
    let dom = dump_dom(&copy);
    let (_, got) = element(&dom, "overflow", "</pre>");
    assert_eq!(got, "checked;", "chart text outside its chart");
}

#[test]
fn multi_day_run_with_many_levels_keeps_labels_inside_and_lines_apart() {
    // Three days of generated traffic in hourly windows, 18 levels (17 besides the
    // gate: more than the palette's 15 colours): the last time label ("11-05 00:00")
    // must not be clipped, every level needs its own line style and the gate level
    // one that no other level has.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("three_days.jsonl");
    let bin = env!("CARGO_BIN_EXE_proof");
    let o = Command::new(bin)
        .args(["gen", "--records", "6000", "--duration", "3d", "-o"])
        .arg(&log)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let out = dir.path().join("out");
    let scenario =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/scenarios/lksg_v2_canary.yaml");
    let o = Command::new(bin)
        .arg("replay")
        .arg(&log)
        .arg("--scenario")
        .arg(&scenario)
        .args([
            "--window",
            "1h",
            "--min-requests",
            "1",
            "--levels",
            "0,1,2,3,4,5,7,10,15,20,25,30,40,50,60,75,90,100",
            "--quiet",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", text(&o));
    let html = out.join("report.html");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains(">11-05 00:00</text>"), "no last day label");
    check_text_inside_charts(&html);

    let (_, svg) = element(&page, "chart-drift-time", "</svg>");
    let styles: Vec<(String, String, String)> = svg
        .split("<path")
        .skip(1)
        .map(|p| &p[..p.find('>').unwrap()])
        .filter(|t| t.contains("data-rollout="))
        .map(|t| {
            let get = |name: &str| {
                t.find(&format!(" {name}=\""))
                    .map_or(String::new(), |_| attr(t, name).to_string())
            };
            (get("data-rollout"), get("stroke"), get("stroke-dasharray"))
        })
        .collect();
    assert_eq!(styles.len(), 18);
    for (i, a) in styles.iter().enumerate() {
        for b in &styles[i + 1..] {
            assert!(
                (&a.1, &a.2) != (&b.1, &b.2),
                "levels {} and {} look alike",
                a.0,
                b.0
            );
        }
    }
    let gate = styles.iter().find(|s| s.0 == "10").unwrap();
    assert_eq!(
        styles.iter().filter(|s| s.1 == gate.1).count(),
        1,
        "gate colour shared"
    );
}

#[test]
fn text_from_inputs_cannot_inject_markup() {
    // A candidate policy id and a log file name full of markup.
    let dir = tempfile::tempdir().unwrap();
    let c = conformance();
    let evil_id =
        "demo.v2\"><img id=\"pwned\" src=x onerror=alert(1)><script>alert(2)</script>&amp;";
    let mut ir: Value =
        serde_json::from_slice(&std::fs::read(c.join("demo.v2.ir.json")).unwrap()).unwrap();
    ir["policy_id"] = Value::String(evil_id.into());
    ir.as_object_mut().unwrap().remove("ir_hash");
    let ir_path = dir.path().join("evil.ir.json");
    std::fs::write(&ir_path, serde_json::to_vec(&ir).unwrap()).unwrap();
    let log = dir.path().join("<b id=\"pwned2\">x&.jsonl");
    std::fs::copy(c.join("traffic.jsonl"), &log).unwrap();
    let out = dir.path().join("out");
    let o = Command::new(env!("CARGO_BIN_EXE_proof"))
        .current_dir(&c)
        .arg("replay")
        .arg(&log)
        .args(["--ir", "demo.v1.ir.json", "--candidate-ir"])
        .arg(&ir_path)
        .args([
            "--list",
            "sanctions=sanctions.csv",
            "--list",
            "high_risk=high_risk.txt",
            "--max-rejects",
            "3",
            "--quiet",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let source = std::fs::read_to_string(out.join("report.html")).unwrap();
    check_self_contained(&source);
    let dom = dump_dom(&out.join("report.html"));
    // In serialised HTML every `<` opens a real tag (text has `&lt;`), and quotes
    // inside attribute values are `&quot;`: no injected element or attribute exists.
    let tags = tags(&dom);
    assert!(tags.iter().all(|t| !t.contains(" id=\"pwned")));
    assert!(
        tags.iter()
            .all(|t| !t.starts_with("img") && !t.starts_with("script") && !t.starts_with("b "))
    );
    assert!(dom.contains("&lt;script&gt;alert(2)&lt;/script&gt;"));
    // The text itself is shown as text.
    let (_, t) = element(&dom, "policies", "</table>");
    assert_eq!(rows(t)[1].1[1], evil_id);
    let (_, t) = element(&dom, "input-files", "</table>");
    assert_eq!(rows(t)[0].1[0], log.display().to_string());
}

/// The third conformance command line (SPEC §8, §9: 1-minute windows, confidence
/// 0.6, plan.yaml from every start).
fn replay_plan(out: &Path) -> (i32, Value) {
    let o = Command::new(env!("CARGO_BIN_EXE_proof"))
        .current_dir(conformance())
        .args(["replay", "traffic.jsonl", "--quiet"])
        .args(common::CASE_V2_PLAN_CONF60)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    let json = std::fs::read(out.join("report.json"))
        .unwrap_or_else(|e| panic!("no report.json ({e}): {}", text(&o)));
    (
        o.status.code().unwrap_or(-1),
        serde_json::from_slice(&json).unwrap(),
    )
}

#[test]
fn rollout_plan_section_shows_the_staircase_runs_and_bands() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let (code, report) = replay_plan(&out);
    assert_eq!(code, 1);
    let html = out.join("report.html");
    check_self_contained(&std::fs::read_to_string(&html).unwrap());
    let dom = dump_dom(&html);
    check_dom(&dom, &report);
    check_text_inside_charts(&html);
    // The plan's verdict leads the headline and heads its section.
    assert!(dom.contains(
        ">Plan ROLLED BACK in 5 of 17 runs (first at step 3, 08:14Z); gate FAILED at 100 %: safe up to 23 % rollout</h1>"
    ));
    let (tag, v) = element(&dom, "plan-verdict", "</p>");
    assert_eq!(attr(tag, "data-passed"), "false");
    assert_eq!(
        strip(v),
        "plan ROLLED BACK in 5 of 17 runs (first at step 3, 08:14Z)"
    );
    assert!(dom.find("id=\"plan\"").unwrap() < dom.find("id=\"chart-drift-time\"").unwrap());

    // One row per run, in start order, outcomes and impact as in report.json.
    let runs = report["plan"]["runs"].as_array().unwrap();
    let (_, t) = element(&dom, "plan-runs", "</table>");
    let rows = rows(t);
    assert_eq!(rows.len(), runs.len());
    for ((tag, cells), run) in rows.iter().zip(runs) {
        assert_eq!(attr(tag, "data-start"), run["start"].as_str().unwrap());
        assert_eq!(attr(tag, "data-outcome"), run["outcome"].as_str().unwrap());
        assert_eq!(cells[7], run["impact"]["events"].to_string());
        assert_eq!(cells[8], run["impact"]["new_denials"].to_string());
    }
    // The worst start: the earliest of the runs with 2 drift events (08:00).
    let worst: Vec<&String> = rows
        .iter()
        .filter(|(tag, _)| tag.contains("class=\"worst\""))
        .map(|(_, c)| &c[0])
        .collect();
    assert_eq!(worst, ["2026-11-05T08:00:00Z (worst)"]);
    let (tag, _) = element(&dom, "plan-worst", "</p>");
    assert_eq!(attr(tag, "data-start"), "2026-11-05T08:00:00Z");
    // Steps: all 5 rollbacks in step 3 (100 %).
    let (_, t) = element(&dom, "plan-steps", "</table>");
    let rolled: Vec<String> = rows_of(t, "data-rolled-back");
    assert_eq!(rolled, ["0", "0", "5"]);

    // The staircase: 10 % → 50 % → 100 % → 0 after the rollback at 08:14.
    let (_, chart) = element(&dom, "chart-plan", "</svg>");
    let stairs = chart.split("id=\"plan-staircase\"").nth(1).unwrap();
    let d = attr(&stairs[..stairs.find('>').unwrap()], "d");
    assert_eq!(d.matches('V').count(), 3, "three level changes: {d}");
    assert!(
        chart.contains("data-at=\"2026-11-05T08:14:00Z\""),
        "rollback marker"
    );
    // Judged windows: 08:00 … 08:13 with records (12), each with its Wilson band; the
    // two that breached (08:12, 08:13 at 100 %) are shaded.
    assert_eq!(chart.matches("class=\"band\"").count(), 12);
    assert_eq!(chart.matches("class=\"plan-breach\"").count(), 2);
    assert!(chart.contains("data-start=\"2026-11-05T08:12:00Z\" data-level=\"100\" data-events=\"1\" data-breach=\"true\""));
    // Gate-level bands in the drift chart: one per window (17).
    let (_, chart) = element(&dom, "chart-drift-time", "</svg>");
    assert_eq!(chart.matches("class=\"band\"").count(), 17);
    // z(0.6)² ≈ 0.0642: 0 of 2 has upper ≈ 3.1 % ≤ 5 %, 0 of 1 has 6.0 %.
    let (_, s) = element(&dom, "requests-to-pass", "</p>");
    assert_eq!(
        strip(s),
        "Windows need ≥ 2 requests to show drift ≤ 5.00 % at confidence 0.6; 13 of 17 windows have that many."
    );
    let (tag, _) = element(&dom, "proven-safe", "</dd>");
    assert_eq!(attr(tag, "data-value"), "23");
}

/// The values of `name` on every row of a table body.
fn rows_of(table: &str, name: &str) -> Vec<String> {
    rows(table)
        .iter()
        .map(|(tag, _)| attr(tag, name).to_string())
        .collect()
}

#[test]
fn long_ids_paths_and_rule_names_render_whole() {
    // Request ids of 70 characters, a log named through `scenarios/../logs`, and a
    // rule id longer than the cause chart shows in full.
    let dir = tempfile::tempdir().unwrap();
    let c = conformance();
    let long_rule = "audit_score_of_the_supplier_within_the_last_two_years";
    for name in ["demo.v1.ir.json", "demo.v2.ir.json"] {
        let ir = std::fs::read_to_string(c.join(name)).unwrap();
        let mut v: Value =
            serde_json::from_str(&ir.replace("\"audit_score\"", &format!("\"{long_rule}\"")))
                .unwrap();
        v.as_object_mut().unwrap().remove("policy_hash");
        std::fs::write(dir.path().join(name), serde_json::to_vec(&v).unwrap()).unwrap();
    }
    std::fs::create_dir_all(dir.path().join("logs")).unwrap();
    std::fs::create_dir_all(dir.path().join("scenarios")).unwrap();
    let log = std::fs::read_to_string(c.join("traffic.jsonl")).unwrap();
    let pad = "x".repeat(60);
    std::fs::write(
        dir.path().join("logs/t.jsonl"),
        log.replace(
            "\"request_id\":\"req-",
            &format!("\"request_id\":\"req-{pad}-"),
        ),
    )
    .unwrap();
    let out = dir.path().join("out");
    let o = Command::new(env!("CARGO_BIN_EXE_proof"))
        .current_dir(dir.path())
        .args([
            "replay",
            "scenarios/../logs/t.jsonl",
            "--ir",
            "demo.v1.ir.json",
            "--candidate-ir",
            "demo.v2.ir.json",
        ])
        .arg("--list")
        .arg(format!("sanctions={}", c.join("sanctions.csv").display()))
        .arg("--list")
        .arg(format!("high_risk={}", c.join("high_risk.txt").display()))
        .args(["--max-rejects", "3", "--quiet", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let html = out.join("report.html");
    let dom = dump_dom(&html);
    // Paths shown normalised (report.json keeps them as given).
    let (_, t) = element(&dom, "input-files", "</table>");
    assert_eq!(rows(t)[0].1[0], "logs/t.jsonl");
    let (_, t) = element(&dom, "examples", "</table>");
    let ex = rows(t);
    assert!(
        ex.iter().all(|(_, c)| c[6].starts_with("logs/t.jsonl:")),
        "{:?}",
        ex[0]
    );
    assert!(ex[0].1[1].starts_with(&format!("req-{pad}-")));
    // The examples are said to be taken as at 100 %.
    assert!(dom.contains("drifting records as at 100 % (every record enforced"));
    // The long rule name is shortened with an ellipsis, and nothing sticks out.
    let (_, chart) = element(&dom, "chart-drift-cause", "</svg>");
    assert!(chart.contains(&format!("{}…", &long_rule[..27])), "{chart}");
    check_text_inside_charts(&html);

    // Request ids lie on one line each, as Chromium lays the table out.
    let copy = dir.path().join("measure.html");
    let page = std::fs::read_to_string(&html).unwrap();
    let script = r#"<script>
const bad = [];
for (const s of document.querySelectorAll('span.id')) {
  if (s.getClientRects().length !== 1) bad.push(s.textContent);
}
const pre = document.createElement('pre');
pre.id = 'wrapped';
pre.textContent = 'checked ' + document.querySelectorAll('span.id').length + ';' + bad.join('; ');
document.body.appendChild(pre);
</script></body>"#;
    std::fs::write(&copy, page.replace("</body>", script)).unwrap();
    let dom = dump_dom(&copy);
    let (_, got) = element(&dom, "wrapped", "</pre>");
    assert!(
        got.starts_with("checked ") && got.ends_with(';'),
        "ids wrapped: {got}"
    );
    assert_ne!(got, "checked 0;");
}

#[test]
fn evaluation_error_warnings_show_in_the_banner() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = common::replay_without_lists(&out);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let dom = dump_dom(&out.join("report.html"));
    // The banner is amber, not green, and lists each warning inside it.
    assert!(dom.contains("<header class=\"banner none\">"));
    let (_, w) = element(&dom, "warnings", "</ul>");
    let items: Vec<String> = w.split("<li>").skip(1).map(strip).collect();
    assert_eq!(items.len(), 3);
    assert!(items[0].starts_with(
        "Warning: rule no_sanctions: missing_var on 100.0 % of the enforced path's records"
    ));
    assert!(dom.find("id=\"warnings\"").unwrap() < dom.find("</header>").unwrap());
    let (_, t) = element(&dom, "evaluation-errors", "</table>");
    // Every (path, rule, reason), warned or not: low_risk_country errors on 10 of 39
    // shadow records (25.6 %, under the warning's half) and is listed all the same.
    let r = rows(t);
    assert_eq!(r.len(), 4);
    assert_eq!(
        r[3].1[..4],
        ["shadow", "low_risk_country", "missing_var", "10"]
    );
}
