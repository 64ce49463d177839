-- The explorer's User filter matches any of four columns (user name,
-- principal ARN, access key, session), so the index of user_name alone
-- answered none of its searches (a plan can use an OR of indexes only
-- when every column has one); it only cost every stored event an index
-- entry. Searches by user read the period's events in time order.
DROP INDEX IF EXISTS activity_events_user_idx;
