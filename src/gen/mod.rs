//! A deterministic generator of realistic LkSG (supply-chain due diligence) traffic:
//! diurnal request rate, supplier and UBO hashes, sanctions and watchlist hits, high-risk
//! countries, stale audits and missing inputs at small rates. The same seed gives the
//! same bytes on every machine (PCG64 from `rand_pcg`, no floating-point libm calls
//! beyond `ln`, `exp` and `sqrt`).
//!
//! The reference lists the generated traffic refers to come from the same universe, so
//! `lists` and `Generator` agree on which suppliers are sanctioned. The writers are
//! [`jsonl`] (plain, gzip, zstd) and [`parquet`]; `cli::generate` only maps flags.

pub mod jsonl;
pub mod opa;
pub mod parquet;
pub mod verdicts;

pub use jsonl::to_jsonl;

use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;
use serde_json::{Map, Value, json};

use crate::policy::time::format_rfc3339_ms;
use crate::replay::record::Record;

/// Suppliers in the universe.
pub const SUPPLIERS: u64 = 20_000;
/// The first this-many suppliers are on the sanctions list.
pub const SANCTIONED: u64 = 40;
/// Beneficial owners in the universe.
pub const UBOS: u64 = 30_000;
/// The first this-many UBOs are on the watchlist.
pub const WATCHLISTED: u64 = 60;

/// Countries with weights (ISO 3166 alpha-2); the first group is low risk.
const COUNTRIES: [(&str, u32); 14] = [
    ("DE", 30),
    ("PL", 10),
    ("CN", 14),
    ("IN", 8),
    ("VN", 6),
    ("TR", 6),
    ("BR", 5),
    ("BD", 5),
    ("US", 5),
    ("FR", 5),
    ("MX", 3),
    ("KP", 1),
    ("MM", 1),
    ("IR", 1),
];

/// Countries on the high-risk list.
pub const HIGH_RISK: [&str; 5] = ["KP", "MM", "IR", "SY", "AF"];

/// Generator settings.
#[derive(Debug, Clone)]
pub struct GenConfig {
    /// Number of records.
    pub records: u64,
    /// First instant, epoch ms.
    pub start_ms: i64,
    /// Length of the span, ms.
    pub duration_ms: i64,
    /// PRNG seed.
    pub seed: u64,
    /// Policy id written into records.
    pub policy_id: String,
    /// Share of records naming another policy (they are skipped by replay).
    pub other_policy_rate: f64,
    /// Share of records with a missing or empty input.
    pub missing_input_rate: f64,
    /// Tenants the requests come from (`context.tenant.id`, a few large ones and a long
    /// tail); 0 writes no tenant.
    pub tenants: u64,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            records: 10_000,
            start_ms: 1_793_577_600_000, // 2026-11-02T00:00:00Z
            duration_ms: 86_400_000,
            seed: 42,
            policy_id: "lksg.v1".into(),
            other_policy_rate: 0.002,
            missing_input_rate: 0.004,
            tenants: 0,
        }
    }
}

/// Stable pseudo-hash of an entity number (SplitMix64 finaliser).
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Hash of supplier `i`.
pub fn supplier(i: u64) -> String {
    format!("0x{:016x}", mix(i))
}

/// Hash of UBO `i`.
pub fn ubo(i: u64) -> String {
    format!("0x{:016x}", mix(i ^ 0xABCD_0000_0000_0000))
}

/// Relative request rate over the day (UTC hour): low at night, peak around 10:00.
fn diurnal(hour: f64) -> f64 {
    let d = (hour - 10.5) / 3.5;
    0.08 + (-d * d).exp() + 0.35 * (-((hour - 15.5) / 2.0).powi(2)).exp()
}

/// Streams generated records.
pub struct Generator {
    cfg: GenConfig,
    rng: Pcg64Mcg,
    /// Cumulative rate per minute of the day.
    cdf: Vec<f64>,
    /// Sorted uniforms are produced from exponential spacings, normalised by their sum.
    spacing_sum: f64,
    spacing_acc: f64,
    spacing_rng: Pcg64Mcg,
    /// Tenants by cumulative weight (empty without tenants), drawn from their own
    /// stream so the records are otherwise the same bytes with or without them.
    tenant_cdf: Vec<f64>,
    tenant_rng: Pcg64Mcg,
    next: u64,
}

