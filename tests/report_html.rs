//! report.html as a browser sees it: the real `proof` binary replays the conformance
//! case, a real headless Chromium opens report.html from disk (`file://`, no
//! network) and dumps the rendered DOM; the headline, the key figures and the levels
//! table are checked against report.json. A screenshot is saved as
//! target/report-screenshot.png for review.
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
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_proof"));
    cmd.current_dir(conformance())
        .args(["replay", "traffic.jsonl", "--quiet"])
        .args(if case == 1 {
            CASE_V2_BASIC_R50
        } else {
            CASE_V1_WEIGHTED_R25
        });
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

/// Checks the rendered DOM against report.json.
fn check_dom(dom: &str, r: &Value) {
    let gate = &r["gate"];
    let passed = gate["passed"].as_bool().unwrap();
    let max_safe = gate["max_safe_rollout_percent"].as_u64().unwrap();
    let level = gate["rollout_percent"].as_u64().unwrap();

    let (h1, h1_text) = element(dom, "headline", "</h1>");
    let expected = format!(
        "Gate {} at {level} %: safe up to {max_safe} % rollout",
        if passed { "passed" } else { "FAILED" }
    );
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
    let (_, levels_table) = element(dom, "levels", "</table>");
    let got = rows(levels_table);
    let want = r["levels"].as_array().unwrap();
    assert_eq!(got.len(), want.len());
    for ((tag, cells), l) in got.iter().zip(want) {
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
        // What a reader sees: level, events, breached and rollback windows, safe or not.
        let gate_mark = if lv == level { " (gate)" } else { "" };
        assert_eq!(cells[0], format!("{lv} %{gate_mark}"));
        assert_eq!(cells[1], l["drift_events"].to_string());
        assert_eq!(cells[4], l["breached_windows"].to_string());
        assert_eq!(cells[5], l["rollback_windows"].to_string());
        let safe = l["breached_windows"].as_u64() == Some(0);
        assert_eq!(cells[6], if safe { "yes" } else { "no" });
        assert_eq!(tag.contains("class=\"gate\""), lv == level);
    }

    // The what-if chart has one point per reported level at its max_window_ratio.
    let (_, whatif) = element(dom, "chart-whatif", "</svg>");
    for l in want {
        let key = format!(
            "data-rollout=\"{}\" data-max-window-ratio=\"",
            l["rollout_percent"]
        );
        let at = whatif
            .find(&key)
            .unwrap_or_else(|| panic!("no point {key}"))
            + key.len();
        let v: f64 = whatif[at..at + whatif[at..].find('"').unwrap()]
            .parse()
            .unwrap();
        assert_eq!(v, json_f64(&l["max_window_ratio"]));
    }

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
fn passing_gate_renders_its_own_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let (code, report) = replay(2, &out, &[]);
    // 3 rejected records > --max-rejects 0: exit 3 although the gate passes.
    assert_eq!(code, 3);
    let dom = dump_dom(&out.join("report.html"));
    check_dom(&dom, &report);
    assert!(dom.contains(">Gate passed at 25 %: safe up to 58 % rollout</h1>"));
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
