-- The few SQLite functions the portal's SQL uses that PostgreSQL lacks,
-- defined in SQLite's sense, so that one SQL text runs on both databases
-- (store's driver rewrites placeholders and LIKE; see store.rebind).

-- SUM over a comparison counts the rows where it holds: SQLite's
-- comparisons are the integers 1 and 0. NULL over no rows, as SUM.
CREATE FUNCTION portal_sum_bool_step(acc BIGINT, v BOOLEAN) RETURNS BIGINT
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	AS $$ SELECT CASE WHEN v IS NULL THEN acc ELSE COALESCE(acc, 0) + CASE WHEN v THEN 1 ELSE 0 END END $$;
CREATE AGGREGATE sum(BOOLEAN) (SFUNC = portal_sum_bool_step, STYPE = BIGINT);

-- group_concat(value [, separator]): the non-NULL values joined, in no
-- particular order (SQLite's separator defaults to a comma).
CREATE FUNCTION portal_group_concat_step(acc TEXT, v TEXT, sep TEXT) RETURNS TEXT
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	AS $$ SELECT CASE WHEN v IS NULL THEN acc WHEN acc IS NULL THEN v ELSE acc || sep || v END $$;
CREATE FUNCTION portal_group_concat_step(acc TEXT, v TEXT) RETURNS TEXT
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	AS $$ SELECT portal_group_concat_step(acc, v, ',') $$;
CREATE AGGREGATE group_concat(TEXT, TEXT) (SFUNC = portal_group_concat_step, STYPE = TEXT);
CREATE AGGREGATE group_concat(TEXT) (SFUNC = portal_group_concat_step, STYPE = TEXT);
