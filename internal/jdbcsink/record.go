package jdbcsink

import (
	"strconv"
	"strings"
)

// Record is a Kafka record as the sink's consumer reads it. A nil Key or Value is
// Kafka's null (a nil Value is a tombstone); an empty non-nil slice is zero bytes.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Timestamp int64 // milliseconds; only printed in messages
	Key       []byte
	Value     []byte
}

// sinkRecord is a SinkRecord: the record with its key and value converted.
type sinkRecord struct {
	Record
	keySchema   *Schema
	key         any
	valueSchema *Schema
	value       any
}

// converters are the key and value converters of a connector, configured from its
// properties as the worker does for per-connector overrides (key.converter.* and
// value.converter.*); the converter class is always JsonConverter here.
type converters struct {
	key, value *JSONConverter
}

func newConverters(props map[string]string) (converters, error) {
	k, err := converterFromProps(props, "key.converter.")
	if err != nil {
		return converters{}, err
	}
	v, err := converterFromProps(props, "value.converter.")
	if err != nil {
		return converters{}, err
	}
	return converters{key: k, value: v}, nil
}

func converterFromProps(props map[string]string, prefix string) (*JSONConverter, error) {
	c := NewJSONConverter(true)
	var err error
	if c.SchemasEnable, err = boolProp(props, prefix+"schemas.enable", true); err != nil {
		return nil, err
	}
	if c.ReplaceNullWithDefault, err = boolProp(props, prefix+"replace.null.with.default", true); err != nil {
		return nil, err
	}
	return c, nil
}

// convert is WorkerSinkTask.convertMessages with errors.tolerance=none: the whole
// poll is converted before SinkTask.put is called, and the first conversion error
// fails the task, so put never sees any record of that poll (apache/kafka
// connect/runtime/src/main/java/org/apache/kafka/connect/runtime/WorkerSinkTask.java,
// errors/RetryWithToleranceOperator.java).
func (c converters) convert(records []Record) ([]sinkRecord, error) {
	out := make([]sinkRecord, 0, len(records))
	for _, r := range records {
		k, err := c.key.ToConnectData(r.Topic, r.Key)
		if err != nil {
			return nil, connectError("Tolerance exceeded in error handler", err)
		}
		v, err := c.value.ToConnectData(r.Topic, r.Value)
		if err != nil {
			return nil, connectError("Tolerance exceeded in error handler", err)
		}
		out = append(out, sinkRecord{Record: r, keySchema: k.Schema, key: k.Value, valueSchema: v.Schema, value: v.Value})
	}
	return out, nil
}

func boolProp(props map[string]string, name string, def bool) (bool, error) {
	v, ok := props[name]
	if !ok {
		return def, nil
	}
	// ConfigDef.parseType for BOOLEAN: "true" or "false", any case, trimmed.
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, connectErrorf("Invalid value %s for configuration %s: Expected value to be either true or false", v, name)
}

func intProp(props map[string]string, name string, def int) (int, error) {
	v, ok := props[name]
	if !ok {
		return def, nil
	}
	i, err := strconv.Atoi(v)
	if err != nil {
		return 0, connectErrorf("Invalid value %s for configuration %s: Not a number of type INT", v, name)
	}
	return i, nil
}

func stringProp(props map[string]string, name, def string) string {
	if v, ok := props[name]; ok {
		return v
	}
	return def
}
