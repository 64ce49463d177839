package activity

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Event is one CloudTrail event as the portal stores it: the fields the
// explorer filters on, and the record exactly as CloudTrail delivered it.
type Event struct {
	// Seq is the portal's row number (0 before storing).
	Seq          int64
	ID           string // eventID
	Time         time.Time
	Account      string // recipientAccountId
	Region       string // awsRegion
	Source       string // eventSource, e.g. s3.amazonaws.com
	Name         string // eventName
	ReadOnly     bool
	IdentityType string // userIdentity.type: Root, IAMUser, AssumedRole, AWSService…
	PrincipalARN string
	UserName     string // IAM user name, "root", or the role session name
	AccessKey    string
	Session      string // role session name for assumed roles
	SourceIP     string
	ErrorCode    string
	RequestID    string
	Resources    []string
	// Sensitive says why the event needs a look; "" when it does not.
	Sensitive string
	Origin    string
	Sandbox   bool
	Raw       json.RawMessage
}

// record is the part of a CloudTrail record the portal reads.
type record struct {
	EventID      string `json:"eventID"`
	EventTime    string `json:"eventTime"`
	EventSource  string `json:"eventSource"`
	EventName    string `json:"eventName"`
	AWSRegion    string `json:"awsRegion"`
	SourceIP     string `json:"sourceIPAddress"`
	ErrorCode    string `json:"errorCode"`
	RequestID    string `json:"requestID"`
	ReadOnly     *bool  `json:"readOnly"`
	RecipientAcc string `json:"recipientAccountId"`
	UserIdentity struct {
		Type           string `json:"type"`
		ARN            string `json:"arn"`
		AccountID      string `json:"accountId"`
		AccessKeyID    string `json:"accessKeyId"`
		UserName       string `json:"userName"`
		SessionContext struct {
			SessionIssuer struct {
				UserName string `json:"userName"`
			} `json:"sessionIssuer"`
		} `json:"sessionContext"`
	} `json:"userIdentity"`
	Resources []struct {
		ARN string `json:"ARN"`
	} `json:"resources"`
	RequestParameters   stringMembers `json:"requestParameters"`
	AdditionalEventData stringMembers `json:"additionalEventData"`
}

// stringMembers are the string-valued members of a JSON object (or
// null), in order; other members are skipped without being decoded
// (requestParameters can be large, and the portal reads a few strings).
type stringMembers []struct{ key, value string }

// UnmarshalJSON reads an object; encoding/json has checked b is valid.
func (m *stringMembers) UnmarshalJSON(b []byte) error {
	*m = (*m)[:0]
	i := skipSpace(b, 0)
	if i < len(b) && b[i] == 'n' {
		return nil // null
	}
	if i >= len(b) || b[i] != '{' {
		return fmt.Errorf("not an object")
	}
	for i = skipSpace(b, i+1); i < len(b) && b[i] == '"'; {
		kEnd, kEsc := stringEnd(b, i)
		v := skipSpace(b, skipSpace(b, kEnd+1)+1) // past ':'
		if v >= len(b) {
			return fmt.Errorf("unexpected end of object")
		}
		key := jsonString(b[i:kEnd+1], kEsc)
		end := skipValue(b, v)
		if b[v] == '"' {
			vEnd, vEsc := stringEnd(b, v)
			if vEnd == len(b) {
				return fmt.Errorf("unexpected end of string")
			}
			*m = append(*m, struct{ key, value string }{key, jsonString(b[v:vEnd+1], vEsc)})
		}
		i = skipSpace(b, end)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
		}
	}
	return nil
}

// get returns the last string member named key (as a map would).
func (m stringMembers) get(key string) (string, bool) {
	for i := len(m) - 1; i >= 0; i-- {
		if m[i].key == key {
			return m[i].value, true
		}
	}
	return "", false
}

