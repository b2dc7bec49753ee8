package codecs

import (
	"errors"
	"fmt"
	"math"

	"github.com/valyala/fastjson"
)

// ReplayLine is one line of a replay input file (DESIGN.md section 8): one Kafka
// message of one system.
//
//	{"system":"crm","partition":0,"offset":17,"key":<JSON or null>,"value":<JSON or null>,"headers":{"k":"v"}}
type ReplayLine struct {
	System    string
	Partition int32 // 0 when absent
	Offset    int64 // 0 when absent; see HasOffset
	HasOffset bool  // the line gives an offset (callers may default it to the line number)
	// Key and Value are the message bytes: the compact JSON of a JSON value, the
	// content of a JSON string (raw bytes, so poison can be replayed), nil for null
	// or absent (a null value is a tombstone).
	Key, Value []byte
	Headers    map[string]string // nil when absent
}

// Message returns the line as the Kafka message of the given topic.
func (l ReplayLine) Message(topic string) Message {
	return Message{Topic: topic, Partition: l.Partition, Offset: l.Offset, Key: l.Key, Value: l.Value}
}

// ParseReplayLine parses one replay line. "system" is required; unknown and repeated
// fields are errors, so that a typo is not silently replayed as a tombstone. Errors
// wrap ErrPoison. Safe for concurrent use (it allocates its own parser).
func ParseReplayLine(line []byte) (ReplayLine, error) {
	var l ReplayLine
	if err := l.parse(line); err != nil {
		return ReplayLine{}, poison("replay line", err)
	}
	return l, nil
}

func (l *ReplayLine) parse(line []byte) error {
	var p fastjson.Parser
	root, err := parseStrict(&p, line)
	if err != nil {
		return err
	}
	o, err := root.Object()
	if err != nil {
		return fmt.Errorf("got %s, want an object", kindOf(root))
	}
	seen := make(map[string]bool, 6)
	o.Visit(func(key []byte, v *fastjson.Value) {
		if err != nil {
			return
		}
		if seen[string(key)] {
			err = fmt.Errorf("field %q appears twice", key)
			return
		}
		seen[string(key)] = true
		err = l.setField(key, v)
	})
	if err != nil {
		return err
	}
	if l.System == "" {
		return errors.New(`"system" is missing or empty`)
	}
	return nil
}

func (l *ReplayLine) setField(key []byte, v *fastjson.Value) error {
	var err error
	switch string(key) {
	case "system":
		if v.Type() != fastjson.TypeString {
			err = fmt.Errorf("is %s, want a string", kindOf(v))
		}
		l.System = string(stringOrNil(v))
	case "partition":
		var n int64
		n, err = replayInt(v, math.MaxInt32)
		l.Partition = int32(n) // replayInt bounds n to [0, MaxInt32]
	case "offset":
		l.Offset, err = replayInt(v, math.MaxInt64)
		l.HasOffset = err == nil
	case "key":
		l.Key = replayBytes(v)
	case "value":
		l.Value = replayBytes(v)
	case "headers":
		l.Headers, err = replayHeaders(v)
	default:
		return fmt.Errorf("unknown field %.40q (want system, partition, offset, key, value, headers)", key)
	}
	if err != nil {
		return fmt.Errorf("%q: %w", key, err)
	}
	return nil
}

// replayInt reads a non-negative integer no greater than limit.
func replayInt(v *fastjson.Value, limit int64) (int64, error) {
	if v.Type() != fastjson.TypeNumber {
		return 0, fmt.Errorf("is %s, want an integer", kindOf(v))
	}
	text := v.MarshalTo(nil)
	n, err := parseInt(text)
	if err != nil || n < 0 || n > limit {
		return 0, fmt.Errorf("%.40s is not an integer in [0, %d]", text, limit)
	}
	return n, nil
}

// replayBytes returns the message bytes a key or value field stands for.
func replayBytes(v *fastjson.Value) []byte {
	switch v.Type() {
	case fastjson.TypeNull:
		return nil
	case fastjson.TypeString:
		s, _ := v.StringBytes() // cannot fail: the type is string
		return append([]byte{}, s...)
	default:
		// The subtree is untouched, so fastjson writes its strings and keys exactly as
		// they were escaped on the line.
		return v.MarshalTo(nil)
	}
}

func replayHeaders(v *fastjson.Value) (map[string]string, error) {
	if v.Type() == fastjson.TypeNull {
		return nil, nil
	}
	o, err := v.Object()
	if err != nil {
		return nil, fmt.Errorf("is %s, want an object of strings", kindOf(v))
	}
	headers := make(map[string]string, o.Len())
	o.Visit(func(k []byte, hv *fastjson.Value) {
		if err != nil {
			return
		}
		s, serr := hv.StringBytes()
		if serr != nil {
			err = fmt.Errorf("header %q is %s, want a string", k, kindOf(hv))
			return
		}
		headers[string(k)] = string(s)
	})
	return headers, err
}
