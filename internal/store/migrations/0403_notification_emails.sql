-- E-mails of a notification, one per recipient: the people who must act on
-- it. A failed delivery is retried a few times by the notify job.
CREATE TABLE notification_emails (
	id INTEGER PRIMARY KEY,
	notification_id INTEGER NOT NULL REFERENCES notifications(id),
	recipient TEXT NOT NULL,
	state TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),
	attempts INTEGER NOT NULL DEFAULT 0,
	error TEXT NOT NULL DEFAULT '',
	sent_at TEXT NOT NULL DEFAULT '',
	updated_at TEXT NOT NULL
);
CREATE INDEX notification_emails_notification_idx ON notification_emails(notification_id);
CREATE INDEX notification_emails_state_idx ON notification_emails(state, id);