// jsonString decodes the quoted JSON string q.
func jsonString(q []byte, escaped bool) string {
	if !escaped {
		return string(q[1 : len(q)-1])
	}
	var s string
	_ = json.Unmarshal(q, &s)
	return s
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && isJSONSpace(b[i]) {
		i++
	}
	return i
}

// skipValue returns the index just past the JSON value at b[i] (for
// valid JSON; on anything else it stops somewhere in [i, len(b)]).
func skipValue(b []byte, i int) int {
	depth := 0
	for ; i < len(b); i++ {
		switch b[i] {
		case '"':
			if i, _ = stringEnd(b, i); i == len(b) {
				return i
			}
			if depth == 0 {
				return i + 1
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i // the end of a number or literal
			}
			if depth--; depth == 0 {
				return i + 1
			}
		case ',', ' ', '\n', '\t', '\r', ':':
			if depth == 0 {
				return i
			}
		}
	}
	return i
}

// resourceParams are requestParameters keys that name the resource acted on.
var resourceParams = []string{"bucketName", "roleName", "policyArn", "policyName", "userName", "groupName", "keyId", "groupId", "trailName", "name",
	"tableName", "dBInstanceIdentifier", "topicArn", "loadBalancerArn", "targetGroupArn", "autoScalingGroupName", "logGroupName", "alarmName", "instanceId", "hostedZoneId", "aliasName"}

// ParseRecord reads one CloudTrail record (a JSON object).
func ParseRecord(raw []byte) (Event, error) {
	var r record
	if err := json.Unmarshal(raw, &r); err != nil {
		return Event{}, fmt.Errorf("activity: CloudTrail record: %w", err)
	}
	if r.EventID == "" {
		return Event{}, fmt.Errorf("activity: CloudTrail record has no eventID")
	}
	t, err := time.Parse(time.RFC3339, r.EventTime)
	if err != nil {
		return Event{}, fmt.Errorf("activity: CloudTrail record %s: eventTime %q: %w", r.EventID, r.EventTime, err)
	}
	// Stored and exported one record per line (CloudTrail writes them
	// compact; only an indented record needs compacting).
	if bytes.IndexByte(raw, '\n') >= 0 {
		var compact bytes.Buffer
		if err := json.Compact(&compact, raw); err != nil {
			return Event{}, fmt.Errorf("activity: CloudTrail record %s: %w", r.EventID, err)
		}
		raw = compact.Bytes()
	}
	e := Event{ID: r.EventID, Time: t.UTC(), Region: r.AWSRegion, Source: r.EventSource, Name: r.EventName, SourceIP: r.SourceIP,
		ErrorCode: r.ErrorCode, RequestID: r.RequestID, Raw: json.RawMessage(raw)}
	e.Account = r.RecipientAcc
	if e.Account == "" {
		e.Account = r.UserIdentity.AccountID
	}
	if r.ReadOnly != nil {
		e.ReadOnly = *r.ReadOnly
	} else {
		e.ReadOnly = guessReadOnly(e.Name)
	}
	id := r.UserIdentity
	e.IdentityType, e.PrincipalARN, e.AccessKey = id.Type, id.ARN, id.AccessKeyID
	switch id.Type {
	case "Root":
		e.UserName = "root"
	case "AssumedRole":
		if i := strings.LastIndexByte(id.ARN, '/'); i >= 0 {
			e.Session = id.ARN[i+1:]
		}
		e.UserName = e.Session
	default:
		e.UserName = id.UserName
	}
	seen := map[string]bool{}
	add := func(s string) {
		s = strings.TrimSpace(s)
		if s != "" && !seen[s] {
			seen[s] = true
			e.Resources = append(e.Resources, s)
		}
	}
	for _, res := range r.Resources {
		add(res.ARN)
	}
	for _, k := range resourceParams {
		if s, ok := r.RequestParameters.get(k); ok {
			add(s)
		}
	}
	e.Sensitive = classify(&r, raw)
	return e, nil
}

