//! Confidence bounds (SPEC §8): one-sided Wilson score bounds of a window's drift ratio
//! at `z = Φ⁻¹(C)`. Φ⁻¹ comes from statrs rather than a hand-written approximation.

use statrs::distribution::{ContinuousCDF, Normal};

/// `--confidence C`, 0.5 ≤ C ≤ 0.9999, with its normal quantile.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Confidence {
    level: f64,
    z: f64,
}

impl Confidence {
    /// Smallest accepted level.
    pub const MIN: f64 = 0.5;
    /// Largest accepted level.
    pub const MAX: f64 = 0.9999;

    /// A confidence level, if it is in 0.5..=0.9999.
    pub fn new(level: f64) -> Option<Confidence> {
        if !(Self::MIN..=Self::MAX).contains(&level) {
            return None;
        }
        let z = Normal::standard().inverse_cdf(level);
        z.is_finite().then_some(Confidence { level, z })
    }

    /// Parses a decimal such as `0.95`; the error states the range.
    pub fn parse(s: &str) -> Result<Confidence, String> {
        let v: f64 = s.trim().parse().map_err(|_| {
            format!("'{s}': expected a decimal such as 0.95 (allowed range 0.5..=0.9999)")
        })?;
        Confidence::new(v).ok_or_else(|| format!("'{s}': allowed range is 0.5..=0.9999"))
    }

    /// The level C.
    pub fn level(self) -> f64 {
        self.level
    }

    /// The standard normal quantile Φ⁻¹(C).
    pub fn z(self) -> f64 {
        self.z
    }

    /// `(lower, upper)` for `k` drifting records out of `n ≥ 1` (SPEC §8, fixed).
    pub fn wilson(self, k: u64, n: u64) -> (f64, f64) {
        debug_assert!(n >= 1 && k <= n);
        let (k, n, z) = (k as f64, n as f64, self.z);
        let z2 = z * z;
        let c = (k + z2 / 2.0) / (n + z2);
        let h = z / (n + z2) * (k * (n - k) / n + z2 / 4.0).sqrt();
        let lower = if k == 0.0 { 0.0 } else { (c - h).max(0.0) };
        let upper = if k == n { 1.0 } else { (c + h).min(1.0) };
        (lower, upper)
    }

    /// The fewest requests a window needs for 0 drifting records to pass at
    /// `drift_max` (the "requests to pass" figure): the least `n` with
    /// `upper(0, n) = z² / (n + z²) ≤ drift_max`. `None` when no count can.
    pub fn requests_to_pass(self, drift_max: f64) -> Option<u64> {
        if drift_max <= 0.0 {
            return None;
        }
        if drift_max >= 1.0 {
            return Some(1);
        }
        let z2 = self.z * self.z;
        let mut n = ((z2 / drift_max - z2).ceil().max(1.0)) as u64;
        // Step over float rounding at the boundary: check the actual bound.
        while n > 1 && super::rule::passes(self.wilson(0, n - 1).1, drift_max) {
            n -= 1;
        }
        while !super::rule::passes(self.wilson(0, n).1, drift_max) {
            n += 1;
        }
        Some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn quantiles_match_published_values() {
        // Standard normal table values.
        assert!(close(
            Confidence::new(0.95).unwrap().z(),
            1.6448536269514715,
            1e-12
        ));
        assert!(close(
            Confidence::new(0.975).unwrap().z(),
            1.959963984540054,
            1e-12
        ));
        assert!(close(Confidence::new(0.5).unwrap().z(), 0.0, 1e-15));
        assert!(close(
            Confidence::new(0.9999).unwrap().z(),
            3.719016485455709,
            1e-10
        ));
        assert!(Confidence::new(0.49).is_none());
        assert!(Confidence::new(0.99991).is_none());
        assert!(
            Confidence::parse("1.5")
                .unwrap_err()
                .contains("0.5..=0.9999")
        );
        assert!(Confidence::parse("x").is_err());
    }

    #[test]
    fn bounds_at_zero_all_and_between() {
        let c = Confidence::new(0.95).unwrap();
        // k = 0 of n = 299: lower 0; upper = z²/(n+z²) = 2.7055/301.7055 ≈ 0.0089674
        // (the published one-sided 95 % Wilson upper bound for 0/299).
        let (lo, hi) = c.wilson(0, 299);
        assert_eq!(lo, 0.0);
        assert!(close(hi, 0.008967_4, 1e-6), "{hi}");
        // k = n = 10: upper 1; lower = n/(n+z²) = 10/12.7055 ≈ 0.787058.
        let (lo, hi) = c.wilson(10, 10);
        assert_eq!(hi, 1.0);
        assert!(close(lo, 0.787058, 1e-6), "{lo}");
        // k = 5 of 100 at 95 %: (0.024547, 0.099161), the formula worked by hand.
        let (lo, hi) = c.wilson(5, 100);
        assert!(close(lo, 0.024547, 1e-6), "{lo}");
        assert!(close(hi, 0.099161, 1e-6), "{hi}");
        // C = 0.5: z = 0, both bounds are the point ratio.
        let half = Confidence::new(0.5).unwrap();
        assert_eq!(half.wilson(3, 12), (0.25, 0.25));
    }

    #[test]
    fn requests_to_pass_is_the_least_count() {
        let c = Confidence::new(0.95).unwrap();
        // z²/(n+z²) ≤ 0.005 ⇔ n ≥ z²(1/0.005 − 1) = 2.7055 × 199 = 538.4.
        assert_eq!(c.requests_to_pass(0.005), Some(539));
        assert!(c.wilson(0, 539).1 <= 0.005 && c.wilson(0, 538).1 > 0.005);
        assert_eq!(c.requests_to_pass(0.0), None);
    }
}
