package jdbcsink

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// PostgreSQL type OIDs pgjdbc declares parameters with (org.postgresql.core.Oid).
const (
	oidUnspecified uint32 = 0
	oidBool        uint32 = 16
	oidBytea       uint32 = 17
	oidInt8        uint32 = 20
	oidInt2        uint32 = 21
	oidInt4        uint32 = 23
	oidFloat4      uint32 = 700
	oidFloat8      uint32 = 701
	oidVarchar     uint32 = 1043
	oidDate        uint32 = 1082
	oidTime        uint32 = 1083
	oidTimestamp   uint32 = 1114
	oidTimestamptz uint32 = 1184
	oidNumeric     uint32 = 1700
)

// param is one bound parameter as pgjdbc sends it: the type OID it declares in the
// Parse message and the value's text (nil for NULL). pgjdbc sends some types in
// binary; the server sees the same type and value, so text is used throughout.
type param struct {
	oid  uint32
	text *string
}

func textParam(oid uint32, s string) param { return param{oid: oid, text: &s} }

// The PgPreparedStatement setters the sinks call (pgjdbc/pgjdbc
// pgjdbc/src/main/java/org/postgresql/jdbc/PgPreparedStatement.java), with the
// driver's defaults (stringtype unset, so setString is varchar; binary transfer on,
// so setFloat is float4).

// setNull is setObject(i, null) and setNull(i, Types.OTHER): an untyped NULL.
func setNull() param { return param{oid: oidUnspecified} }

func setString(s string) param { return textParam(oidVarchar, s) }

// setShort also serves setByte, which pgjdbc sends as int2.
func setShort(v int16) param { return textParam(oidInt2, strconv.Itoa(int(v))) }
func setInt(v int32) param   { return textParam(oidInt4, strconv.Itoa(int(v))) }
func setLong(v int64) param  { return textParam(oidInt8, strconv.FormatInt(v, 10)) }

func setFloat(v float32) param { return textParam(oidFloat4, javaFloat(float64(v), 32)) }

func setDouble(v float64) param { return textParam(oidFloat8, javaFloat(v, 64)) }

// setBoolean binds the literal TRUE or FALSE as bool.
func setBoolean(v bool) param {
	if v {
		return textParam(oidBool, "TRUE")
	}
	return textParam(oidBool, "FALSE")
}

// setBigDecimal sends BigDecimal.toString() as numeric (setNumber).
func setBigDecimal(d Decimal) param { return textParam(oidNumeric, d.String()) }

func setBytes(b []byte) param { return textParam(oidBytea, `\x`+hex.EncodeToString(b)) }

// setLocalDate is setObject(LocalDate): TimestampUtils.toString(LocalDate) as date.
func setLocalDate(t time.Time) param { return textParam(oidDate, pgDate(t)) }

// setLocalDateTime is setObject(LocalDateTime [, Types.TIMESTAMP]) as timestamp.
func setLocalDateTime(t time.Time) param {
	t = roundMicro(t)
	return textParam(oidTimestamp, pgDate(t)+" "+pgTime(t)+era(t))
}

// setOffsetDateTime is setObject(OffsetDateTime [, Types.TIMESTAMP_WITH_TIMEZONE])
// as timestamptz, with the value's offset.
func setOffsetDateTime(t time.Time) param {
	t = roundMicro(t)
	return textParam(oidTimestamptz, pgDate(t)+" "+pgTime(t)+pgOffset(t)+era(t))
}

// setTimestampCal is setTimestamp(i, java.sql.Timestamp, Calendar): pgjdbc declares
// it unspecified so it fits timestamp and timestamptz columns alike, and writes it in
// the calendar's zone with the offset.
func setTimestampCal(t time.Time, zone *time.Location) param {
	t = roundMicro(t).In(zone)
	return textParam(oidUnspecified, pgDate(t)+" "+pgTime(t)+pgOffset(t)+era(t))
}

// setDateCal is setDate(i, java.sql.Date, Calendar): unspecified, "yyyy-MM-dd +00".
func setDateCal(t time.Time, zone *time.Location) param {
	t = t.In(zone)
	return textParam(oidUnspecified, pgDate(t)+era(t)+" "+pgOffset(t))
}

// setTimeCal is setTime(i, java.sql.Time, Calendar): unspecified, milliseconds.
func setTimeCal(t time.Time, zone *time.Location) param {
	t = t.In(zone).Truncate(time.Millisecond)
	return textParam(oidUnspecified, pgTime(t)+pgOffset(t))
}

// javaFloat is Float/Double.toString as far as PostgreSQL's parser can tell: the
// shortest text that reads back as the same value, and Java's NaN and Infinity.
func javaFloat(f float64, bits int) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return strconv.FormatFloat(f, 'g', -1, bits)
}

