package store

import (
	"strconv"
	"strings"
	"sync"
)

// rebind rewrites a statement written for SQLite into PostgreSQL's
// dialect, so that domain packages keep one text for both databases:
//
//   - ? and ?NNN placeholders become $N, numbered as SQLite numbers them (a
//     bare ? takes one more than the largest number assigned so far);
//   - LIKE becomes ILIKE: SQLite's LIKE ignores the case of ASCII letters,
//     PostgreSQL's does not;
//   - a subquery in FROM or JOIN without a name gets one (AS _sub1, ...):
//     PostgreSQL before 16 requires it.
//
// String literals, quoted identifiers, comments and dollar-quoted bodies
// are copied as they are.
func rebind(q string) string {
	var b strings.Builder
	b.Grow(len(q) + 16)
	max := 0
	// parens holds, per open parenthesis, whether it opens a subquery in
	// FROM or JOIN; lastWord is the last keyword or name copied.
	var parens []bool
	lastWord, subs := "", 0
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == '(':
			parens = append(parens, strings.EqualFold(lastWord, "FROM") || strings.EqualFold(lastWord, "JOIN"))
			lastWord = ""
			b.WriteByte(c)
			i++
		case c == ')':
			b.WriteByte(c)
			i++
			lastWord = ""
			if n := len(parens); n > 0 {
				derived := parens[n-1]
				parens = parens[:n-1]
				if derived && !namedNext(q[i:]) {
					subs++
					b.WriteString(" AS _sub")
					b.WriteString(strconv.Itoa(subs))
				}
			}
		case c == '\'' || c == '"':
			j := skipQuoted(q, i, c)
			b.WriteString(q[i:j])
			i = j
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			j := strings.IndexByte(q[i:], '\n')
			if j < 0 {
				j = len(q) - i
			}
			b.WriteString(q[i : i+j])
			i += j
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			j := strings.Index(q[i+2:], "*/")
			end := len(q)
			if j >= 0 {
				end = i + 2 + j + 2
			}
			b.WriteString(q[i:end])
			i = end
		case c == '$' && i+1 < len(q) && (q[i+1] == '$' || isIdentStart(q[i+1])):
			j := skipDollarQuoted(q, i)
			b.WriteString(q[i:j])
			i = j
		case c == '?':
			j := i + 1
			for j < len(q) && q[j] >= '0' && q[j] <= '9' {
				j++
			}
			n := max + 1
			if j > i+1 {
				n, _ = strconv.Atoi(q[i+1 : j])
			}
			if n > max {
				max = n
			}
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			i = j
		case isIdentStart(c):
			j := i + 1
			for j < len(q) && isIdentPart(q[j]) {
				j++
			}
			if w := q[i:j]; strings.EqualFold(w, "LIKE") {
				b.WriteString("ILIKE")
			} else {
				b.WriteString(w)
			}
			lastWord = q[i:j]
			i = j
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String()
}

// followsSubquery lists the words that may follow a subquery in FROM when
// it has no name.
var followsSubquery = map[string]bool{
	"WHERE": true, "GROUP": true, "ORDER": true, "LIMIT": true, "OFFSET": true, "HAVING": true, "WINDOW": true,
	"UNION": true, "EXCEPT": true, "INTERSECT": true, "JOIN": true, "LEFT": true, "RIGHT": true, "INNER": true,
	"FULL": true, "CROSS": true, "NATURAL": true, "ON": true, "USING": true, "RETURNING": true,
}

// namedNext reports whether the text after a subquery's closing
// parenthesis starts with its name (AS, or a name that is not a keyword).
func namedNext(rest string) bool {
	rest = strings.TrimLeft(rest, " \t\r\n")
	if rest == "" || rest[0] == '"' {
		return rest != ""
	}
	if !isIdentStart(rest[0]) {
		return false
	}
	j := 1
	for j < len(rest) && isIdentPart(rest[j]) {
		j++
	}
	w := strings.ToUpper(rest[:j])
	return w == "AS" || !followsSubquery[w]
}

// skipQuoted returns the index just past the quoted text starting at i
// (quote doubled inside to escape it).
func skipQuoted(q string, i int, quote byte) int {
	for j := i + 1; j < len(q); j++ {
		if q[j] == quote {
			if j+1 < len(q) && q[j+1] == quote {
				j++
				continue
			}
			return j + 1
		}
	}
	return len(q)
}

// skipDollarQuoted returns the index just past $tag$...$tag$ starting at
// i, or just past the $ when it starts no such body (e.g. $1).
func skipDollarQuoted(q string, i int) int {
	j := i + 1
	for j < len(q) && isIdentPart(q[j]) {
		j++
	}
	if j >= len(q) || q[j] != '$' {
		return i + 1
	}
	tag := q[i : j+1]
	end := strings.Index(q[j+1:], tag)
	if end < 0 {
		return len(q)
	}
	return j + 1 + end + len(tag)
}

func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= 0x80
}

func isIdentPart(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }

// rebindCache keeps the rewritten text of recent statements; the portal's
// statements are few and repeated, while statements built with a varying
// number of values (IN lists, multi-row inserts) are many: the cache is
// emptied when it fills rather than grown.
type rebindCache struct {
	mu sync.RWMutex
	m  map[string]string
}

const rebindCacheSize = 4096

func (c *rebindCache) rebind(q string) string {
	c.mu.RLock()
	v, ok := c.m[q]
	c.mu.RUnlock()
	if ok {
		return v
	}
	v = rebind(q)
	c.mu.Lock()
	if c.m == nil || len(c.m) >= rebindCacheSize {
		c.m = make(map[string]string)
	}
	c.m[q] = v
	c.mu.Unlock()
	return v
}
