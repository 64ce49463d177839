-- Free-text index of activity_events for the explorer's Text filter.
-- Contentless (the words are not stored twice), detail=none (rows only:
-- queries are AND of words, the last maybe a prefix) and columnsize=0
-- keep it small and cheap to write. It holds, per event, the words of
-- the record's values: strings (unescaped) and integers, not field names,
-- true/false/null, fractions, or the eventID, requestID and sharedEventID
-- values (looked up through their columns). The "ascii" tokenizer keeps
-- runs of ASCII letters and digits and non-ASCII bytes together and folds
-- ASCII case; the portal computes the same words in Go when it ingests
-- (activity.valueWords). Rows cannot be deleted without their words: a
-- retention job would issue FTS5's 'delete' command with valueWords(raw).
CREATE VIRTUAL TABLE activity_text USING fts5(words, content='', detail=none, columnsize=0, tokenize='ascii');
-- Fewer, larger merges while ingesting.
INSERT INTO activity_text (activity_text, rank) VALUES ('automerge', 8);

-- Events stored before this migration.
INSERT INTO activity_text (rowid, words)
SELECT e.id, (SELECT group_concat(t.atom, ' ') FROM json_tree(e.raw) AS t
	WHERE (t.type = 'text' OR t.type = 'integer' AND typeof(t.atom) = 'integer')
		AND (t.key IS NULL OR t.key NOT IN ('eventID', 'requestID', 'sharedEventID')))
FROM activity_events AS e WHERE json_valid(e.raw);

-- The Text filter also finds an event by its request id.
CREATE INDEX activity_events_request_idx ON activity_events(request_id) WHERE request_id != '';
