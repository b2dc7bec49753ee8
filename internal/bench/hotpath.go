package bench

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/concord-sync/concord/codecs"
	"github.com/concord-sync/concord/resolver"
)

// hotMessage is a schemaless Debezium update of a 10-field row; variant picks the
// values of the first three fields, so consecutive updates change them.
func hotMessage(keyCol string, variant int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `{"before":null,"after":{%q:1234`, keyCol)
	for i := range 10 {
		v := "steady value"
		if i < 3 {
			v = fmt.Sprintf("changed value %d-%d", i, variant)
		}
		fmt.Fprintf(&b, `,"f%d":%q`, i, v)
	}
	b.WriteString(`},"source":{"version":"2.5.0.Final","connector":"postgresql","name":"db","ts_ms":1700000000000,"snapshot":"false","db":"app","schema":"public","table":"t","txId":5,"lsn":1000},"op":"u","ts_ms":1700000000001,"transaction":null}`)
	return []byte(b.String())
}

// hotPath is decode, resolve and encode of one message: the per-event work.
type hotPath struct {
	r       *resolver.Resolver
	decs    map[string]*codecs.Decoder
	st      *resolver.State
	ev      codecs.Event
	ch      resolver.Change
	out     resolver.Output
	enc     codecs.ApplyEncoder
	apply   codecs.Apply
	buf     []byte
	applies int
}

func newHotPath(b *testing.B) *hotPath {
	cfg, err := Config("localhost:9092", "localhost:6379")
	if err != nil {
		b.Fatal(err)
	}
	r, err := resolver.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return &hotPath{
		r: r, st: &resolver.State{}, enc: codecs.ApplyEncoder{Name: "contacts", Schema: true, Table: "billing.public.accounts"},
		decs: map[string]*codecs.Decoder{"crm": codecs.NewDecoder(codecs.Options{}), "billing": codecs.NewDecoder(codecs.Options{})},
	}
}

func (h *hotPath) process(b *testing.B, system string, msg []byte, pos uint64, now time.Time) {
	if err := h.decs[system].Decode(codecs.Message{Value: msg}, &h.ev); err != nil {
		b.Fatal(err)
	}
	h.ev.Position.A = pos // the messages are reused; keep positions moving
	// Canonicalize keeps a record ID the caller set; as in a stream of many records,
	// each event pays for its own.
	h.ch.Record = ""
	if err := h.r.Canonicalize(system, &h.ev, &h.ch); err != nil {
		b.Fatal(err)
	}
	h.out.Reset()
	h.r.Resolve(now, h.st, &h.ch, &h.out)
	for i := range h.out.Decisions {
		d := &h.out.Decisions[i]
		if d.Kind != resolver.KindApply {
			continue
		}
		h.apply.Key = h.apply.Key[:0]
		for _, k := range h.st.Key {
			column := h.r.Column(d.Target, k.Name)
			h.apply.Key = append(h.apply.Key, codecs.TypedColumn{Name: column, Value: k.Value, Type: h.r.ColumnType(d.Target, column)})
		}
		h.apply.Fields = h.apply.Fields[:0]
		for _, f := range d.Fields {
			column := h.r.Column(d.Target, f.Name)
			h.apply.Fields = append(h.apply.Fields, codecs.TypedColumn{Name: column, Value: f.Value, Type: h.r.ColumnType(d.Target, column)})
		}
		h.buf, _ = h.enc.AppendKey(h.buf[:0], &h.apply)
		h.buf, _, _ = h.enc.AppendValue(h.buf, &h.apply)
		h.applies++
	}
}

// HotPath measures decode + resolve + encode of a 10-field update with no conflict, in
// steady state: each op is one crm update (three fields changed, one apply to billing
// encoded) and billing's echo of it. Figures are per event (two per op). The resolver's
// BenchmarkHotPath and concord bench both run it.
func HotPath(b *testing.B) {
	h := newHotPath(b)
	crm := [2][]byte{hotMessage("id", 0), hotMessage("id", 1)}
	echo := [2][]byte{hotMessage("cust_id", 0), hotMessage("cust_id", 1)}
	now := time.UnixMilli(1_700_000_000_000)
	h.process(b, "crm", hotMessage("id", 9), 1, now)
	h.process(b, "billing", hotMessage("cust_id", 9), 1, now)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		pos := uint64(i + 2)
		h.process(b, "crm", crm[i%2], pos, now)
		h.process(b, "billing", echo[i%2], pos, now)
	}
	b.StopTimer()
	if h.applies != b.N+1 {
		b.Fatalf("%d applies for %d updates: the steady state is not what it claims", h.applies, b.N+1)
	}
	perEvent := b.Elapsed().Seconds() / float64(2*b.N)
	b.ReportMetric(1/perEvent, "events/s")
}
