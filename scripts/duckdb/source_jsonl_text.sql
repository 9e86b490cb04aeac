-- records from a JSONL context log read as lines of text, each line parsed with
-- from_json against the same explicit schema as source_jsonl.sql (the other way a
-- DuckDB user would write it; compare.py --jsonl-reader text).
-- Without this DuckDB pushes the filters of lksg.sql's `accepted` through the unnest
-- and parses every line once more for each field they read (5.4-6.2 s instead of
-- 1.7-2.7 s on the 1 M-record log).
SET disabled_optimizers = 'filter_pushdown';
CREATE OR REPLACE TEMP VIEW records AS
SELECT
    coalesce(TRY_CAST(ts AS BIGINT),
             floor(epoch_us(TRY_CAST(ts AS TIMESTAMPTZ)) / 1000)::BIGINT) AS ts_ms,
    request_id, policy_id, context AS ctx, context IS NOT NULL AS has_ctx
FROM (
    -- unnest: one from_json per line (a plain struct column here would be re-parsed
    -- for every field the query reads: DuckDB inlines the expression)
    SELECT unnest(from_json(line, '{
        "ts": "VARCHAR", "request_id": "VARCHAR", "policy_id": "VARCHAR",
        "context": {
            "audit": {"dates": ["VARCHAR"], "score": "DOUBLE"},
            "controls": ["BOOLEAN"],
            "countries": ["VARCHAR"],
            "grievance_mechanism": "BOOLEAN",
            "risk_assessment": {"completed": "BOOLEAN"},
            "spend_eur": "DOUBLE",
            "supplier_hashes": ["VARCHAR"],
            "ubo_hashes": ["VARCHAR"]}}'))
    FROM read_csv(@INPUT@, columns = {line: 'VARCHAR'}, header = false,
                  delim = E'\x01', quote = '', escape = '', auto_detect = false)
    WHERE trim(line) <> ''
) AS j;
