-- proof replay of lksg.v1 (shadow, basic) against lksg.v2 (enforced candidate, basic),
-- written by hand in DuckDB SQL: the per-window result of windows.csv, plus per-window
-- sums of the verdicts, drift kinds and drift causes that report.json carries.
--
-- Reads the view `records(ts_ms, request_id, policy_id, ctx, has_ctx)` that a source_*.sql
-- defines (ctx: a STRUCT of the context keys the policies name). compare.py replaces
-- the @NAME@ markers: @SANCTIONS@, @UBO_WATCHLIST@, @HIGH_RISK@ (list files), @SALT@
-- (default: the baseline policy id), @WINDOW_MS@ (default 5m = 300000).
--
-- SPEC references: §1 (expressions, rule ops, fail-closed predicates), §2 (basic
-- selector: every active rule; verdict fail if any step fails or errors), §3 (drift,
-- cause, the SHA-256 bucket), §4 (skipped and rejected records), §5 (windows, levels,
-- breach). What this SQL does not do in general, and proof does: see
-- docs/performance.md, "DuckDB, side by side".

-- Lists (SPEC §6): CSV = first column after a header row; text = one value a line;
-- values trimmed, blank ones dropped.
CREATE OR REPLACE TEMP TABLE sanctions AS
    SELECT list(DISTINCT trim(v)) AS v
    FROM (SELECT #1 AS v FROM read_csv(@SANCTIONS@, header = true, all_varchar = true,
                                       null_padding = true))
    WHERE trim(v) <> '';
CREATE OR REPLACE TEMP TABLE ubo_watchlist AS
    SELECT list(DISTINCT trim(line)) AS v
    FROM read_csv(@UBO_WATCHLIST@, columns = {line: 'VARCHAR'}, header = false,
                  delim = E'\x01', quote = '', escape = '', auto_detect = false)
    WHERE trim(line) <> '';
CREATE OR REPLACE TEMP TABLE high_risk AS
    SELECT list(DISTINCT trim(line)) AS v
    FROM read_csv(@HIGH_RISK@, columns = {line: 'VARCHAR'}, header = false,
                  delim = E'\x01', quote = '', escape = '', auto_detect = false)
    WHERE trim(line) <> '';

