package hostile

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Outcomes a case may expect. Poison is the rule; the others are messages that are
// legitimately not a change (or a change that is odd but valid) and are handled as
// any other message of their kind.
const (
	Poison           = "poison"            // to <name>.poison with a reason containing Case.Reason
	Applied          = "applied"           // a valid change: applied to the other system
	Tombstone        = "tombstone"         // acknowledged, nothing applied
	Heartbeat        = "heartbeat"         // acknowledged, nothing applied
	TransactionBegin = "transaction_begin" // acknowledged, nothing applied
	TransactionEnd   = "transaction_end"   // acknowledged, nothing applied
	Truncate         = "truncate"          // acknowledged, never propagated
	Message          = "message"           // a logical decoding message: acknowledged
)

// MaxGenerated bounds what a .gen description may produce, so that a typo in one
// cannot exhaust a test machine's memory.
const MaxGenerated = 64 << 20

// Case is one message of the corpus.
type Case struct {
	Name    string
	System  string // the configured system whose topic the message is read from
	Key     []byte // nil: a null key
	Value   []byte // nil: a null value
	Outcome string
	Reason  string // for Poison: text the poison reason must contain
	Why     string
}

// Load reads the corpus in dir: the case table of dir/README.md and each case's
// NAME.key, NAME.value or NAME.gen files. It fails on a case without a message, a
// message file without a case, or an outcome it does not know.
func Load(dir string) ([]Case, error) {
	readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		return nil, err
	}
	cases, err := parseTable(readme)
	if err != nil {
		return nil, err
	}
	known := map[string]bool{}
	for i := range cases {
		c := &cases[i]
		if known[c.Name] {
			return nil, fmt.Errorf("hostile: case %s is listed twice", c.Name)
		}
		known[c.Name] = true
		if err := c.read(dir); err != nil {
			return nil, err
		}
	}
	files, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		name, ext, found := strings.Cut(f.Name(), ".")
		if found && ext != "md" && !known[name] {
			return nil, fmt.Errorf("hostile: %s belongs to no case of the README's table", f.Name())
		}
	}
	return cases, nil
}

func (c *Case) read(dir string) error {
	base := filepath.Join(dir, c.Name)
	var err error
	if c.Key, err = optional(base + ".key"); err != nil {
		return err
	}
	if c.Value, err = optional(base + ".value"); err != nil {
		return err
	}
	gen, err := optional(base + ".gen")
	switch {
	case err != nil:
		return err
	case gen != nil && c.Value != nil:
		return fmt.Errorf("hostile: case %s has both a .value and a .gen file", c.Name)
	case gen != nil:
		if c.Value, err = Generate(gen); err != nil {
			return fmt.Errorf("hostile: %s.gen: %w", c.Name, err)
		}
	}
	if c.Key == nil && c.Value == nil && c.Outcome != Tombstone {
		return fmt.Errorf("hostile: case %s has no message files", c.Name)
	}
	return nil
}

// optional reads a file, giving nil (not an empty slice) when it does not exist.
func optional(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, nil
	case err != nil:
		return nil, err
	case b == nil:
		return []byte{}, nil
	}
	return b, nil
}

// Generate builds a message from a .gen description: lines "text T" (T as written)
// and "repeat N T" (T N times, with {i} replaced by the repetition's number from 0);
// lines starting with # and blank lines are comments. Nothing else is added, not
// even line breaks.
func Generate(desc []byte) ([]byte, error) {
	var out []byte
	sc := bufio.NewScanner(bytes.NewReader(desc))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		cmd, rest, _ := strings.Cut(line, " ")
		switch cmd {
		case "text":
			out = append(out, rest...)
		case "repeat":
			count, text, _ := strings.Cut(rest, " ")
			times, err := strconv.Atoi(count)
			if err != nil || times < 0 || len(out)+times*len(text) > MaxGenerated {
				return nil, fmt.Errorf("line %d: %q is not a repeat count that stays within %d bytes", n, count, MaxGenerated)
			}
			if !strings.Contains(text, "{i}") {
				out = append(out, bytes.Repeat([]byte(text), times)...)
				continue
			}
			for i := range times {
				out = append(out, strings.ReplaceAll(text, "{i}", strconv.Itoa(i))...)
			}
		default:
			return nil, fmt.Errorf("line %d: %q is neither text nor repeat", n, cmd)
		}
		if len(out) > MaxGenerated {
			return nil, fmt.Errorf("line %d: more than %d bytes", n, MaxGenerated)
		}
	}
	return out, sc.Err()
}

var outcomes = map[string]bool{
	Poison: true, Applied: true, Tombstone: true, Heartbeat: true, TransactionBegin: true,
	TransactionEnd: true, Truncate: true, Message: true,
}

// parseTable reads the rows of the README's case table: the Markdown table whose
// header starts with "| case | system | outcome | reason contains |". Cells are
// trimmed of spaces and of the backticks around code.
func parseTable(readme []byte) ([]Case, error) {
	var cases []Case
	in := false
	for n, line := range strings.Split(string(readme), "\n") {
		switch {
		case strings.HasPrefix(line, "| case | system | outcome | reason contains |"):
			in = true
			continue
		case !in || strings.HasPrefix(line, "|---"):
			continue
		case !strings.HasPrefix(line, "|"):
			in = false
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), " | ")
		if len(cells) != 5 {
			return nil, fmt.Errorf("hostile: README.md line %d: %d cells, want 5 (case, system, outcome, reason, why)", n+1, len(cells))
		}
		for i := range cells {
			cells[i] = strings.Trim(strings.TrimSpace(cells[i]), "`")
		}
		c := Case{Name: cells[0], System: cells[1], Outcome: cells[2], Reason: cells[3], Why: cells[4]}
		if !outcomes[c.Outcome] {
			return nil, fmt.Errorf("hostile: README.md line %d: unknown outcome %q", n+1, c.Outcome)
		}
		if c.Outcome == Poison && (c.Reason == "" || c.Reason == "-") {
			return nil, fmt.Errorf("hostile: README.md line %d: a poison case names the reason it expects", n+1)
		}
		cases = append(cases, c)
	}
	if len(cases) == 0 {
		return nil, errors.New("hostile: README.md has no case table")
	}
	return cases, nil
}
