-- records from a JSONL context log read as lines of text, each line parsed with
-- from_json against the same explicit schema as source_jsonl.sql (the other way a
-- DuckDB user would write it; compare.py --jsonl-reader text).
CREATE OR REPLACE TEMP VIEW records AS
SELECT
    coalesce(TRY_CAST(j.ts AS BIGINT),
             floor(epoch_us(TRY_CAST(j.ts AS TIMESTAMPTZ)) / 1000)::BIGINT) AS ts_ms,
    j.request_id, j.policy_id, j.context AS ctx
FROM (
    SELECT from_json(line, '{
        "ts": "VARCHAR", "request_id": "VARCHAR", "policy_id": "VARCHAR",
        "context": {
            "audit": {"dates": ["VARCHAR"], "score": "DOUBLE"},
            "controls": ["BOOLEAN"],
            "countries": ["VARCHAR"],
            "grievance_mechanism": "BOOLEAN",
            "risk_assessment": {"completed": "BOOLEAN"},
            "spend_eur": "DOUBLE",
            "supplier_hashes": ["VARCHAR"],
            "ubo_hashes": ["VARCHAR"]}}') AS j
    FROM read_csv(@INPUT@, columns = {line: 'VARCHAR'}, header = false,
                  delim = E'\x01', quote = '', escape = '', auto_detect = false)
    WHERE trim(line) <> ''
);
