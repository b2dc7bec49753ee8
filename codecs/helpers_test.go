package codecs

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// debeziumDir holds the shared, real Debezium fixtures (see its SOURCES.md).
const debeziumDir = "../../shared/testdata/debezium"

// fixtureFiles lists the files of dir (SOURCES.md and README.md aside), sorted.
// It skips the test when the directory is absent.
func fixtureFiles(tb testing.TB, dir string) []string {
	tb.Helper()
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		tb.Skipf("fixture directory %s is absent; skipping", dir)
	}
	if err != nil {
		tb.Fatal(err)
	}
	var files []string
	for _, e := range entries {
		if e.IsDir() || strings.HasSuffix(e.Name(), ".md") {
			continue
		}
		files = append(files, filepath.Join(dir, e.Name()))
	}
	sort.Strings(files)
	return files
}

// isKeyFile reports whether a fixture holds a message key rather than a value.
func isKeyFile(path string) bool { return strings.HasSuffix(path, ".key.json") }

// fixtureMessages reads a fixture as the payloads (values or keys) it stands for: a
// .jsonl file gives one per line, a .tombstone file one nil payload, a .json file
// its whole content.
func fixtureMessages(tb testing.TB, path string) [][]byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	switch {
	case strings.HasSuffix(path, ".tombstone"):
		if len(b) != 0 {
			tb.Fatalf("%s: a tombstone fixture must be empty", path)
		}
		return [][]byte{nil}
	case strings.HasSuffix(path, ".jsonl"):
		var lines [][]byte
		for line := range bytes.Lines(b) {
			if line = bytes.TrimSpace(line); len(line) > 0 {
				lines = append(lines, line)
			}
		}
		return lines
	default:
		return [][]byte{b}
	}
}

// rowJSON renders a row as a JSON object of its canonical values, for comparisons.
func rowJSON(r Row) string {
	if r == nil {
		return "nil"
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, c := range r {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(appendJSONString(nil, []byte(c.Name)))
		b.WriteByte(':')
		b.Write(c.Value)
	}
	b.WriteByte('}')
	return b.String()
}

func decodeValue(tb testing.TB, opts Options, value []byte) (Event, error) {
	tb.Helper()
	var ev Event
	err := NewDecoder(opts).Decode(Message{Topic: "t", Partition: 3, Offset: 99, Value: value}, &ev)
	return ev.Clone(), err
}

func mustDecode(tb testing.TB, opts Options, m Message) Event {
	tb.Helper()
	var ev Event
	if err := NewDecoder(opts).Decode(m, &ev); err != nil {
		tb.Fatalf("Decode: %v", err)
	}
	return ev.Clone()
}

func wantRow(tb testing.TB, what string, got Row, want string) {
	tb.Helper()
	if g := rowJSON(got); g != want {
		tb.Errorf("%s:\n got %s\nwant %s", what, g, want)
	}
}

func wantColumn(tb testing.TB, r Row, name, want string) {
	tb.Helper()
	v, ok := r.Get(name)
	if !ok {
		tb.Errorf("column %q missing from %s", name, rowJSON(r))
		return
	}
	if string(v) != want {
		tb.Errorf("column %q = %s, want %s", name, v, want)
	}
}

func wantPosition(tb testing.TB, got Position, want Position) {
	tb.Helper()
	if got != want {
		tb.Errorf("position = %+v, want %+v", got, want)
	}
}

// wantPoison checks that err is a poison error whose text contains every fragment.
func wantPoison(tb testing.TB, err error, fragments ...string) {
	tb.Helper()
	if err == nil {
		tb.Fatalf("no error, want one containing %q", fragments)
	}
	if !errors.Is(err, ErrPoison) {
		tb.Errorf("error %q does not wrap ErrPoison", err)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			tb.Errorf("error %q does not contain %q", err, f)
		}
	}
}