// guessReadOnly is used for records without readOnly (LookupEvents gives
// it as a string, and old records lack it).
func guessReadOnly(name string) bool {
	for _, p := range []string{"Get", "List", "Describe", "Head", "Lookup", "Search", "Check", "Select", "Scan", "Query"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// ParseLogFile reads a CloudTrail log file, gzip-compressed or not:
// {"Records": [...]}. origin is stored with each event.
func ParseLogFile(r io.Reader, origin string) ([]Event, error) {
	events, _, err := parseLogFile(r, origin, nil)
	return events, err
}

// parseLogFile is ParseLogFile, with each event's valueWords when
// withWords (ingestion works them out while parsing, in parallel, rather
// than in the one goroutine that stores).
func parseLogFile(r io.Reader, origin string, wordsOf func([]byte) any) ([]Event, []any, error) {
	br := bufferedPeek(r)
	var body io.Reader = br
	if isGzip(br) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("activity: log file %s: %w", origin, err)
		}
		defer zr.Close()
		body = zr
	}
	data, err := io.ReadAll(body)
	if err != nil {
		return nil, nil, fmt.Errorf("activity: log file %s: %w", origin, err)
	}
	records, ok := splitRecords(data)
	if !ok {
		// Anything unusual goes through encoding/json, for its checks
		// and its words about what is wrong.
		var f struct {
			Records []json.RawMessage `json:"Records"`
		}
		if err := json.NewDecoder(bytes.NewReader(data)).Decode(&f); err != nil {
			return nil, nil, fmt.Errorf("activity: log file %s: %w", origin, err)
		}
		records = f.Records
	}
	out := make([]Event, 0, len(records))
	var words []any
	if wordsOf != nil {
		words = make([]any, 0, len(records))
	}
	for i, raw := range records {
		e, err := ParseRecord(raw)
		if err != nil {
			return nil, nil, fmt.Errorf("activity: log file %s: record %d: %w", origin, i+1, err)
		}
		e.Origin = origin
		out = append(out, e)
		if wordsOf != nil {
			words = append(words, wordsOf(e.Raw))
		}
	}
	return out, words, nil
}

// splitRecords returns the elements of a log file's Records array as
// slices of data (no copy, no second decoding: ParseRecord checks each
// one), or false when the file is anything but a plain {"Records": [...]}
// object with valid other members; encoding/json then has the last word.
// Like json.Decoder, it ignores what follows the object.
func splitRecords(data []byte) ([]json.RawMessage, bool) {
	var records []json.RawMessage
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return nil, false
	}
	for i = skipSpace(data, i+1); i < len(data) && data[i] != '}'; {
		if data[i] != '"' {
			return nil, false
		}
		kEnd, kEsc := stringEnd(data, i)
		if kEnd == len(data) {
			return nil, false
		}
		key := string(data[i+1 : kEnd])
		if i = skipSpace(data, kEnd+1); kEsc || i >= len(data) || data[i] != ':' {
			return nil, false
		}
		i = skipSpace(data, i+1)
		switch {
		case key == "Records":
			records = records[:0]
			if strings.HasPrefix(string(data[i:min(i+4, len(data))]), "null") {
				i += 4
				break
			}
			if i >= len(data) || data[i] != '[' {
				return nil, false
			}
			for i = skipSpace(data, i+1); i < len(data) && data[i] != ']'; {
				end := skipValue(data, i)
				records = append(records, json.RawMessage(data[i:end]))
				if i = skipSpace(data, end); i < len(data) && data[i] == ',' {
					i = skipSpace(data, i+1)
				} else if i >= len(data) || data[i] != ']' {
					return nil, false
				}
			}
			if i >= len(data) {
				return nil, false
			}
			i++
		case strings.EqualFold(key, "Records") || !isASCII(key):
			return nil, false // encoding/json matches names loosely
		default:
			end := skipValue(data, i)
			if !json.Valid(data[i:end]) {
				return nil, false
			}
			i = end
		}
		if i = skipSpace(data, i); i < len(data) && data[i] == ',' {
			i = skipSpace(data, i+1)
			if i >= len(data) || data[i] != '"' {
				return nil, false
			}
		} else if i >= len(data) || data[i] != '}' {
			return nil, false
		}
	}
	return records, i < len(data)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

