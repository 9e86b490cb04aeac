-- records from a JSONL context log, read with an explicit schema (SPEC §4): the
-- context keys the two lksg policies name, nothing else. A key the schema lacks is
-- not read; a missing key or a JSON null arrives as NULL.
CREATE OR REPLACE TEMP VIEW records AS
SELECT
    -- SPEC §4: integer epoch ms or an RFC 3339 string, digits below the ms truncated
    coalesce(TRY_CAST(ts AS BIGINT),
             floor(epoch_us(TRY_CAST(ts AS TIMESTAMPTZ)) / 1000)::BIGINT) AS ts_ms,
    request_id, policy_id, context AS ctx, context IS NOT NULL AS has_ctx
FROM read_ndjson(@INPUT@, columns = {
    ts: 'VARCHAR',
    request_id: 'VARCHAR',
    policy_id: 'VARCHAR',
    context: 'STRUCT(
        audit STRUCT(dates VARCHAR[], score DOUBLE),
        controls BOOLEAN[],
        countries VARCHAR[],
        grievance_mechanism BOOLEAN,
        risk_assessment STRUCT(completed BOOLEAN),
        spend_eur DOUBLE,
        supplier_hashes VARCHAR[],
        ubo_hashes VARCHAR[])'
});
