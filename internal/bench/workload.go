package bench

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/segmentio/kafka-go"

	"github.com/concord-sync/concord/config"
)

// Topics of the benchmark.
const (
	crmTopic     = "crm.public.contacts"
	billingTopic = "billing.public.customers"
	fields       = 10
)

// configYAML syncs ten shared fields between a CRM (key id) and a billing system
// (key cust_id).
const configYAML = `name: bench
kafka: {brokers: [%q]}
redis: {addr: %q}
systems:
  crm: {topic: crm.public.contacts, key: [id]}
  billing: {topic: billing.public.customers, key: [id], fields: {id: cust_id}, apply: {format: flat}}
resolution: {loop_guard: {max_applies: 1000000, window: 1m}}
authority: {f0: shared, f1: shared, f2: shared, f3: shared, f4: shared, f5: shared, f6: shared, f7: shared, f8: shared, f9: shared}
`

// Config returns the benchmark's configuration for the given broker and Redis.
func Config(broker, redisAddr string) (*config.Config, error) {
	cfg, err := config.Parse(fmt.Appendf(nil, configYAML, broker, redisAddr))
	if err != nil {
		return nil, err
	}
	return cfg, cfg.Validate()
}

// workload generates change events as two systems in sync produce them: a CRM update
// of three of a record's ten fields, then the billing system's echo of concord's apply
// (the same values, as the sink wrote them). A share of the updates (conflictRatio)
// meet a concurrent billing edit of f0 within the clock-skew tolerance first: a
// conflict sent to review.
type workload struct {
	rnd           *rand.Rand
	records       int
	partitions    int
	conflictRatio float64
	lsn           map[string]int64
	version       map[int]int
	nowMs         func() int64
	// sinkEchoes leaves billing's echoes to the sink (see sink), which writes them
	// once concord's applies exist; else next makes them at once, after the update.
	sinkEchoes bool
}

func newWorkload(records, partitions int, conflictRatio float64, seed uint64, nowMs func() int64) *workload {
	return &workload{
		rnd: rand.New(rand.NewPCG(seed, 1)), records: records, partitions: partitions, conflictRatio: conflictRatio,
		lsn: map[string]int64{}, version: map[int]int{}, nowMs: nowMs,
	}
}

// next returns the messages of one CRM update and what follows it.
func (w *workload) next() []kafka.Message {
	r := w.rnd.IntN(w.records)
	w.version[r]++
	v := w.version[r]
	id := "r-" + strconv.Itoa(r)
	row := w.row(r, v)
	msgs := []kafka.Message{w.message("crm", "id", id, row, w.nowMs())}
	if v > 1 && w.rnd.Float64() < w.conflictRatio {
		// billing edits f0 before concord's apply of the CRM's f0 lands, 100ms later by
		// its clock: within the tolerance, so the field goes to review.
		before := w.row(r, v-1)
		old := fmt.Sprintf(`"f0":"f0-%d-%d"`, r, v-1)
		msgs = append(msgs, w.message("billing", "cust_id", id, strings.Replace(before, old, fmt.Sprintf(`"f0":"billing-%d-%d"`, r, v), 1), w.nowMs()+100))
	}
	if !w.sinkEchoes {
		msgs = append(msgs, w.message("billing", "cust_id", id, w.row(r, v), w.nowMs()))
	}
	return msgs
}

// row is record r at version v: f0..f2 change with every version.
func (w *workload) row(r, v int) string {
	var b strings.Builder
	for f := range fields {
		if f > 0 {
			b.WriteByte(',')
		}
		val := fmt.Sprintf("f%d-%d", f, r)
		if f < 3 {
			val = fmt.Sprintf("f%d-%d-%d", f, r, v)
		}
		fmt.Fprintf(&b, `"f%d":%q`, f, val)
	}
	return b.String()
}

// message is a schemaless Debezium update of a system, routed to the record's
// partition (as Debezium's PartitionRouting SMT would).
func (w *workload) message(system, keyCol, id, row string, tsMs int64) kafka.Message {
	w.lsn[system]++
	value := fmt.Sprintf(`{"before":null,"after":{%q:%q,%s},"source":{"version":"2.7.0.Final","connector":"postgresql","name":%q,"ts_ms":%d,"snapshot":"false","db":%q,"schema":"public","table":"t","lsn":%d},"op":"u","ts_ms":%d}`,
		keyCol, id, row, system, tsMs, system, w.lsn[system], tsMs)
	topic := crmTopic
	if system == "billing" {
		topic = billingTopic
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return kafka.Message{
		Topic: topic, Partition: int(h.Sum32() % uint32(w.partitions)),
		Key: fmt.Appendf(nil, `{%q:%q}`, keyCol, id), Value: []byte(value),
	}
}
