-- Trail storage, cheaper to write and to search by text in one account.
--
-- The explorer's User filter matches any of four columns (user name,
-- principal ARN, access key, session), so the index of user_name alone
-- answered none of its searches (a plan can use an OR of indexes only
-- when every column has one); it only cost every stored event an index
-- entry. Searches by user read the period's events in time order.
DROP INDEX activity_events_user_idx;

-- The record (raw) is larger than PostgreSQL keeps uncompressed in a row
-- beside the words, so nearly every event's record is compressed: lz4
-- compresses it several times faster than the default (pglz), about as
-- small, and reads it back faster. Partitions made from now on take it
-- from the table; those already there are set one by one. Records stored
-- before keep their compression (both are read alike).
DO $$
DECLARE
	part REGCLASS;
BEGIN
	ALTER TABLE activity_events ALTER COLUMN raw SET COMPRESSION lz4;
	FOR part IN SELECT inhrelid::REGCLASS FROM pg_inherits WHERE inhparent = 'activity_events'::REGCLASS LOOP
		EXECUTE format('ALTER TABLE %s ALTER COLUMN raw SET COMPRESSION lz4', part);
	END LOOP;
END $$;

-- A text search within one account (the explorer's usual Text filter,
-- an account picked) found every event of the period holding the words,
-- in all accounts, and read each from the table to check the account:
-- at 10,000,000 events a common phrase meant thousands of row reads. The
-- words' index now holds the account too (btree_gin, one of PostgreSQL's
-- own extensions, makes a text column part of a GIN index), so the index
-- gives only the account's matches; a search without an account uses the
-- words alone as before. Rebuilding the index on a large trail takes a
-- while (minutes at tens of millions of events), once.
CREATE EXTENSION IF NOT EXISTS btree_gin;
DROP INDEX activity_events_words_idx;
CREATE INDEX activity_events_words_idx ON activity_events USING GIN (account, words);
