package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseKeyring(t *testing.T) {
	hex64 := strings.Repeat("ab", 32)
	for _, tt := range []struct {
		text, err, current string
	}{
		{"k1 " + hex64, "", "k1"},
		{"# comment\n\nk1 " + hex64 + "\nk2 " + strings.Repeat("cd", 32) + "\n", "", "k2"},
		{"k1 " + hex64 + ";k2 " + strings.Repeat("cd", 40), "", "k2"},
		{"", "no key", ""},
		{"k1", "want \"ID HEX\"", ""},
		{"K1 " + hex64, "want \"ID HEX\"", ""},
		{"k1 abcd", "at least 32 bytes", ""},
		{"k1 " + strings.Repeat("zz", 32), "at least 32 bytes", ""},
		{"k1 " + hex64 + "\nk1 " + hex64, "appears twice", ""},
	} {
		r, err := ParseKeyring(tt.text)
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("ParseKeyring(%.30q): %v, want an error containing %q", tt.text, err, tt.err)
		case tt.err == "" && err != nil:
			t.Errorf("ParseKeyring(%.30q): %v", tt.text, err)
		case tt.err == "" && r.Current().ID != tt.current:
			t.Errorf("ParseKeyring(%.30q): current %q, want %q", tt.text, r.Current().ID, tt.current)
		}
	}
}

// TestRekeyUnkeyedChain: a trail from before keying keeps its unkeyed
// records (still verifiable) and continues, after an explicit audit.rekey
// record, sealed with the key; putting an unkeyed record after keyed ones,
// or leaving no keyed record at all, is caught.
func TestRekeyUnkeyedChain(t *testing.T) {
	ctx := context.Background()
	db, _ := openTestDB(t)
	old := New(db, (&clock{next: t0, step: time.Second}).now)
	old.ring = nil // the portal before keying
	seed(t, old, 3)

	ring, err := LoadKeyFile(filepath.Join(t.TempDir(), "audit.key"), true)
	if err != nil {
		t.Fatal(err)
	}
	l := NewKeyed(db, (&clock{next: t0.Add(time.Hour), step: time.Second}).now, ring, nil)
	if v := mustVerify(t, l); v.OK {
		t.Errorf("an unkeyed chain verified with a key ring: %+v, want it flagged until re-keyed", v)
	}
	if wrote, err := l.Rekey(ctx, "system"); err != nil || !wrote {
		t.Fatalf("Rekey: %v %v", wrote, err)
	}
	if wrote, err := l.Rekey(ctx, "system"); err != nil || wrote {
		t.Fatalf("second Rekey: %v %v, want nothing to do", wrote, err)
	}
	seed(t, l, 2)
	rk, err := l.Get(ctx, 4)
	if err != nil {
		t.Fatal(err)
	}
	if rk.Action != ActionRekey || rk.KeyID != "k1" || rk.Details["unkeyed_records"] != jsonNum("3") {
		t.Errorf("record 4: %s key %q details %v, want the audit.rekey record sealed with k1 naming 3 unkeyed records", rk.Action, rk.KeyID, rk.Details)
	}
	v := mustVerify(t, l)
	if !v.OK || v.Unkeyed != 3 || v.KeyID != "k1" || v.HeadSeq != 6 {
		t.Fatalf("after re-keying: %+v, want OK with 3 unkeyed records and the head sealed with k1", v)
	}

	t.Run("unkeyed record after keyed ones", func(t *testing.T) {
		c := copyDB(t, db)
		var r row
		if err := r.scanFrom(c.db.QueryRow(`SELECT ` + rowColumns + ` FROM audit_log WHERE seq = 6`)); err != nil {
			t.Fatal(err)
		}
		r.keyID, r.details = "", `{"forged":true}`
		r.hash = r.computeHash(sha256.New()) // a correct unkeyed hash
		if _, err := c.db.Exec(`UPDATE audit_log SET key_id = '', details = ?, hash = ? WHERE seq = 6`, r.details, r.hash); err != nil {
			t.Fatal(err)
		}
		if v := mustVerify(t, c.log(l)); v.OK || v.FirstBroken != 6 || !strings.Contains(v.Reason, "unkeyed after keyed") {
			t.Errorf("got %+v, want broken at 6: unkeyed after keyed", v)
		}
	})
	t.Run("whole chain re-written unkeyed", func(t *testing.T) {
		c := copyDB(t, db)
		unkeyAll(t, c)
		if v := mustVerify(t, c.log(l)); v.OK || !strings.Contains(v.Reason, "no record is sealed with an audit key") {
			t.Errorf("got %+v, want broken: no record sealed with the key", v)
		}
	})
}

