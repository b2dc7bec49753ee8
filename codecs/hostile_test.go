package codecs

import (
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/concord-sync/concord/internal/hostile"
)

// TestHostileCorpus decodes every message of testdata/hostile (see its README.md):
// a poison case must fail with ErrPoison and the reason the corpus names, unless
// the reason is the resolver's (the message decodes; the pipeline refuses it when
// it looks for the record); every other case must decode to its kind. No case may
// take memory out of proportion to its size (fastjson's parse tree takes some fifty
// bytes per JSON value, so a row of tiny columns costs tens of times its size),
// and each obeys the invariants the
// fuzz targets check (checkDecode).
func TestHostileCorpus(t *testing.T) {
	cases, err := hostile.Load("../testdata/hostile")
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) < 50 {
		t.Errorf("the corpus has %d cases, want at least 50", len(cases))
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			opts := Options{Unwrapped: c.System == "billing"}
			var ev Event
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			err := NewDecoder(opts).Decode(Message{Partition: 4, Offset: 8, Key: c.Key, Value: c.Value}, &ev)
			runtime.ReadMemStats(&after)
			if grew, bound := after.TotalAlloc-before.TotalAlloc, uint64(64*(len(c.Key)+len(c.Value))+4<<20); grew > bound {
				t.Errorf("decoding allocated %d bytes, more than %d", grew, bound)
			}
			switch {
			case c.Outcome == hostile.Poison && err != nil:
				if !errors.Is(err, ErrPoison) || !strings.Contains(err.Error(), c.Reason) {
					t.Errorf("error %q does not wrap ErrPoison or does not say %q", err, c.Reason)
				}
			case c.Outcome == hostile.Poison && !strings.HasPrefix(c.Reason, "resolver:"):
				t.Errorf("decoded as %v %q, want poison saying %q", ev.Kind, ev.Op, c.Reason)
			case c.Outcome != hostile.Poison && err != nil:
				t.Errorf("poison (%v), want %s", err, c.Outcome)
			case c.Outcome == hostile.Applied && ev.Kind != KindChange,
				c.Outcome != hostile.Poison && c.Outcome != hostile.Applied && ev.Kind.String() != c.Outcome:
				t.Errorf("decoded as %v, want %s", ev.Kind, c.Outcome)
			}
			checkDecode(t, opts, c.Key, c.Value)
		})
	}
}
