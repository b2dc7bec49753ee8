package state_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/concord-sync/concord/internal/testenv"
	"github.com/concord-sync/concord/pipeline/state"
	"github.com/concord-sync/concord/resolver"
)

// benchTemplate is record r-2933 as `concord bench --events 50000 --redis ADDR` left
// it in Redis (GET {bench:p3}:s:r-2933, before format 3: an 8-byte version and
// format 1, 477 bytes, MEMORY USAGE 584 B on redis-server 7.0.15): ten fields agreed
// with their values, both systems showing the agreed image, and the apply each
// system last saw land (billing three fields, crm all ten, three of which a later
// change has overwritten since).
func benchTemplate(t testing.TB) (*resolver.State, []byte) {
	t.Helper()
	raw, err := os.ReadFile("testdata/bench-r-2933.v1")
	if err != nil {
		t.Fatal(err)
	}
	st := new(resolver.State)
	if err := state.UnmarshalState(raw[8:], st); err != nil {
		t.Fatal(err)
	}
	return st, raw
}

// benchShapeState is the template made record r-<i>: its record number in the key
// and the values, fingerprints that follow the values, other event ids.
func benchShapeState(tmpl *resolver.State, i int) *resolver.State {
	st := tmpl.Clone()
	num := strconv.Itoa(i)
	st.Record = "r-" + num
	st.Key[0].Value = []byte(`"` + st.Record + `"`)
	st.Key[0].FP = resolver.Fingerprint(st.Key[0].Value)
	fps := map[uint64]uint64{}
	for j := range st.Agreed {
		a := &st.Agreed[j]
		a.Value = bytes.ReplaceAll(a.Value, []byte("2933"), []byte(num))
		fp := resolver.Fingerprint(a.Value)
		fps[a.FP], a.FP = fp, fp
	}
	refp := func(fp uint64) uint64 {
		if n, ok := fps[fp]; ok {
			return n
		}
		return fp ^ uint64(i)*0x9e3779b97f4a7c15 // another record's own: any 8 bytes
	}
	for s := range st.Systems {
		ss := &st.Systems[s]
		for j := range ss.Seen {
			ss.Seen[j].FP = refp(ss.Seen[j].FP)
		}
		for l := range ss.Landed {
			id := binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(nil, uint64(i)), uint64(s<<8|l))
			ss.Landed[l].EventID = hex.EncodeToString(id)
			for j := range ss.Landed[l].Fields {
				ss.Landed[l].Fields[j].FP = refp(ss.Landed[l].Fields[j].FP)
			}
		}
	}
	return st
}

func usedMemory(t testing.TB, c *redis.Client) int64 {
	t.Helper()
	info, err := c.Info(ctx, "memory").Result()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	t.Fatal("no used_memory in INFO")
	return 0
}

func TestZZSize(t *testing.T) {
	srv := testenv.Redis(t)
	c := srv.Client(t)
	s := state.NewRedis(c, "bench")
	tmpl, _ := benchTemplate(t)
	f, err := s.Claim(ctx, state.Fence{Partition: 3, Generation: 1}, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, f.Fence, []state.Write{{State: tmpl.Clone()}}, nil); err != nil {
		t.Fatal(err)
	}
	key := s.StateKey(3, "r-2933")
	raw, _ := c.Get(ctx, key).Bytes()
	mu, _ := c.MemoryUsage(ctx, key).Result()
	fmt.Printf("len %d memory usage %d\n%q\n", len(raw), mu, raw)
	_ = usedMemory
	_ = benchShapeState
}
