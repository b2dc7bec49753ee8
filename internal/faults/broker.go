package faults

import (
	"errors"
	"slices"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// errCut is what a cutting control function answers: kfake closes the connection of
// a request its control function answers with an error.
var errCut = errors.New("faults: connection cut")

// broker is an in-process kfake cluster that can fail concord's requests. Faults
// select concord's own traffic only (its produce to the output topics, its fetches of
// the input topics, its group's commits and heartbeats), so the simulated systems
// keep running: they stand for databases and connectors outside the fault.
type broker struct {
	c       *kfake.Cluster
	addrs   []string
	inputs  []string // topics only concord fetches
	outputs []string // topics only concord produces to
	group   string

	cutting     atomic.Bool  // close the connection of every concord request
	commitDelay atomic.Int64 // hold each offset commit of the group this long (ns)
	cuts        atomic.Int64 // connections cut
}

// startBroker starts a one-broker cluster with every topic seeded with partitions
// partitions, and the controls that cut connections and delay commits (idle until
// asked for).
func startBroker(partitions int, group string, inputs, outputs []string) (*broker, error) {
	topics := slices.Concat(inputs, outputs)
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.GroupMinSessionTimeout(100*time.Millisecond),
		kfake.SeedTopics(int32(partitions), topics...),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(partitions),
	)
	if err != nil {
		return nil, err
	}
	b := &broker{c: c, addrs: c.ListenAddrs(), inputs: inputs, outputs: outputs, group: group}
	for _, key := range []kmsg.Key{kmsg.Produce, kmsg.Fetch, kmsg.OffsetCommit, kmsg.Heartbeat} {
		c.ControlKey(int16(key), b.control)
	}
	return b, nil
}

func (b *broker) close() { b.c.Close() }

// control runs on the cluster's goroutine for every request of the four keys: it
// cuts the connection of a concord request while cutting, delays the group's offset
// commits while asked to, and otherwise lets the broker answer.
func (b *broker) control(req kmsg.Request) (kmsg.Response, error, bool) { //nolint:revive // kfake's control signature
	b.c.KeepControl()
	if !b.concords(req) {
		return nil, nil, false
	}
	if b.cutting.Load() {
		b.cuts.Add(1)
		return nil, errCut, true
	}
	if d := time.Duration(b.commitDelay.Load()); d > 0 && req.Key() == int16(kmsg.OffsetCommit) {
		b.c.SleepControl(func() { time.Sleep(d) })
	}
	return nil, nil, false
}

// concords reports whether a request is concord's: a produce to an output topic, a
// fetch of an input topic, or a request of its consumer group.
func (b *broker) concords(req kmsg.Request) bool {
	switch r := req.(type) {
	case *kmsg.ProduceRequest:
		for _, t := range r.Topics {
			if slices.Contains(b.outputs, t.Topic) {
				return true
			}
		}
	case *kmsg.FetchRequest:
		for _, t := range r.Topics {
			if slices.Contains(b.inputs, t.Topic) {
				return true
			}
		}
	case *kmsg.OffsetCommitRequest:
		return r.Group == b.group
	case *kmsg.HeartbeatRequest:
		return r.Group == b.group
	}
	return false
}

// injectErrors makes the broker answer concord's produce requests, fetches and
// offset commits with error codes until the returned function is called: retriable
// codes a real cluster sends during a leader election or a coordinator move, and a
// produce timeout after the records were written (so a retry writes them twice).
func (b *broker) injectErrors() (remove func()) {
	var hs []*kfake.FaultHandle
	for _, t := range b.outputs {
		hs = append(hs,
			b.c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: t, Err: kerr.NotLeaderForPartition, Count: 3}),
			b.c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: t, Err: kerr.RequestTimedOut, Count: 2}),
			b.c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: t, Err: kerr.NotEnoughReplicas, Count: -1}),
		)
	}
	for _, t := range b.inputs {
		hs = append(hs, b.c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Fetch}, Topic: t, Err: kerr.NotLeaderForPartition, Count: -1}))
	}
	hs = append(hs, b.c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.OffsetCommit}, Group: b.group, Err: kerr.CoordinatorNotAvailable, Count: -1}))
	return func() {
		for _, h := range hs {
			h.Remove()
		}
	}
}
