package jdbcsink

import (
	"fmt"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// dbzType is a JdbcType of the PostgreSQL dialect: the placeholder it writes in the
// statement and the Java value it binds, here as the parameter pgjdbc sends for that
// value (debezium/debezium debezium-connector-jdbc/src/main/java/io/debezium/connector/jdbc/type/**,
// dialect/postgres/*Type.java). Values are bound through PreparedStatementQueryBinder:
// setObject(i, value) or setObject(i, value, targetSqlType).
type dbzType struct {
	class string // the Java class's simple name, for "Unexpected X value" messages
	// placeholder is getQueryBinding; nil is AbstractType's, the dialect's
	// getQueryBindingWithValueCast.
	placeholder func(col *columnDef, s *Schema) string
	bindValue   func(t dbzType, s *Schema, v any, zone *time.Location) (param, error)
}

func (t dbzType) queryBinding(col *columnDef, s *Schema) string {
	if t.placeholder != nil {
		return t.placeholder(col, s)
	}
	return valueCast(col, s)
}

func (t dbzType) bind(s *Schema, v any, zone *time.Location) (param, error) {
	return t.bindValue(t, s, v, zone)
}

// valueCast is PostgresDatabaseDialect.getQueryBindingWithValueCast: a STRING field
// going into a uuid, json or jsonb column is cast to it; anything else is a bare ?.
func valueCast(col *columnDef, s *Schema) string {
	if s.Type == TypeString {
		switch strings.ToLower(col.typeName) {
		case "uuid", "json", "jsonb":
			return "cast(? as " + strings.ToLower(col.typeName) + ")"
		}
	}
	return "?"
}

func castTo(typ string) func(*columnDef, *Schema) string {
	return func(*columnDef, *Schema) string { return "cast(? as " + typ + ")" }
}

// dbzTypesByName is the dialect's type registry by logical name, as
// PostgresDatabaseDialect.registerTypes leaves it (later registrations win).
var dbzTypesByName = map[string]dbzType{
	DecimalName:                             {class: "ConnectDecimalType", bindValue: bindObject},
	DateName:                                {class: "ConnectDateType", bindValue: bindConnectDate},
	TimestampName:                           {class: "ConnectTimestampType", bindValue: bindConnectTimestamp},
	TimeName:                                {class: "ConnectTimeType", bindValue: bindConnectTime},
	"io.debezium.time.Date":                 {class: "DateType", bindValue: bindEpochDays},
	"io.debezium.time.Timestamp":            {class: "TimestampType", bindValue: bindEpoch(time.Millisecond)},
	"io.debezium.time.MicroTimestamp":       {class: "MicroTimestampType", bindValue: bindEpoch(time.Microsecond)},
	"io.debezium.time.NanoTimestamp":        {class: "NanoTimestampType", bindValue: bindEpoch(time.Nanosecond)},
	"io.debezium.time.ZonedTimestamp":       {class: "ZonedTimestampType", placeholder: castTo("timestamptz"), bindValue: bindZonedTimestamp},
	"io.debezium.time.Time":                 {class: "TimeType", bindValue: bindTimeOfDay(time.Millisecond)},
	"io.debezium.time.MicroTime":            {class: "MicroTimeType", bindValue: bindTimeOfDay(time.Microsecond)},
	"io.debezium.data.Json":                 {class: "JsonType", placeholder: jsonPlaceholder, bindValue: bindJSON},
	"io.debezium.data.Uuid":                 {class: "UuidType", placeholder: castTo("uuid"), bindValue: bindObject},
	"io.debezium.data.Enum":                 {class: "EnumType", placeholder: enumPlaceholder, bindValue: bindObject},
	"io.debezium.data.VariableScaleDecimal": {class: "VariableScaleDecimalType", bindValue: bindVariableScaleDecimal},
}

// dbzTypesBySchemaType is the registry by Connect schema type (the Connect*Type
// classes, PostgreSQL's BytesType for BYTES). MAP (MapToHstoreType) and ARRAY
// (ArrayType) are registered by the real dialect but not emulated.
var dbzTypesBySchemaType = map[Type]dbzType{
	TypeInt8:    {class: "ConnectInt8Type", bindValue: bindObject},
	TypeInt16:   {class: "ConnectInt16Type", bindValue: bindObject},
	TypeInt32:   {class: "ConnectInt32Type", bindValue: bindObject},
	TypeInt64:   {class: "ConnectInt64Type", bindValue: bindObject},
	TypeFloat32: {class: "ConnectFloat32Type", bindValue: bindObject},
	TypeFloat64: {class: "ConnectFloat64Type", bindValue: bindObject},
	TypeBoolean: {class: "ConnectBooleanType", bindValue: bindObject},
	TypeString:  {class: "ConnectStringType", bindValue: bindObject},
	TypeBytes:   {class: "BytesType", bindValue: bindObject},
}

// dbzUnemulated are names and types the real dialect registers that this emulation
// does not implement: it refuses them rather than guess.
var dbzUnemulated = map[string]bool{
	"io.debezium.data.Bits": true, "io.debezium.data.Xml": true, "io.debezium.data.Ltree": true,
	"io.debezium.data.Tsvector": true, "io.debezium.data.geometry.Point": true,
	"io.debezium.data.geometry.Geometry": true, "io.debezium.data.geometry.Geography": true,
	"io.debezium.data.geometry.Circle": true, "io.debezium.data.geometry.Line": true,
	"io.debezium.data.DoubleVector": true, "io.debezium.data.FloatVector": true,
	"io.debezium.data.SparseDoubleVector": true, "io.debezium.time.MicroDuration": true,
	"io.debezium.time.NanoTime": true, "io.debezium.time.ZonedTime": true,
	"io.debezium.time.StructuredDate": true, "io.debezium.time.StructuredTime": true,
	"io.debezium.time.StructuredTimestamp": true, "io.debezium.time.StructuredZonedTime": true,
	"io.debezium.time.StructuredZonedTimestamp": true, "io.debezium.time.StructuredDuration": true,
	string(TypeMap): true, string(TypeArray): true,
}

// dbzTypeFor is GeneralDatabaseDialect.getSchemaType: by logical name, then by schema
// type. (The lookup by a propagated __debezium.source.column.type, which only finds
// PostgreSQL source types such as SERIAL or INET, is not emulated.)
func dbzTypeFor(s *Schema) (dbzType, error) {
	if s.Name != "" {
		if t, ok := dbzTypesByName[s.Name]; ok {
			return t, nil
		}
		if dbzUnemulated[s.Name] {
			return dbzType{}, connectErrorf("jdbcsink: Debezium's JDBC type for %s is not emulated", s.Name)
		}
	}
	if t, ok := dbzTypesBySchemaType[s.Type]; ok {
		return t, nil
	}
	if dbzUnemulated[string(s.Type)] {
		return dbzType{}, connectErrorf("jdbcsink: Debezium's JDBC type for schema type %s is not emulated", s.Type)
	}
	name := "null"
	if s.Name != "" {
		name = s.Name
	}
	return dbzType{}, connectErrorf("Failed to resolve column type for schema: %s (%s)", s.Type, name)
}

func (t dbzType) unexpected(v any) error {
	return connectErrorf("Unexpected %s value '%v' with type '%s'", t.class, v, javaClassName(v))
}

// bindObject is AbstractType.bind: the Connect value itself, setObject(i, value).
func bindObject(_ dbzType, _ *Schema, v any, _ *time.Location) (param, error) {
	return setObject(v)
}

// setObject is PgPreparedStatement.setObject(int, Object): the driver picks the type
// from the Java class.
func setObject(v any) (param, error) {
	switch x := v.(type) {
	case nil:
		return setNull(), nil
	case string:
		return setString(x), nil
	case Decimal:
		return setBigDecimal(x), nil
	case int8:
		return setShort(int16(x)), nil
	case int16:
		return setShort(x), nil
	case int32:
		return setInt(x), nil
	case int64:
		return setLong(x), nil
	case float32:
		return setFloat(x), nil
	case float64:
		return setDouble(x), nil
	case []byte:
		return setBytes(x), nil
	case bool:
		return setBoolean(x), nil
	case []MapEntry:
		return param{}, connectErrorf("jdbcsink: pgjdbc's setObject(java.util.Map) (hstore) is not emulated")
	}
	// The binder wraps the SQLException in a RuntimeException.
	return param{}, &JavaError{Class: "RuntimeException", Message: "org.postgresql.util.PSQLException", Cause: &JavaError{
		Class: "PSQLException", Message: fmt.Sprintf("Can't infer the SQL type to use for an instance of %s. Use setObject() with an explicit Types value to specify the type to use.", javaClassName(v)),
	}}
}

// bindEpochDays is DateType: epoch days as a LocalDate (date).
func bindEpochDays(t dbzType, _ *Schema, v any, _ *time.Location) (param, error) {
	if v == nil {
		return setNull(), nil
	}
	n, ok := javaNumber(v)
	if !ok {
		return param{}, t.unexpected(v)
	}
	return setLocalDate(time.Unix(0, 0).UTC().AddDate(0, 0, int(n))), nil
}

// bindEpoch is TimestampType, MicroTimestampType and NanoTimestampType
// (AbstractDebeziumTimestampType): the epoch count as a LocalDateTime in UTC, bound as
// Types.TIMESTAMP (timestamp). The configured time zone leaves it unchanged
// (localDateTime.atZone(zone).toLocalDateTime()).
func bindEpoch(unit time.Duration) func(dbzType, *Schema, any, *time.Location) (param, error) {
	return func(t dbzType, _ *Schema, v any, _ *time.Location) (param, error) {
		if v == nil {
			return setNull(), nil
		}
		n, ok := javaNumber(v)
		if !ok {
			return param{}, t.unexpected(v)
		}
		return setLocalDateTime(epochIn(n, unit)), nil
	}
}

func epochIn(n int64, unit time.Duration) time.Time {
	per := int64(time.Second / unit)
	sec, frac := n/per, n%per
	if frac < 0 {
		sec, frac = sec-1, frac+per
	}
	return time.Unix(sec, frac*int64(unit)).UTC()
}

// bindTimeOfDay is TimeType and MicroTimeType (AbstractDebeziumTimeType): the time of
// day on today's date, a LocalDateTime bound as Types.TIMESTAMP. PostgreSQL's 24:00
// boundary (PostgresTimeBoundary) is not emulated.
func bindTimeOfDay(unit time.Duration) func(dbzType, *Schema, any, *time.Location) (param, error) {
	return func(t dbzType, _ *Schema, v any, _ *time.Location) (param, error) {
		if v == nil {
			return setNull(), nil
		}
		n, ok := javaNumber(v)
		if !ok {
			return param{}, t.unexpected(v)
		}
		d := time.Duration(n) * unit
		if d < 0 || d >= 24*time.Hour {
			return param{}, connectErrorf("jdbcsink: %s value %d (24:00 or out of a day) is not emulated", t.class, n)
		}
		y, m, day := time.Now().UTC().Date()
		return setLocalDateTime(time.Date(y, m, day, 0, 0, 0, 0, time.UTC).Add(d)), nil
	}
}

// bindZonedTimestamp is PostgreSQL's ZonedTimestampType: the ISO-8601 text parsed
// (ZonedTimestamp.FORMATTER, ISO_OFFSET_DATE_TIME), moved to the configured zone and
// bound as an OffsetDateTime (timestamptz) under cast(? as timestamptz); "infinity"
// and "-infinity" are bound as varchar text.
func bindZonedTimestamp(t dbzType, _ *Schema, v any, zone *time.Location) (param, error) {
	if v == nil {
		return setNull(), nil
	}
	s, ok := v.(string)
	if !ok {
		return param{}, t.unexpected(v)
	}
	if s == "infinity" || s == "-infinity" {
		return setString(s), nil
	}
	ts, err := parseISOOffsetDateTime(s)
	if err != nil {
		return param{}, err
	}
	return setOffsetDateTime(ts.In(zone)), nil
}

// bindConnectDate is ConnectDateType: the java.util.Date's UTC date (date).
func bindConnectDate(t dbzType, _ *Schema, v any, _ *time.Location) (param, error) {
	if v == nil {
		return setNull(), nil
	}
	d, ok := v.(time.Time)
	if !ok {
		return param{}, t.unexpected(v)
	}
	return setLocalDate(d.UTC()), nil
}

// bindConnectTimestamp is ConnectTimestampType: the UTC LocalDateTime, bound as
// Types.TIMESTAMP since the JDBC time zone is always set.
func bindConnectTimestamp(t dbzType, _ *Schema, v any, _ *time.Location) (param, error) {
	if v == nil {
		return setNull(), nil
	}
	d, ok := v.(time.Time)
	if !ok {
		return param{}, t.unexpected(v)
	}
	return setLocalDateTime(d.UTC()), nil
}

// bindConnectTime is ConnectTimeType: a LocalTime, setObject(LocalTime) (time).
func bindConnectTime(t dbzType, _ *Schema, v any, _ *time.Location) (param, error) {
	if v == nil {
		return setNull(), nil
	}
	d, ok := v.(time.Time)
	if !ok {
		return param{}, t.unexpected(v)
	}
	return textParam(oidTime, pgTime(roundMicro(d.UTC()))), nil
}

// jsonPlaceholder is PostgreSQL's JsonType: cast(? as json), or jsonb when the source
// column type is propagated as JSONB.
func jsonPlaceholder(_ *columnDef, s *Schema) string {
	if s.Parameters["__debezium.source.column.type"] == "JSONB" {
		return "cast(? as jsonb)"
	}
	return "cast(? as json)"
}

func bindJSON(_ dbzType, s *Schema, v any, _ *time.Location) (param, error) {
	if s.Parameters["__debezium.source.column.type"] == "HSTORE" {
		return param{}, connectErrorf("jdbcsink: Debezium's Json-as-hstore binding is not emulated")
	}
	return setObject(v)
}

// enumPlaceholder is EnumType: a cast to the column's type, quoted.
func enumPlaceholder(col *columnDef, _ *Schema) string {
	name := col.typeName
	if !strings.HasPrefix(name, `"`) {
		name = `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
	}
	return "cast(? as " + name + ")"
}

// bindVariableScaleDecimal is VariableScaleDecimalType: the struct {scale, value} as a
// BigDecimal (numeric).
func bindVariableScaleDecimal(t dbzType, _ *Schema, v any, _ *time.Location) (param, error) {
	if v == nil {
		return setNull(), nil
	}
	st, ok := v.(*Struct)
	if !ok {
		return param{}, t.unexpected(v)
	}
	scale, _ := st.Get("scale")
	raw, _ := st.Get("value")
	sc, ok1 := scale.(int32)
	b, ok2 := raw.([]byte)
	if !ok1 || !ok2 || len(b) == 0 {
		return param{}, &JavaError{Class: "NoSuchElementException", Message: "No value present"}
	}
	return setBigDecimal(Decimal{Unscaled: new(big.Int).Set(twosComplement(b)), Scale: sc}), nil
}

// javaNumber is `value instanceof Number` then longValue().
func javaNumber(v any) (int64, bool) {
	switch x := v.(type) {
	case int8:
		return int64(x), true
	case int16:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case float32:
		return int64(x), true
	case float64:
		return int64(x), true
	case Decimal:
		return lowBits(truncateDecimal(x)), true
	}
	return 0, false
}

// isoOffsetDateTime is DateTimeFormatter.ISO_OFFSET_DATE_TIME (case-insensitive, the
// seconds and fraction optional, the offset Z or ±HH:MM[:SS]).
var isoOffsetDateTime = regexp.MustCompile(`^(\d{4}|[+-]\d{5,9}|-\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{0,9}))?)?(?:([Zz])|([+-])(\d{2}):(\d{2})(?::(\d{2}))?)$`)

// parseISOOffsetDateTime is ZonedDateTime.parse(text, ISO_OFFSET_DATE_TIME) with its
// strict resolution (no February 30th); the failure reads like Java's
// DateTimeParseException (without its character index).
func parseISOOffsetDateTime(s string) (time.Time, error) {
	fail := func(why string) (time.Time, error) {
		msg := fmt.Sprintf("Text '%s' could not be parsed", s)
		if why != "" {
			msg += ": " + why
		}
		return time.Time{}, &JavaError{Class: "DateTimeParseException", Message: msg}
	}
	m := isoOffsetDateTime.FindStringSubmatch(s)
	if m == nil {
		return fail("")
	}
	n := func(i int) int { v, _ := strconv.Atoi(m[i]); return v }
	year, month, day, hour, minute := n(1), n(2), n(3), n(4), n(5)
	sec, nanos := 0, 0
	if m[6] != "" {
		sec = n(6)
	}
	if m[7] != "" {
		nanos, _ = strconv.Atoi((m[7] + "000000000")[:9])
	}
	if month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || sec > 59 {
		return fail("Invalid value")
	}
	if day > daysIn(year, month) {
		return fail(fmt.Sprintf("Invalid date '%s %d'", strings.ToUpper(time.Month(month).String()), day))
	}
	offset := 0
	if m[8] == "" {
		offset = n(10)*3600 + n(11)*60
		if m[12] != "" {
			offset += n(12)
		}
		if n(11) > 59 || n(12) > 59 || offset > 18*3600 {
			return fail("Invalid value")
		}
		if m[9] == "-" {
			offset = -offset
		}
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, nanos, time.FixedZone("", offset)), nil
}

func daysIn(year, month int) int {
	return time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}
