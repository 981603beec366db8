// Package postgres is the PostgreSQL sink (operator type `postgres`): rows written with COPY
// or, with a key, upserted with INSERT ... ON CONFLICT, over TLS, with a password (SCRAM) or
// Kerberos from the TaskManager's PostgresClient login context, none / at-least-once /
// exactly-once through PostgreSQL's two-phase commit (docs/connectors.md).
package postgres

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/internal/dataflow"
	"go.yaml.in/yaml/v3"
)

// Type is the operator type of the sink.
const Type = "postgres"

func init() {
	dataflow.Register(dataflow.OperatorType{Name: Type, New: func() dataflow.Definition { return new(Options) }})
}

// Delivery guarantees, Flink's names.
const (
	DeliveryNone        = "none"
	DeliveryAtLeastOnce = "at-least-once"
	DeliveryExactlyOnce = "exactly-once"
)

// MaxBufferRows bounds sink.buffer-flush.max-rows: the buffered rows are held in the
// TaskManager's memory, shared by the jobs it runs.
const MaxBufferRows = 100_000

// Options are the options of a postgres sink.
type Options struct {
	URL   URL     `yaml:"url"`
	Table string  `yaml:"table"`
	Key   Columns `yaml:"key"`
	// DeliveryGuarantee is none, at-least-once (the default) or exactly-once.
	DeliveryGuarantee string `yaml:"delivery-guarantee"`
	// MaxRows and Interval bound what is buffered before a write (Flink's JDBC sink's
	// sink.buffer-flush.max-rows, default 5000, and .interval, default 1s, checked when a
	// record arrives).
	MaxRows  int    `yaml:"sink.buffer-flush.max-rows"`
	Interval string `yaml:"sink.buffer-flush.interval"`

	schema, table string // from table, folded as PostgreSQL folds unquoted names
	interval      time.Duration
	columns       []string        // the input's fields, after Plan
	in            dataflow.Schema // the input's schema: nested fields are written as JSON
	keyIdx        []int           // the key's fields in columns
}

// URL is the sink's libpq connection string. It is shown (JSON, YAML, text, logs) with its
// password masked; only the task reads the real value.
type URL struct {
	raw string
	cs  connString
}

// UnmarshalYAML implements yaml.Unmarshaler: a string.
func (u *URL) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a libpq connection URL (postgresql://...) or key=value string", n.Line)
	}
	u.raw = n.Value
	return nil
}

// String is the connection string with its password masked.
func (u URL) String() string {
	if u.cs.settings == nil {
		if u.raw == "" {
			return ""
		}
		return "<unparsed connection string>"
	}
	return u.cs.String()
}

// GoString masks as String does.
func (u URL) GoString() string { return u.String() }

// MarshalText, MarshalJSON (through it) and MarshalYAML show the masked form.
func (u URL) MarshalText() ([]byte, error) { return []byte(u.String()), nil }

// MarshalYAML implements yaml.Marshaler.
func (u URL) MarshalYAML() (any, error) { return u.String(), nil }

// Columns is a list of column names, written as a list or a comma-separated string.
type Columns []string

// UnmarshalYAML implements yaml.Unmarshaler.
func (c *Columns) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		for _, s := range strings.Split(n.Value, ",") {
			*c = append(*c, strings.TrimSpace(s))
		}
	case yaml.SequenceNode:
		for _, e := range n.Content {
			if e.Kind != yaml.ScalarNode {
				return fmt.Errorf("line %d: want a column name", e.Line)
			}
			*c = append(*c, strings.TrimSpace(e.Value))
		}
	default:
		return fmt.Errorf("line %d: want a column name or a list of them", n.Line)
	}
	return nil
}

// Check implements dataflow.Definition.
func (o *Options) Check(op *dataflow.OperatorSpec) (dataflow.Shape, error) {
	if op.Input == "" {
		return dataflow.Shape{}, op.Errorf("input", "a postgres operator is a sink: name its input")
	}
	if o.URL.raw == "" {
		return dataflow.Shape{}, op.Errorf("url", "missing required option: a libpq connection URL (postgresql://USER@HOST:PORT/DB?sslmode=verify-full&sslrootcert=/path/ca.crt) or key=value string")
	}
	cs, err := parseConnString(o.URL.raw)
	if err != nil {
		return dataflow.Shape{}, op.Errorf("url", "%v", err)
	}
	o.URL.cs = cs
	for _, k := range []string{"sslrootcert", "sslcert", "sslkey"} {
		if p, ok := cs.settings[k]; ok && p != "system" && !filepath.IsAbs(p) {
			return dataflow.Shape{}, op.Errorf("url", "%s: %q is relative: use an absolute path (the TaskManager reads it, through the job's authorized files)", k, p)
		}
	}
	if p, ok := strings.CutPrefix(cs.settings["password"], "file:"); ok && !filepath.IsAbs(p) {
		return dataflow.Shape{}, op.Errorf("url", "password=file:%s: the path is relative: use an absolute path (the TaskManager reads it, through the job's authorized files)", p)
	}
	if o.Table == "" {
		return dataflow.Shape{}, op.Errorf("table", "missing required option: the table to write, [SCHEMA.]TABLE (it must exist)")
	}
	if o.schema, o.table, err = parseTableName(o.Table); err != nil {
		return dataflow.Shape{}, op.Errorf("table", "%v", err)
	}
	for _, k := range o.Key {
		if k == "" {
			return dataflow.Shape{}, op.Errorf("key", "empty column name")
		}
	}
	switch o.DeliveryGuarantee {
	case "":
		o.DeliveryGuarantee = DeliveryAtLeastOnce
	case DeliveryNone, DeliveryAtLeastOnce, DeliveryExactlyOnce:
	default:
		return dataflow.Shape{}, op.Errorf("delivery-guarantee", "%q: want none, at-least-once or exactly-once", o.DeliveryGuarantee)
	}
	if o.MaxRows < 0 || o.MaxRows > MaxBufferRows {
		return dataflow.Shape{}, op.Errorf("sink.buffer-flush.max-rows", "%d: want 0 (the default, 5000) to %d rows: the rows wait in the TaskManager's memory", o.MaxRows, MaxBufferRows)
	}
	if o.MaxRows == 0 {
		o.MaxRows = 5000
	}
	o.interval = time.Second // Flink's JDBC sink's default
	if o.Interval != "" {
		if o.interval, err = time.ParseDuration(o.Interval); err != nil || o.interval < 0 {
			return dataflow.Shape{}, op.Errorf("sink.buffer-flush.interval", "%q: want a duration such as 1s (0: rows only)", o.Interval)
		}
	}
	return dataflow.Shape{Inputs: 1, Sink: true}, nil
}

