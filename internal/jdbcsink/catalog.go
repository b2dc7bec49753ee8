package jdbcsink

import (
	"context"
	"errors"
	"strings"

	"github.com/jackc/pgx/v5"
)

// tableDef is what the sinks learn about a table from pgjdbc's DatabaseMetaData
// (getTables, getPrimaryKeys, getColumns).
type tableDef struct {
	catalog, schema, name string
	kind                  string // TABLE_TYPE: "TABLE", "VIEW", ...
	columns               []columnDef
	primaryKey            []string
}

// columnDef is one row of getColumns.
type columnDef struct {
	name string
	// typeName is TYPE_NAME: pg_type.typname ("int4", "numeric", "timestamptz",
	// "jsonb"), "serial"/"bigserial"/"smallserial" for integer columns defaulting to
	// nextval (pgjdbc/src/main/java/org/postgresql/jdbc/PgDatabaseMetaData.java).
	typeName      string
	nullable      bool
	autoIncrement bool // IS_AUTOINCREMENT: a nextval default or an identity column
}

func (t *tableDef) column(name string) *columnDef {
	for i := range t.columns {
		if t.columns[i].name == name {
			return &t.columns[i]
		}
	}
	return nil
}

func (t *tableDef) hasAutoIncrement() bool {
	for _, c := range t.columns {
		if c.autoIncrement {
			return true
		}
	}
	return false
}

// findTable is getTables(catalog, schemaPattern, tableName, null): a null schema
// matches any. pgjdbc matches with LIKE ('_' and '%' are wildcards); names here are
// compared exactly. The first row in pgjdbc's order (type, schema, name) wins.
func findTable(ctx context.Context, conn *pgx.Conn, schema *string, name string) (*tableDef, error) {
	const q = `SELECT current_database(), n.nspname,
		CASE c.relkind WHEN 'r' THEN 'TABLE' WHEN 'p' THEN 'PARTITIONED TABLE' WHEN 'v' THEN 'VIEW'
			WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'f' THEN 'FOREIGN TABLE' END AS kind
		FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relname = $1 AND ($2::text IS NULL OR n.nspname = $2)
			AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
		ORDER BY kind, n.nspname LIMIT 1`
	t := &tableDef{name: name}
	err := conn.QueryRow(ctx, q, name, schema).Scan(&t.catalog, &t.schema, &t.kind)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, sqlError("reading table metadata", err)
	}
	return t, nil
}

// readTable adds the columns and primary key of a table found by findTable.
func readTable(ctx context.Context, conn *pgx.Conn, t *tableDef) error {
	const cols = `SELECT a.attname, t.typname, NOT a.attnotnull,
			COALESCE(pg_get_expr(d.adbin, d.adrelid), ''), a.attidentity <> ''
		FROM pg_catalog.pg_attribute a
		JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
		JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
		LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped
		ORDER BY a.attnum`
	rows, err := conn.Query(ctx, cols, t.schema, t.name)
	if err != nil {
		return sqlError("reading column metadata", err)
	}
	for rows.Next() {
		var c columnDef
		var def string
		var identity bool
		if err := rows.Scan(&c.name, &c.typeName, &c.nullable, &def, &identity); err != nil {
			rows.Close()
			return sqlError("reading column metadata", err)
		}
		serial := strings.Contains(def, "nextval(")
		c.typeName = serialName(c.typeName, serial)
		c.autoIncrement = serial || identity
		t.columns = append(t.columns, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return sqlError("reading column metadata", err)
	}
	return readPrimaryKey(ctx, conn, t)
}

func serialName(typ string, serial bool) string {
	if !serial {
		return typ
	}
	switch typ {
	case "int4":
		return "serial"
	case "int8":
		return "bigserial"
	case "int2":
		return "smallserial"
	}
	return typ
}

func readPrimaryKey(ctx context.Context, conn *pgx.Conn, t *tableDef) error {
	const q = `SELECT a.attname
		FROM pg_catalog.pg_index i
		JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
		JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true
		JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
		WHERE i.indisprimary AND n.nspname = $1 AND c.relname = $2
		ORDER BY k.ord`
	rows, err := conn.Query(ctx, q, t.schema, t.name)
	if err != nil {
		return sqlError("reading primary key metadata", err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return sqlError("reading primary key metadata", err)
	}
	t.primaryKey = keys
	return nil
}

// sqlError wraps a metadata query failure as the SQLException pgjdbc would throw.
func sqlError(what string, err error) error {
	return &JavaError{Class: "PSQLException", Message: what + ": " + psqlMessage(err), Cause: err, causeInMessage: true}
}

// reservedWords are the words Hibernate quotes when it renders an identifier
// (IdentifierHelperBuilder: autoQuoteKeywords), read from the server as its
// reserved keywords; Hibernate's own list (SQL:2003 plus the driver's keywords) is
// approximated by PostgreSQL's.
func reservedWords(ctx context.Context, conn *pgx.Conn) (map[string]bool, error) {
	rows, err := conn.Query(ctx, `SELECT word FROM pg_get_keywords() WHERE catcode = 'R'`)
	if err != nil {
		return nil, sqlError("reading keywords", err)
	}
	words, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, sqlError("reading keywords", err)
	}
	m := make(map[string]bool, len(words))
	for _, w := range words {
		m[w] = true
	}
	return m, nil
}
