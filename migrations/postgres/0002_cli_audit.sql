-- Changes made through the `rill` CLI, imported from the cluster's __rill_audit topic:
-- `via` says where a change was made (console or cli); the record's partition and offset
-- in the topic make the import idempotent (console rows leave them NULL).
ALTER TABLE audit_log ADD COLUMN via TEXT NOT NULL DEFAULT 'console';
ALTER TABLE audit_log ADD COLUMN source_partition BIGINT;
ALTER TABLE audit_log ADD COLUMN source_offset BIGINT;
CREATE UNIQUE INDEX audit_log_source ON audit_log (source_partition, source_offset);
