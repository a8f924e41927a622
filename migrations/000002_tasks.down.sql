DROP TABLE IF EXISTS tasks;
DROP FUNCTION IF EXISTS mps_status_rank(text);