// unkeyAll re-writes every record of c as unkeyed, with correct unkeyed
// hashes, as someone without the key might.
func unkeyAll(t *testing.T, c snapshot) {
	t.Helper()
	rows, err := c.db.Query(`SELECT ` + rowColumns + ` FROM audit_log ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	var rs []row
	for rows.Next() {
		var r row
		if err := r.scanFrom(rows); err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	rows.Close()
	prev := GenesisHash
	for _, r := range rs {
		r.keyID, r.prevHash = "", prev
		r.hash = r.computeHash(sha256.New())
		if _, err := c.db.Exec(`UPDATE audit_log SET key_id = '', prev_hash = ?, hash = ? WHERE seq = ?`, r.prevHash, r.hash, r.seq); err != nil {
			t.Fatal(err)
		}
		prev = r.hash
	}
}

// TestKeyRotation: a new key seals records from an explicit
// audit.key_rotated record on; the old key still verifies the records it
// sealed; a portal still holding the old ring reads the file again rather
// than seal with the old key, and to verify the new key's records; a ring
// missing a key cannot verify.
func TestKeyRotation(t *testing.T) {
	ctx := context.Background()
	// The key file lives in a folder of its own: the database may be a
	// PostgreSQL URL, not a file beside which to put it.
	db, _ := openTestDB(t)
	keyFile := filepath.Join(t.TempDir(), "audit.key")
	load := func() (*Keyring, error) { return LoadKeyFile(keyFile, false) }
	ring, err := LoadKeyFile(keyFile, true)
	if err != nil {
		t.Fatal(err)
	}
	before := NewKeyed(db, nil, ring, load)
	seed(t, before, 2)
	k2, err := RotateKeyFile(keyFile)
	if err != nil || k2.ID != "k2" {
		t.Fatalf("RotateKeyFile: %+v, %v", k2, err)
	}
	ring2, err := load()
	if err != nil || ring2.Current().ID != "k2" || len(ring2.IDs()) != 2 {
		t.Fatalf("ring after rotation: %v %v", ring2.IDs(), err)
	}
	after := NewKeyed(db, nil, ring2, load)
	if wrote, err := after.Rekey(ctx, "cli"); err != nil || !wrote {
		t.Fatalf("Rekey after rotation: %v %v", wrote, err)
	}
	// The portal still holding only k1 verifies the rotation record (the
	// audit page, before anything else is written) by reading the file
	// again; one that cannot read it says so.
	if v := mustVerify(t, NewKeyed(db, nil, ring, load)); !v.OK || v.KeyID != "k2" {
		t.Errorf("verify by a portal holding only k1 after the rotation: %+v, want intact with head k2", v)
	}
	failing := func() (*Keyring, error) { return nil, errors.New("permission denied") }
	if v := mustVerify(t, NewKeyed(db, nil, ring, failing)); v.OK || !strings.Contains(v.Reason, "reading the key ring again failed: permission denied") {
		t.Errorf("verify when the key file cannot be read again: %+v, want the reason", v)
	}
	// The portal still holding only k1 meets a record sealed with k2.
	seed(t, before, 1)
	recs, _, err := after.List(ctx, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if recs[0].KeyID != "k2" || recs[1].Action != ActionKeyRotated || recs[1].KeyID != "k2" || recs[2].KeyID != "k1" {
		t.Errorf("newest records %s/%s, %s/%s, %s/%s; want a k2 record after the k2 audit.key_rotated after k1",
			recs[0].Action, recs[0].KeyID, recs[1].Action, recs[1].KeyID, recs[2].Action, recs[2].KeyID)
	}
	if v := mustVerify(t, after); !v.OK || v.KeyID != "k2" {
		t.Errorf("verify with both keys: %+v", v)
	}
	onlyK2, err := ParseKeyring("k2 " + hexOf(k2.Secret))
	if err != nil {
		t.Fatal(err)
	}
	if v := mustVerify(t, NewKeyed(db, nil, onlyK2, nil)); v.OK || v.FirstBroken != 1 || !strings.Contains(v.Reason, "not in the key ring") {
		t.Errorf("verify without k1: %+v, want record 1 unverifiable", v)
	}
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode: %v %v, want 0600", fi.Mode(), err)
	}
}

func hexOf(b []byte) string { return hex.EncodeToString(b) }

func jsonNum(s string) any { return json.Number(s) }
