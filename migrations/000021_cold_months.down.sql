-- Back to migration 20: the ledger of cold months goes. Months already
-- detached stay detached (their exports are where they were written):
-- import them before going down if the database should hold them again.
DROP FUNCTION IF EXISTS mps_import_month_end(date);
DROP FUNCTION IF EXISTS mps_import_month_begin(date);
DROP FUNCTION IF EXISTS mps_detach_month(date);
DROP FUNCTION IF EXISTS mps_month_fingerprint(date);
DROP FUNCTION IF EXISTS mps_proof_export(archive_exports);
DROP TABLE IF EXISTS archive_months;
DROP TABLE IF EXISTS archive_exports;