impl Generator {
    /// A generator for `cfg`.
    pub fn new(cfg: GenConfig) -> Self {
        let mut cdf = Vec::with_capacity(1441);
        let mut acc = 0.0;
        cdf.push(0.0);
        for m in 0..1440 {
            acc += diurnal((m as f64 + 0.5) / 60.0);
            cdf.push(acc);
        }
        // First pass over the spacings to know their sum (second pass replays them).
        let mut pre = Pcg64Mcg::seed_from_u64(cfg.seed ^ 0x5EED);
        let mut sum = 0.0;
        for _ in 0..=cfg.records {
            sum += -(1.0 - pre.random::<f64>()).ln();
        }
        // Zipf weights 1/k: tenant 1 sends the most requests, the tail a few each.
        let mut tenant_cdf = Vec::with_capacity(cfg.tenants as usize);
        let mut acc = 0.0;
        for k in 1..=cfg.tenants {
            acc += 1.0 / k as f64;
            tenant_cdf.push(acc);
        }
        Generator {
            rng: Pcg64Mcg::seed_from_u64(cfg.seed),
            spacing_rng: Pcg64Mcg::seed_from_u64(cfg.seed ^ 0x5EED),
            tenant_rng: Pcg64Mcg::seed_from_u64(cfg.seed ^ 0x007E_4A47),
            tenant_cdf,
            cfg,
            cdf,
            spacing_sum: sum,
            spacing_acc: 0.0,
            next: 0,
        }
    }

    /// Maps a uniform in [0, 1) through the diurnal CDF to an offset in ms.
    ///
    /// The profile repeats every period: a day, or the whole span when it is shorter
    /// (the day's shape is then scaled to the span, not cut off at its end, which
    /// piled the records of the missing hours on the last millisecond). Whole periods
    /// get records in proportion to their length; a last, partial day gets its share
    /// spread over the hours it has.
    fn time_at(&self, u: f64) -> i64 {
        let span = self.cfg.duration_ms;
        let period = span.min(86_400_000) as f64;
        let periods = span as f64 / period;
        let whole = periods.floor();
        let x = u * periods;
        let k = x.floor();
        let frac = x - k;
        let total = self.cdf[1440];
        let target = if k < whole {
            frac * total
        } else {
            let part = periods - whole;
            frac / part * self.cdf_at(part * 1440.0)
        };
        let m = self.cdf.partition_point(|&c| c <= target).clamp(1, 1440) - 1;
        let within = (target - self.cdf[m]) / (self.cdf[m + 1] - self.cdf[m]).max(1e-12);
        let in_period = (m as f64 + within) * (period / 1440.0);
        ((k * period + in_period) as i64).min(span - 1)
    }

    /// The cumulative rate at `minutes` (fractional) into the profile.
    fn cdf_at(&self, minutes: f64) -> f64 {
        let m = (minutes.floor() as usize).min(1439);
        let f = (minutes - m as f64).clamp(0.0, 1.0);
        self.cdf[m] + (self.cdf[m + 1] - self.cdf[m]) * f
    }

