package pipeline

import (
	"slices"
	"strings"

	"github.com/segmentio/kafka-go"
)

// copartitionBalancer assigns partition numbers, not topic partitions: a member that
// gets partition N gets it in every input topic, so one instance sees a record's whole
// history. Numbers are split in contiguous ranges over the members sorted by id, so
// the assignment is the same whichever member leads.
type copartitionBalancer struct{}

var _ kafka.GroupBalancer = copartitionBalancer{}

// ProtocolName implements kafka.GroupBalancer.
func (copartitionBalancer) ProtocolName() string { return "concord-copartition" }

// UserData implements kafka.GroupBalancer.
func (copartitionBalancer) UserData() ([]byte, error) { return nil, nil }

// AssignGroups implements kafka.GroupBalancer.
func (copartitionBalancer) AssignGroups(members []kafka.GroupMember, partitions []kafka.Partition) kafka.GroupMemberAssignments {
	members = slices.Clone(members)
	slices.SortFunc(members, func(a, b kafka.GroupMember) int { return strings.Compare(a.ID, b.ID) })
	byNumber := map[int][]string{} // partition number -> topics that have it
	for _, p := range partitions {
		byNumber[p.ID] = append(byNumber[p.ID], p.Topic)
	}
	numbers := make([]int, 0, len(byNumber))
	for n := range byNumber {
		numbers = append(numbers, n)
	}
	slices.Sort(numbers)
	out := kafka.GroupMemberAssignments{}
	for i, m := range members {
		assigned := map[string][]int{}
		lo, hi := i*len(numbers)/len(members), (i+1)*len(numbers)/len(members)
		for _, n := range numbers[lo:hi] {
			for _, topic := range byNumber[n] {
				if slices.Contains(m.Topics, topic) {
					assigned[topic] = append(assigned[topic], n)
				}
			}
		}
		out[m.ID] = assigned
	}
	return out
}
