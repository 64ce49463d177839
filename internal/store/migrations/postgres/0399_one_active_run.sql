-- (Numbered after every engine migration: it needs the runs table of
-- 0301, and migrations apply in file-name order.)
--
-- At most one run per stack is active (running, or interrupted and
-- holding the stack until someone resumes or cancels it): the database
-- refuses a second, so two replicas claiming queued runs of one stack at
-- the same moment cannot both start one.
CREATE UNIQUE INDEX runs_one_active_idx ON runs(stack) WHERE state IN ('running', 'interrupted');