    fn pick_country(&mut self) -> &'static str {
        let total: u32 = COUNTRIES.iter().map(|c| c.1).sum();
        let mut r = self.rng.random_range(0..total);
        for (c, w) in COUNTRIES {
            if r < w {
                return c;
            }
            r -= w;
        }
        "DE"
    }

    fn normal(&mut self) -> f64 {
        // Box–Muller.
        let u1: f64 = 1.0 - self.rng.random::<f64>();
        let u2: f64 = self.rng.random::<f64>();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    fn context(&mut self, ts_ms: i64) -> Map<String, Value> {
        let rng = &mut self.rng;
        let n_sup = 1 + (-(1.0 - rng.random::<f64>()).ln() * 2.2) as usize;
        let suppliers: Vec<String> = (0..n_sup.min(12))
            .map(|_| {
                if rng.random_bool(0.0008) {
                    supplier(rng.random_range(0..SANCTIONED))
                } else {
                    supplier(rng.random_range(SANCTIONED..SUPPLIERS))
                }
            })
            .collect();
        let n_ubo = if rng.random_bool(0.015) {
            0
        } else {
            rng.random_range(1..4usize)
        };
        let ubos: Vec<String> = (0..n_ubo)
            .map(|_| {
                if rng.random_bool(0.0012) {
                    ubo(rng.random_range(0..WATCHLISTED))
                } else {
                    ubo(rng.random_range(WATCHLISTED..UBOS))
                }
            })
            .collect();
        let n_c = rng.random_range(1..4usize);
        let mut countries: Vec<&str> = Vec::new();
        for _ in 0..n_c {
            let c = self.pick_country();
            if !countries.contains(&c) {
                countries.push(c);
            }
        }
        let rng = &mut self.rng;
        // Audit age: mostly recent, a tail of stale audits.
        let age_days = if rng.random_bool(0.98) {
            -(1.0 - rng.random::<f64>()).ln() * 120.0
        } else {
            rng.random_range(300.0..1200.0)
        };
        let latest = ts_ms - (age_days * 86_400_000.0) as i64;
        let n_audits = rng.random_range(1..4usize);
        let mut dates: Vec<String> = (0..n_audits)
            .map(|k| format_rfc3339_ms(latest - k as i64 * 365 * 86_400_000)[..10].to_string())
            .collect();
        dates.reverse();
        let score = (80.0 + 9.0 * self.normal()).round().clamp(0.0, 100.0) as i64;
        let rng = &mut self.rng;
        let controls: Vec<bool> = (0..8).map(|_| rng.random_bool(0.95)).collect();
        let spend = (12.2 + 1.3 * self.normal()).exp().round() as i64;
        let rng = &mut self.rng;
        let assessed = rng.random_bool(0.985);
        let mut ctx = json!({
            "supplier_hashes": suppliers,
            "ubo_hashes": ubos,
            "countries": countries,
            "audit": {"score": score, "dates": dates},
            "risk_assessment": {"completed": assessed, "date": format_rfc3339_ms(ts_ms - rng.random_range(1..200i64) * 86_400_000)[..10]},
            "grievance_mechanism": rng.random_bool(0.98),
            "controls": controls,
            "spend_eur": spend,
            "tier": rng.random_range(1..4u8),
        });
        // Missing inputs at a small rate: one of the fields a rule needs is absent or empty.
        if rng.random_bool(self.cfg.missing_input_rate) {
            match rng.random_range(0..4u8) {
                0 => {
                    ctx.as_object_mut().map(|m| m.remove("ubo_hashes"));
                }
                1 => ctx["audit"]["dates"] = json!([]),
                2 => {
                    ctx["audit"].as_object_mut().map(|m| m.remove("score"));
                }
                _ => {
                    ctx.as_object_mut().map(|m| m.remove("countries"));
                }
            }
        }
        let mut ctx = match ctx {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        if let Some(total) = self.tenant_cdf.last() {
            let u = self.tenant_rng.random::<f64>() * total;
            let k = self
                .tenant_cdf
                .partition_point(|&c| c <= u)
                .min(self.tenant_cdf.len() - 1);
            ctx.insert("tenant".into(), json!({"id": format!("t-{:04}", k + 1)}));
        }
        ctx
    }
}

impl Iterator for Generator {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        if self.next >= self.cfg.records {
            return None;
        }
        self.spacing_acc += -(1.0 - self.spacing_rng.random::<f64>()).ln();
        let u = (self.spacing_acc / self.spacing_sum).min(0.999_999_999);
        let ts_ms = self.cfg.start_ms + self.time_at(u);
        let i = self.next;
        self.next += 1;
        let context = self.context(ts_ms);
        let policy_id = if self.rng.random_bool(self.cfg.other_policy_rate) {
            "lksg.v0".to_string()
        } else {
            self.cfg.policy_id.clone()
        };
        Some(Record {
            ts_ms,
            request_id: format!("r-{:08}", i + 1),
            policy_id: Some(policy_id),
            context,
            verdict: None,
        })
    }
}

