-- records from Parquet whose context column is a JSON string (proof gen
-- --parquet-context json): the string parsed with from_json against the same
-- explicit schema as source_jsonl.sql.
CREATE OR REPLACE TEMP VIEW records AS
SELECT
    -- ts is a Parquet timestamp here (proof gen writes milliseconds, UTC)
    floor(epoch_us(ts) / 1000)::BIGINT AS ts_ms,
    request_id, policy_id,
       from_json(context, '{
           "audit": {"dates": ["VARCHAR"], "score": "DOUBLE"},
           "controls": ["BOOLEAN"],
           "countries": ["VARCHAR"],
           "grievance_mechanism": "BOOLEAN",
           "risk_assessment": {"completed": "BOOLEAN"},
           "spend_eur": "DOUBLE",
           "supplier_hashes": ["VARCHAR"],
           "ubo_hashes": ["VARCHAR"]}') AS ctx,
       -- the filter reads the column, not the parsed struct (which DuckDB would
       -- parse a second time for the filter)
       context IS NOT NULL AS has_ctx
FROM read_parquet(@INPUT@);
