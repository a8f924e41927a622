-- Nothing to undo: the DELETE grant on task_detail_queue is what version 12's
-- schema needs as well.
SELECT 1;