/// The reference lists matching the generated universe: `(file name, contents)`.
pub fn lists() -> Vec<(&'static str, String)> {
    let mut sanctions = String::from("supplier_hash,listed_on,source\n");
    for i in 0..SANCTIONED {
        sanctions.push_str(&format!("{},2026-0{}-15,EU-CFSP\n", supplier(i), 1 + i % 9));
    }
    let mut watch = String::new();
    for i in 0..WATCHLISTED {
        watch.push_str(&ubo(i));
        watch.push('\n');
    }
    let high_risk = HIGH_RISK.join("\n") + "\n";
    vec![
        ("sanctions.csv", sanctions),
        ("ubo_watchlist.txt", watch),
        ("high_risk_countries.txt", high_risk),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_records_sorted_in_time() {
        let cfg = GenConfig {
            records: 500,
            ..GenConfig::default()
        };
        let a: Vec<String> = Generator::new(cfg.clone()).map(|r| to_jsonl(&r)).collect();
        let b: Vec<String> = Generator::new(cfg.clone()).map(|r| to_jsonl(&r)).collect();
        assert_eq!(a, b);
        let ts: Vec<i64> = Generator::new(cfg.clone()).map(|r| r.ts_ms).collect();
        assert!(ts.windows(2).all(|w| w[0] <= w[1]));
        assert!(ts[0] >= cfg.start_ms && *ts.last().unwrap() < cfg.start_ms + cfg.duration_ms);
        let other = Generator::new(GenConfig { seed: 7, ..cfg }).next().unwrap();
        assert_ne!(to_jsonl(&other), a[0]);
    }

    /// Records per millisecond at most, and per part of the span.
    fn spread(cfg: &GenConfig, parts: i64) -> (usize, Vec<u32>) {
        let mut per_ms = std::collections::HashMap::<i64, usize>::new();
        let mut by_part = vec![0u32; parts as usize];
        for r in Generator::new(cfg.clone()) {
            let off = r.ts_ms - cfg.start_ms;
            assert!(
                (0..cfg.duration_ms).contains(&off),
                "{off} outside the span"
            );
            *per_ms.entry(r.ts_ms).or_default() += 1;
            by_part[(off * parts / cfg.duration_ms) as usize] += 1;
        }
        (per_ms.into_values().max().unwrap_or(0), by_part)
    }

    #[test]
    fn a_span_under_a_day_gets_the_whole_profile_scaled_not_a_pile_at_its_end() {
        // 6 h, 20 000 records: 14 046 used to share 05:59:59.999.
        let cfg = GenConfig {
            records: 20_000,
            duration_ms: 6 * 3_600_000,
            ..GenConfig::default()
        };
        let (most, by_quarter_hour) = spread(&cfg, 24);
        assert!(most <= 3, "{most} records on one millisecond");
        // The day's shape in quarter-hours of the span: the 10:30 peak falls in the
        // eleventh, night at both ends.
        let peak = (0..24).max_by_key(|&i| by_quarter_hour[i]).unwrap();
        assert_eq!(peak, 10, "{by_quarter_hour:?}");
        assert!(
            by_quarter_hour[23] * 5 < by_quarter_hour[10],
            "{by_quarter_hour:?}"
        );
        assert!(
            by_quarter_hour[0] * 5 < by_quarter_hour[10],
            "{by_quarter_hour:?}"
        );
        // A day and a half: the last half day is not piled up either.
        let cfg = GenConfig {
            records: 30_000,
            duration_ms: 36 * 3_600_000,
            ..GenConfig::default()
        };
        let (most, by_hour) = spread(&cfg, 36);
        assert!(most <= 3, "{most} records on one millisecond");
        assert!(by_hour[35] < by_hour[34] * 2, "{by_hour:?}");
        assert!(by_hour[34] > 0 && by_hour[24] > 0, "{by_hour:?}");
    }

    #[test]
    fn diurnal_shape_has_a_daytime_peak() {
        let cfg = GenConfig {
            records: 20_000,
            ..GenConfig::default()
        };
        let start = cfg.start_ms;
        let mut by_hour = [0u32; 24];
        for r in Generator::new(cfg) {
            by_hour[((r.ts_ms - start) / 3_600_000) as usize] += 1;
        }
        assert!(by_hour[10] > 5 * by_hour[2], "{by_hour:?}");
    }

    #[test]
    fn tenants_come_from_their_own_stream_and_are_skewed() {
        let cfg = GenConfig {
            records: 3_000,
            ..GenConfig::default()
        };
        let plain: Vec<Record> = Generator::new(cfg.clone()).collect();
        let with: Vec<Record> = Generator::new(GenConfig { tenants: 50, ..cfg }).collect();
        let mut per = std::collections::BTreeMap::<String, u32>::new();
        for (a, mut b) in plain.into_iter().zip(with) {
            let t = b.context.remove("tenant").unwrap();
            *per.entry(t["id"].as_str().unwrap().to_string())
                .or_default() += 1;
            assert_eq!(to_jsonl(&a), to_jsonl(&b), "only the tenant differs");
        }
        assert!(
            per.keys()
                .all(|k| k.len() == 6 && k.as_str() >= "t-0001" && k.as_str() <= "t-0050")
        );
        // Zipf 1/k over 50 tenants: tenant 1 has 1/H(50) ≈ 22 % of the requests, tenant 50 ≈ 0.4 %.
        let first = per["t-0001"];
        assert!((500..=850).contains(&first), "{per:?}");
        assert!(per.values().all(|&n| n <= first), "{per:?}");
    }
}
