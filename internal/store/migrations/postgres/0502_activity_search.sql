-- Free-text index of activity_events for the explorer's Text filter.
--
-- On PostgreSQL, words holds each event's words as a tsvector the portal
-- builds itself (activity.valueWords: runs of ASCII letters and digits,
-- and non-ASCII bytes, folded to lower case; the words of the record's
-- values, not its field names, true/false/null, fractions, or the
-- eventID, requestID and sharedEventID values), never parsed by a text
-- search configuration, so the words are exactly SQLite's. The words of
-- one value take consecutive positions and a gap separates values, so
-- the phrase operator (<->) finds words side by side in one value, and
-- :* the start of a word. A GIN index answers both.
ALTER TABLE activity_events ADD COLUMN words TSVECTOR NOT NULL DEFAULT '';
CREATE INDEX activity_events_words_idx ON activity_events USING GIN (words);

-- The Text filter also finds an event by its request id.
CREATE INDEX activity_events_request_idx ON activity_events(request_id) WHERE request_id != '';