// Plan implements dataflow.Definition: every field of the input is a column of the table.
func (o *Options) Plan(pc *dataflow.PlanContext) (dataflow.Schema, error) {
	in := pc.Inputs[0]
	o.columns, o.in = in.Names(), in
	o.keyIdx = o.keyIdx[:0]
	for _, k := range o.Key {
		i := slices.Index(o.columns, k)
		if i < 0 {
			return nil, pc.Op.Errorf("key", "%q is not a field of the input (fields: %s)", k, strings.Join(o.columns, ", "))
		}
		o.keyIdx = append(o.keyIdx, i)
	}
	return nil, nil
}

// Resource is the table as the authorizer names it: postgres:table/DB.SCHEMA.TABLE.
func (o *Options) Resource() string {
	return "table/" + o.URL.cs.settings["dbname"] + "." + o.schema + "." + o.table
}

// Access implements dataflow.Definition: the sink writes its table, and reads the files its
// url names (a password file, certificates), each authorized like any file a job reads.
func (o *Options) Access(*dataflow.OperatorSpec) []dataflow.Access {
	out := []dataflow.Access{{Scheme: "postgres", Target: o.Resource(), Write: true}}
	for _, p := range o.files() {
		out = append(out, dataflow.Access{Scheme: "file", Target: p})
	}
	return out
}

// files lists the files the url names, which the task reads, each once (a certificate and
// its key may share a file).
func (o *Options) files() []string {
	var out []string
	add := func(p string) {
		if p = filepath.Clean(p); !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	set := o.URL.cs.settings
	if p, ok := strings.CutPrefix(set["password"], "file:"); ok {
		add(p)
	}
	for _, k := range []string{"sslrootcert", "sslcert", "sslkey"} {
		if p := set[k]; p != "" && p != "system" && !(k != "sslrootcert" && set["sslcertmode"] == "disable") {
			add(p)
		}
	}
	return out
}

// NewOperator implements dataflow.Definition.
func (o *Options) NewOperator() dataflow.Operator {
	return &sink{opts: o}
}

// parseTableName splits [SCHEMA.]TABLE, folding unquoted names to lower case and keeping
// double-quoted ones as written, as PostgreSQL reads them; the schema defaults to public.
func parseTableName(s string) (schema, table string, err error) {
	var parts []string
	for rest := strings.TrimSpace(s); ; {
		var part string
		if strings.HasPrefix(rest, `"`) {
			end := 1
			var b strings.Builder
			for ; end < len(rest); end++ {
				if rest[end] == '"' {
					if end+1 < len(rest) && rest[end+1] == '"' {
						b.WriteByte('"')
						end++
						continue
					}
					break
				}
				b.WriteByte(rest[end])
			}
			if end >= len(rest) {
				return "", "", fmt.Errorf("%q: unterminated quoted name", s)
			}
			part, rest = b.String(), rest[end+1:]
		} else {
			i := strings.IndexByte(rest, '.')
			if i < 0 {
				i = len(rest)
			}
			part, rest = strings.ToLower(rest[:i]), rest[i:]
			if part == "" || strings.ContainsAny(part, " \t\"") {
				return "", "", fmt.Errorf("%q: want [SCHEMA.]TABLE (quote names with spaces or capitals in double quotes)", s)
			}
		}
		if part == "" {
			return "", "", fmt.Errorf("%q: empty name", s)
		}
		parts = append(parts, part)
		if rest == "" {
			break
		}
		if rest[0] != '.' {
			return "", "", fmt.Errorf("%q: want [SCHEMA.]TABLE", s)
		}
		rest = rest[1:]
	}
	switch len(parts) {
	case 1:
		return "public", parts[0], nil
	case 2:
		return parts[0], parts[1], nil
	}
	return "", "", fmt.Errorf("%q: want [SCHEMA.]TABLE (the database is the url's dbname)", s)
}
