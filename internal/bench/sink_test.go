package bench

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/concord-sync/concord/internal/world"
)

// TestAppendEchoIsWorldsEncoding checks the sink's own echo encoder against
// internal/world's Table.EncodeValue over random creates, updates, deletes and
// snapshot reads of tables with and without a full before image, and that it
// declines what it does not escape.
func TestAppendEchoIsWorldsEncoding(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	values := []string{`"plain"`, `12`, `null`, `true`, `"with \"quote\""`, `{"a":1}`, `-0.5`}
	for _, full := range []bool{false, true} {
		tbl := world.NewTable(world.Spec{Name: "billing", Table: "customers", KeyColumn: "cust_id", Columns: []string{"f0", "f1", "f2"}, FullBefore: full}, true)
		for i := range 500 {
			id := fmt.Sprintf("r-%d", r.IntN(20))
			if r.IntN(4) == 0 {
				id = fmt.Sprintf("r<&>%d", r.IntN(5)) // written as they are, as Jackson does
			}
			var c *world.Change
			if r.IntN(8) == 0 {
				c, _ = tbl.Delete(id, int64(i), world.Cause{Kind: world.User})
			} else {
				set := world.Row{}
				for range 1 + r.IntN(3) {
					set[fmt.Sprintf("f%d", r.IntN(4))] = values[r.IntN(len(values))]
				}
				c = tbl.Upsert(id, set, int64(i), world.Cause{Kind: world.User})
			}
			if c == nil {
				continue
			}
			want, err := tbl.EncodeValue(c, int64(1000+i))
			if err != nil {
				t.Fatal(err)
			}
			got, ok := appendEcho(nil, tbl.Spec(), c, int64(1000+i))
			if !ok || !bytes.Equal(got, want) {
				t.Fatalf("full before %v, change %d (%v of %s): ok %v\n%s\nwant\n%s", full, i, c.Op, id, ok, got, want)
			}
		}
		for _, c := range tbl.Snapshot(7) {
			want, _ := tbl.EncodeValue(c, 9)
			if got, ok := appendEcho(nil, tbl.Spec(), c, 9); !ok || !bytes.Equal(got, want) {
				t.Fatalf("snapshot read of %s: ok %v\n%s\nwant\n%s", c.ID, ok, got, want)
			}
		}
	}

	tbl := world.NewTable(world.Spec{Name: "billing", Table: "customers", KeyColumn: "cust_id", Columns: []string{"f0"}}, true)
	for _, id := range []string{`a"b`, `a\b`, "a\nb", "é", "a<b"} {
		c := tbl.Upsert(id, world.Row{"f0": `"x"`}, 1, world.Cause{Kind: world.User})
		got, ok := appendEcho(nil, tbl.Spec(), c, 2)
		want, _ := tbl.EncodeValue(c, 2)
		if ok && !bytes.Equal(got, want) {
			t.Errorf("id %q: encoded as\n%s\nwant\n%s", id, got, want)
		}
	}
}
