//! The significance test that decides whether a drift cause moved beyond the noise of
//! its counts: a pooled two-proportion z-test, two-sided, at α = 0.05.

/// Two-sided significance level of the cause test.
pub const ALPHA: f64 = 0.05;

/// Φ⁻¹(1 − α/2) for α = 0.05: |z| at or above this is significant.
pub const Z_CRITICAL: f64 = 1.959_963_984_540_053_6;

/// Pooled two-proportion z statistic of `k2/n2` against `k1/n1` (positive when the
/// second share is larger). `None` when either side has no record, so no share exists.
/// Both shares equal (including both 0 or both 1, where the pooled variance is 0) is 0.
pub fn two_proportion_z(k1: u64, n1: u64, k2: u64, n2: u64) -> Option<f64> {
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let (k1, n1, k2, n2) = (k1 as f64, n1 as f64, k2 as f64, n2 as f64);
    let p1 = k1 / n1;
    let p2 = k2 / n2;
    let pooled = (k1 + k2) / (n1 + n2);
    let se = (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)).sqrt();
    if se == 0.0 || !se.is_finite() {
        return Some(0.0);
    }
    Some((p2 - p1) / se)
}

/// Whether `z` is significant at [`ALPHA`].
pub fn significant(z: Option<f64>) -> bool {
    z.is_some_and(|z| z.abs() >= Z_CRITICAL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn z_matches_hand_computed_values() {
        // 2 of 7 → 1 of 7: pooled 3/14, se = sqrt(3/14 · 11/14 · 2/7) = 0.219333…
        let z = two_proportion_z(2, 7, 1, 7).unwrap();
        assert!((z - (-0.651_338_947_278_929_6)).abs() < 1e-9, "{z}");
        assert!(!significant(Some(z)));
        // 10 of 1000 → 30 of 1000: pooled 0.02, se = sqrt(0.02 · 0.98 · 0.002) = 0.0062610…
        let z = two_proportion_z(10, 1000, 30, 1000).unwrap();
        assert!((z - 3.194_382_824_999_699_3).abs() < 1e-9, "{z}");
        assert!(significant(Some(z)));
        assert_eq!(two_proportion_z(0, 5, 0, 9), Some(0.0));
        assert_eq!(two_proportion_z(5, 5, 9, 9), Some(0.0));
        assert_eq!(two_proportion_z(1, 0, 1, 9), None);
        assert!(!significant(None));
    }
}