// roundMicro is pgjdbc's rounding: nanoseconds past 499 in the microsecond round up.
func roundMicro(t time.Time) time.Time {
	if t.Nanosecond()%1000 > 499 {
		t = t.Add(time.Microsecond)
	}
	return t.Truncate(time.Microsecond)
}

// pgDate is TimestampUtils.appendDate: the year of era, at least four digits.
func pgDate(t time.Time) string {
	y := t.Year()
	if y <= 0 {
		y = 1 - y
	}
	return fmt.Sprintf("%04d-%02d-%02d", y, int(t.Month()), t.Day())
}

func era(t time.Time) string {
	if t.Year() <= 0 {
		return " BC"
	}
	return ""
}

// pgTime is TimestampUtils.appendTime: microseconds without trailing zeros.
func pgTime(t time.Time) string {
	s := fmt.Sprintf("%02d:%02d:%02d", t.Hour(), t.Minute(), t.Second())
	if us := t.Nanosecond() / 1000; us > 0 {
		s += strings.TrimRight(fmt.Sprintf(".%06d", us), "0")
	}
	return s
}

// pgOffset is TimestampUtils.appendTimeZone: +HH, +HH:MM or +HH:MM:SS.
func pgOffset(t time.Time) string {
	_, off := t.Zone()
	sign := "+"
	if off < 0 {
		sign, off = "-", -off
	}
	h, m, s := off/3600, off/60%60, off%60
	switch {
	case m == 0 && s == 0:
		return fmt.Sprintf("%s%02d", sign, h)
	case s == 0:
		return fmt.Sprintf("%s%02d:%02d", sign, h, m)
	}
	return fmt.Sprintf("%s%02d:%02d:%02d", sign, h, m, s)
}

// executeBatch is PreparedStatement.executeBatch on pgjdbc: each entry is parsed
// with its parameters' declared types and executed, in order, inside the caller's
// transaction. The first failure aborts the rest and is reported as pgjdbc's
// BatchUpdateException (pgjdbc/src/main/java/org/postgresql/jdbc/BatchResultHandler.java).
func executeBatch(ctx context.Context, c *pgconn.PgConn, sql string, entries [][]param) error {
	for i, params := range entries {
		if err := execute(ctx, c, sql, params); err != nil {
			return &JavaError{Class: "BatchUpdateException", Message: fmt.Sprintf(
				"Batch entry %d %s was aborted: %s  Call getNextException to see other errors in the batch.",
				i, renderQuery(sql, params), psqlMessage(err)), Cause: err, causeInMessage: true}
		}
	}
	return nil
}

// execute parses sql as an unnamed statement with the parameters' OIDs (so the
// server resolves types exactly as for pgjdbc) and runs it with text values.
func execute(ctx context.Context, c *pgconn.PgConn, sql string, params []param) error {
	oids := make([]uint32, len(params))
	values := make([][]byte, len(params))
	for i, p := range params {
		oids[i] = p.oid
		if p.text != nil {
			values[i] = []byte(*p.text)
		}
	}
	if _, err := c.Prepare(ctx, "", sql, oids); err != nil {
		return err
	}
	_, err := c.ExecPrepared(ctx, "", values, nil, nil).Close()
	return err
}

// psqlMessage is PSQLException's message: ServerErrorMessage.toString.
func psqlMessage(err error) string {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return err.Error()
	}
	var b strings.Builder
	b.WriteString(pe.Severity + ": " + pe.Message)
	if pe.Detail != "" {
		b.WriteString("\n  Detail: " + pe.Detail)
	}
	if pe.Hint != "" {
		b.WriteString("\n  Hint: " + pe.Hint)
	}
	if pe.Position != 0 {
		b.WriteString("\n  Position: " + strconv.Itoa(int(pe.Position)))
	}
	if pe.Where != "" {
		b.WriteString("\n  Where: " + pe.Where)
	}
	return b.String()
}

// renderQuery is the statement with its parameters written in, as pgjdbc puts it in
// a batch entry's message (approximately: pgjdbc writes typed literals its own way).
func renderQuery(sql string, params []param) string {
	for i := len(params) - 1; i >= 0; i-- {
		v := "NULL"
		if t := params[i].text; t != nil {
			v = "'" + strings.ReplaceAll(*t, "'", "''") + "'"
		}
		sql = strings.ReplaceAll(sql, "$"+strconv.Itoa(i+1), v)
	}
	return sql
}

// pgjdbcSession sets what pgjdbc sets at connection startup (DateStyle ISO,
// extra_float_digits 3, client_encoding UTF8) and the TimeZone pgjdbc sends, the
// JVM's default zone, assumed here to be UTC as in the Kafka Connect images.
func pgjdbcSession(ctx context.Context, c *pgconn.PgConn) error {
	_, err := c.Exec(ctx, "SET DateStyle = 'ISO'; SET extra_float_digits = 3; SET client_encoding = 'UTF8'; SET TimeZone = 'UTC'").ReadAll()
	return err
}