type peekReader struct {
	head []byte
	r    io.Reader
}

func (p *peekReader) Read(b []byte) (int, error) {
	if len(p.head) > 0 {
		n := copy(b, p.head)
		p.head = p.head[n:]
		return n, nil
	}
	return p.r.Read(b)
}

func bufferedPeek(r io.Reader) *peekReader {
	head := make([]byte, 2)
	n, _ := io.ReadFull(r, head)
	return &peekReader{head: head[:n], r: r}
}

func isGzip(p *peekReader) bool { return bytes.HasPrefix(p.head, []byte{0x1f, 0x8b}) }

// sortedKeys returns m's keys in order (deterministic output).
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// idKeys name values the free-text index leaves out: unique to one event
// or request, they would make the index several times larger and slower
// to write; Filter.Text finds them through their own columns instead.
var idKeys = map[string]bool{"eventID": true, "requestID": true, "sharedEventID": true}

// valueWords returns the words of a record's values, space separated,
// each once: what the free-text index (activity_text) holds. A word is a
// run of ASCII letters and digits and non-ASCII bytes (what SQLite's
// "ascii" tokenizer keeps together). The values are the record's strings
// (unescaped) and integers; field names, true/false/null, fractions and
// the values of idKeys are left out. Migration 0502 computes the same
// with json_tree for events stored before it; raw is valid JSON.
func valueWords(raw []byte) string {
	out := make([]byte, 0, len(raw)/3)
	var seen wordSet
	forEachValueWord(raw, func(w []byte) bool {
		if seen.add(w) {
			if len(out) > 0 {
				out = append(out, ' ')
			}
			out = append(out, w...)
		}
		return true
	})
	return string(out)
}

// forEachValueWord calls fn with each word of raw's values (see
// valueWords), repeats included, until fn returns false.
func forEachValueWord(raw []byte, fn func(w []byte) bool) {
	forEachValue(raw, func(text []byte) bool {
		more := true
		forEachWord(text, func(w []byte) { more = more && fn(w) })
		return more
	})
}

// forEachValue calls fn with the text of each of raw's values that
// valueWords reads (a string, unescaped, or an integer), until fn
// returns false.
func forEachValue(raw []byte, fn func(text []byte) bool) {
	skip := false // the next value belongs to an idKeys field
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case c == '"':
			j, escaped := stringEnd(raw, i)
			if j == len(raw) {
				return
			}
			k := j + 1
			for k < len(raw) && isJSONSpace(raw[k]) {
				k++
			}
			text := raw[i+1 : j]
			if escaped {
				text = []byte(jsonString(raw[i:j+1], true))
			}
			if k < len(raw) && raw[k] == ':' { // a field name
				skip = idKeys[string(text)]
				i = k
				continue
			}
			if !skip && !fn(text) {
				return
			}
			skip = false
			i = j
		case c == '-' || c >= '0' && c <= '9':
			j := i + 1
			for j < len(raw) && (raw[j] >= '0' && raw[j] <= '9' || strings.IndexByte("+-.eE", raw[j]) >= 0) {
				j++
			}
			// Integers as SQLite's JSON reads them (an int64); fractions
			// print differently there, and are rarely looked for.
			if !skip {
				if _, err := strconv.ParseInt(string(raw[i:j]), 10, 64); err == nil && !fn(raw[i:j]) {
					return
				}
			}
			skip = false
			i = j - 1
		case c == '{' || c == '[':
			skip = false // an object or array under an id field is indexed
		case c == 't' || c == 'f' || c == 'n':
			skip = false
		}
	}
}

