-- Which build ran each run.
ALTER TABLE sync_runs ADD COLUMN version text NOT NULL DEFAULT '';
