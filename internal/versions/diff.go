package versions

import "strings"

// Op is what a diff line does.
type Op int

// Diff operations.
const (
	Equal Op = iota
	Delete
	Insert
)

// DiffLine is one line of a line diff. OldLine and NewLine are 1-based
// line numbers, 0 on the side the line is absent from.
type DiffLine struct {
	Op               Op
	OldLine, NewLine int
	Text             string
}

// maxDiffCells bounds the LCS table for the changed middle of two texts;
// beyond it the middle is shown as removed then added, which is still a
// correct (if not minimal) diff.
const maxDiffCells = 4 << 20

// Diff returns a line diff of old and new: a longest common subsequence
// of lines after trimming the common head and tail, which is exact and
// cheap for the small edits blueprints get. It is written here rather than
// taken from a library because the portal needs only lines, both line
// numbers and a bound on work, in forty lines.
func Diff(old, new []byte) []DiffLine {
	a, b := splitLines(string(old)), splitLines(string(new))
	var out []DiffLine
	head := 0
	for head < len(a) && head < len(b) && a[head] == b[head] {
		out = append(out, DiffLine{Op: Equal, OldLine: head + 1, NewLine: head + 1, Text: a[head]})
		head++
	}
	tail := 0
	for tail < len(a)-head && tail < len(b)-head && a[len(a)-1-tail] == b[len(b)-1-tail] {
		tail++
	}
	ma, mb := a[head:len(a)-tail], b[head:len(b)-tail]
	out = append(out, lcsDiff(ma, mb, head, head)...)
	for i := range tail {
		ia, ib := len(a)-tail+i, len(b)-tail+i
		out = append(out, DiffLine{Op: Equal, OldLine: ia + 1, NewLine: ib + 1, Text: a[ia]})
	}
	return out
}

func lcsDiff(a, b []string, offA, offB int) []DiffLine {
	var out []DiffLine
	if len(a)*len(b) > maxDiffCells {
		for i, s := range a {
			out = append(out, DiffLine{Op: Delete, OldLine: offA + i + 1, Text: s})
		}
		for j, s := range b {
			out = append(out, DiffLine{Op: Insert, NewLine: offB + j + 1, Text: s})
		}
		return out
	}
	// l[i][j] is the LCS length of a[i:] and b[j:].
	w := len(b) + 1
	l := make([]int32, (len(a)+1)*w)
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				l[i*w+j] = l[(i+1)*w+j+1] + 1
			} else {
				l[i*w+j] = max(l[(i+1)*w+j], l[i*w+j+1])
			}
		}
	}
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case i < len(a) && j < len(b) && a[i] == b[j]:
			out = append(out, DiffLine{Op: Equal, OldLine: offA + i + 1, NewLine: offB + j + 1, Text: a[i]})
			i++
			j++
		case i < len(a) && (j == len(b) || l[(i+1)*w+j] >= l[i*w+j+1]):
			// Removals before additions, as people read diffs.
			out = append(out, DiffLine{Op: Delete, OldLine: offA + i + 1, Text: a[i]})
			i++
		default:
			out = append(out, DiffLine{Op: Insert, NewLine: offB + j + 1, Text: b[j]})
			j++
		}
	}
	return out
}

// splitLines splits s into lines without their line endings; a final
// newline does not start another line.
func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.TrimSuffix(s, "\n")
	return strings.Split(s, "\n")
}

// Lines splits a file's content into lines, as Diff numbers them.
func Lines(content []byte) []string { return splitLines(string(content)) }