WITH
accepted AS (  -- SPEC §4: rejected (no ts, no request id, no context) and skipped records out
    SELECT * FROM records
    WHERE ts_ms IS NOT NULL AND request_id IS NOT NULL AND request_id <> ''
      AND has_ctx
      AND (policy_id IS NULL OR policy_id = 'lksg.v1')
),
dated AS (  -- audit.dates read as timestamps (RFC 3339, or YYYY-MM-DD = 00:00Z), once
    SELECT *, list_transform(ctx.audit.dates,
        lambda d: floor(epoch_us(TRY_CAST(d AS TIMESTAMPTZ)) / 1000)::BIGINT) AS audit_ms
    FROM accepted
),
facts AS (  -- the values the rules read, once per record
    SELECT
        ts_ms,
        -- SPEC §5: epoch-aligned window
        (floor(ts_ms / @WINDOW_MS@) * @WINDOW_MS@)::BIGINT AS window_ms,
        -- SPEC §3: u64_be(SHA-256(salt ":" request_id)[0..8]) mod 10000
        ('0x' || substr(sha256(@SALT@ || ':' || request_id), 1, 16))::UBIGINT % 10000
            AS bucket,
        ctx.supplier_hashes AS suppliers,
        ctx.ubo_hashes AS ubos,
        ctx.countries AS countries,
        ctx.risk_assessment.completed AS assessed,
        ctx.grievance_mechanism AS grievance,
        ctx.audit.score AS score,
        ctx.controls AS controls,
        ctx.spend_eur AS spend,
        sanctions_v, ubo_watchlist_v, high_risk_v,
        -- max(audit.dates) in epoch ms: NULL (an error) when the list is missing or
        -- empty or an element does not read as a timestamp
        CASE WHEN len(audit_ms) > 0 AND list_count(audit_ms) = len(audit_ms)
            THEN list_max(audit_ms) END AS audit_max
    FROM dated,
         -- each list as a column, for list_contains in lambdas (list_has_any against
         -- the list is 4x slower: it hashes the list again for every record)
         (SELECT v AS sanctions_v FROM sanctions),
         (SELECT v AS ubo_watchlist_v FROM ubo_watchlist),
         (SELECT v AS high_risk_v FROM high_risk)
),
rules AS (  -- one flag per rule and path: true = bad (fail or error), never NULL
    SELECT
        window_ms, bucket,
        -- shared by both policies (same definition in v1 and v2)
        -- non_membership / non_intersection: bad when an element is in the list, or
        -- the value is missing (an error); an empty array passes
        CASE WHEN suppliers IS NULL THEN true ELSE coalesce(list_bool_or(
            list_transform(suppliers, lambda x: list_contains(sanctions_v, x))), false)
        END AS bad_no_sanctions,
        coalesce(len(ubos) < 1, true) AS bad_ubo_known,
        CASE WHEN countries IS NULL THEN true ELSE coalesce(list_bool_or(
            list_transform(countries, lambda x: list_contains(high_risk_v, x))), false)
        END AS bad_no_high_risk_country,
        coalesce(assessed IS DISTINCT FROM true, true) AS bad_risk_assessment_done,
        coalesce(grievance IS DISTINCT FROM true, true) AS bad_grievance_mechanism,
        -- audit_recency: max(audit.dates) >= now() - P1095D (v1) / - P730D (v2)
        NOT coalesce(audit_max >= ts_ms - 94608000000 /* P1095D, ms */, false)
            AS bad_v1_audit_recency,
        NOT coalesce(audit_max >= ts_ms - 63072000000 /* P730D */, false)
            AS bad_v2_audit_recency,
        -- audit_score_min: audit.score >= 50 (v1) / >= 60 (v2)
        coalesce(score < 50, true) AS bad_v1_audit_score_min,
        coalesce(score < 60, true) AS bad_v2_audit_score_min,
        -- v2 only
        CASE WHEN ubos IS NULL THEN true ELSE coalesce(list_bool_or(
            list_transform(ubos, lambda x: list_contains(ubo_watchlist_v, x))), false)
        END AS bad_ubo_screened,
        -- threshold: a non-empty array of booleans, (#true / len) >= 0.75
        NOT coalesce(len(controls) > 0 AND list_count(controls) = len(controls)
                     AND list_count(list_filter(controls, lambda c: c))::DOUBLE / len(controls)
                         >= 0.75::DOUBLE, false) AS bad_controls_threshold,
        -- v2 adaptivity; a predicate that errors counts as true (fail-closed)
        coalesce(ts_ms - audit_max > 31536000000 /* P365D */, true)
            AS stale_audit,
        coalesce(len(suppliers) >= 5, true) AS many_suppliers,
        coalesce(spend >= 1000000::DOUBLE, true) AS high_spend
    FROM facts
),
paths AS (
    SELECT
        *,
        stale_audit AS act_audit_score_min,
        many_suppliers OR high_spend AS act_controls_threshold,
        -- basic selector, every rule baseline in v1: fail iff any rule is bad; both
        -- policies have baseline rules, so neither path is ever `warn`
        bad_no_sanctions OR bad_ubo_known OR bad_no_high_risk_country
            OR bad_risk_assessment_done OR bad_grievance_mechanism
            OR bad_v1_audit_recency OR bad_v1_audit_score_min AS shadow_fail
    FROM rules
),
outcomes AS (
    SELECT
        *,
        bad_no_sanctions OR bad_ubo_known OR bad_no_high_risk_country
            OR bad_risk_assessment_done OR bad_grievance_mechanism OR bad_ubo_screened
            OR bad_v2_audit_recency
            OR (act_audit_score_min AND bad_v2_audit_score_min)
            OR (act_controls_threshold AND bad_controls_threshold) AS enforced_fail
    FROM paths
),
drifts AS (
    SELECT
        window_ms, bucket, shadow_fail, enforced_fail,
        shadow_fail <> enforced_fail AS drift,
        -- SPEC §3 cause: the enforced plan's rules by id (active ones), then the
        -- shadow's remaining rules by id; the first bad on one path only
        CASE
            WHEN bad_v2_audit_recency <> bad_v1_audit_recency THEN 'audit_recency'
            WHEN act_audit_score_min AND bad_v2_audit_score_min <> bad_v1_audit_score_min
                THEN 'audit_score_min'
            WHEN act_controls_threshold AND bad_controls_threshold THEN 'controls_threshold'
            -- grievance_mechanism, no_high_risk_country, no_sanctions,
            -- risk_assessment_done and ubo_known read the same on both paths
            WHEN bad_ubo_screened THEN 'ubo_screened'
            WHEN NOT act_audit_score_min AND bad_v1_audit_score_min THEN 'audit_score_min'
        END AS cause
    FROM outcomes
),
per_window AS (
    SELECT
        window_ms,
        count(*) AS requests,
        count_if(drift AND bucket < 0) AS d0,
        count_if(drift AND bucket < 100) AS d1,
        count_if(drift AND bucket < 500) AS d5,
        count_if(drift AND bucket < 1000) AS d10,
        count_if(drift AND bucket < 2500) AS d25,
        count_if(drift AND bucket < 5000) AS d50,
        count_if(drift AND bucket < 10000) AS d100,
        count_if(shadow_fail) AS shadow_fail,
        count_if(enforced_fail) AS enforced_fail,
        count_if(drift AND NOT shadow_fail) AS ok_to_fail,
        count_if(drift AND shadow_fail) AS fail_to_ok,
        count_if(drift AND cause = 'audit_recency') AS c_audit_recency,
        count_if(drift AND cause = 'audit_score_min') AS c_audit_score_min,
        count_if(drift AND cause = 'controls_threshold') AS c_controls_threshold,
        count_if(drift AND cause = 'ubo_screened') AS c_ubo_screened,
        count_if(drift AND cause IS NULL) AS c_none
    FROM drifts
    GROUP BY window_ms
)
SELECT
    strftime(make_timestamp(window_ms * 1000), '%Y-%m-%dT%H:%M:%SZ') AS window_start,
    strftime(make_timestamp((window_ms + @WINDOW_MS@) * 1000), '%Y-%m-%dT%H:%M:%SZ')
        AS window_end,
    d.level AS rollout_percent,
    requests,
    d.events AS drift_events,
    d.events::DOUBLE / requests::DOUBLE AS drift_ratio,
    -- SPEC §5: ratio > --drift-max (0.005) and requests >= --min-requests (1)
    (d.events::DOUBLE / requests::DOUBLE > 0.005::DOUBLE AND requests >= 1) AS breach,
    shadow_fail, enforced_fail, ok_to_fail, fail_to_ok,
    c_audit_recency, c_audit_score_min, c_controls_threshold, c_ubo_screened, c_none
FROM per_window,
     LATERAL (VALUES (0, d0), (1, d1), (5, d5), (10, d10), (25, d25), (50, d50), (100, d100))
         AS d(level, events)
ORDER BY window_ms, rollout_percent;
