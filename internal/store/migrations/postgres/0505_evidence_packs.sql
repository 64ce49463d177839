-- Evidence packs: a report covers a reporting period (from <= t < to,
-- RFC 3339), is made on demand or by the monthly schedule (origin), and
-- carries a PDF beside its HTML, each with its SHA-256. One scheduled pack
-- per jurisdiction and period.
ALTER TABLE activity_reports ADD COLUMN period_from TEXT NOT NULL DEFAULT '';
ALTER TABLE activity_reports ADD COLUMN period_to TEXT NOT NULL DEFAULT '';
ALTER TABLE activity_reports ADD COLUMN origin TEXT NOT NULL DEFAULT 'on_demand';
ALTER TABLE activity_reports ADD COLUMN pdf BYTEA;
ALTER TABLE activity_reports ADD COLUMN pdf_sha256 TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX activity_reports_scheduled_idx ON activity_reports(jurisdiction, period_from, period_to) WHERE origin = 'scheduled';