// hasPhrase reports whether one of raw's values has the words of want
// (folded to lower case) next to each other in that order, the last one
// as the start of a word when prefix. The text index finds the events
// that have every word somewhere; this tells which of them have the
// words as they were typed.
func hasPhrase(raw []byte, want [][]byte, prefix bool) bool {
	if len(want) == 0 {
		return false
	}
	// Most rows fail a quick look for the words anywhere in the record
	// (a word of a value is in the record as is, unless spelt with \u).
	if !bytes.Contains(raw, []byte(`\u`)) {
		lower := lowerASCII(raw)
		for _, x := range want {
			if !bytes.Contains(lower, x) {
				return false
			}
		}
	}
	found := false
	var words [][]byte
	forEachValue(raw, func(text []byte) bool {
		words = words[:0]
		forEachWord(text, func(w []byte) { words = append(words, w) })
		for start := 0; start+len(want) <= len(words) && !found; start++ {
			found = phraseAt(words[start:], want, prefix)
		}
		return !found
	})
	return found
}

// phraseAt reports whether words begins with want.
func phraseAt(words, want [][]byte, prefix bool) bool {
	for i, x := range want {
		w := words[i]
		if prefix && i == len(want)-1 && len(w) > len(x) {
			w = w[:len(x)]
		}
		if !equalFoldASCII(w, x) {
			return false
		}
	}
	return true
}

// lowerASCII returns a copy of b with A-Z folded to a-z (as the index
// folds case: other letters are kept as they are).
func lowerASCII(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		out[i] = c
	}
	return out
}

// equalFoldASCII reports whether w folded to ASCII lower case is lower.
func equalFoldASCII(w, lower []byte) bool {
	if len(w) != len(lower) {
		return false
	}
	for i, c := range w {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// wordSet remembers words by a 64-bit hash of their ASCII-folded bytes
// (the index folds ASCII case): a record has tens of words, so a
// collision, which would only leave a duplicate out, is never expected.
// Small sets live in an array, without allocating.
type wordSet struct {
	slots [128]uint64
	n     int
	more  map[uint64]struct{}
}

// add reports whether w is new, and remembers it.
func (s *wordSet) add(w []byte) bool {
	h := uint64(14695981039346656037) // FNV-1a
	for _, c := range w {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		h = (h ^ uint64(c)) * 1099511628211
	}
	h |= 1 // 0 marks a free slot
	if s.more != nil {
		if _, ok := s.more[h]; ok {
			return false
		}
		s.more[h] = struct{}{}
		return true
	}
	for i := h % uint64(len(s.slots)); ; i = (i + 1) % uint64(len(s.slots)) {
		switch s.slots[i] {
		case h:
			return false
		case 0:
			s.slots[i] = h
			if s.n++; s.n > len(s.slots)*3/4 {
				s.more = make(map[uint64]struct{}, 2*s.n)
				for _, x := range s.slots {
					if x != 0 {
						s.more[x] = struct{}{}
					}
				}
			}
			return true
		}
	}
}

// stringEnd returns the index of the quote closing the JSON string that
// opens at raw[i] (len(raw) when there is none), and whether the string
// has escapes.
func stringEnd(raw []byte, i int) (int, bool) {
	escaped := false
	j := i + 1
	for j < len(raw) && raw[j] != '"' {
		if raw[j] == '\\' {
			escaped = true
			j++
		}
		j++
	}
	return min(j, len(raw)), escaped
}

func isJSONSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\t' || c == '\r' }

// isWordByte reports whether c is part of a word: an ASCII letter or
// digit, or a byte of a non-ASCII character.
func isWordByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

// forEachWord calls fn with each word of text, in order.
func forEachWord(text []byte, fn func([]byte)) {
	for i := 0; i < len(text); {
		for i < len(text) && !isWordByte(text[i]) {
			i++
		}
		j := i
		for j < len(text) && isWordByte(text[j]) {
			j++
		}
		if j > i {
			fn(text[i:j])
		}
		i = j
	}
}
