package dataflow

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// JSON lines: the file sink's json format writes one object per record, nested objects as
// JSON objects, and the file source's json format reads nested objects into struct fields
// listed as paths (fields: [event_type, bid.price]).

// AppendJSONRecord appends r as one JSON object with the schema's field names, without a
// newline. A struct field is a nested object (null when the value is null).
func AppendJSONRecord(dst []byte, s Schema, r Record) []byte {
	dst = append(dst, '{')
	for i, v := range r {
		if i > 0 {
			dst = append(dst, ',')
		}
		var f Field
		if i < len(s) {
			f = s[i]
		} else {
			f = Field{Name: "f" + strconv.Itoa(i), Kind: KindAny}
		}
		dst = appendJSONString(dst, f.Name)
		dst = append(dst, ':')
		dst = appendJSONValue(dst, f, v)
	}
	return append(dst, '}')
}

func appendJSONValue(dst []byte, f Field, v Value) []byte {
	switch v.kind {
	case KindNull:
		return append(dst, "null"...)
	case KindBool:
		return strconv.AppendBool(dst, v.n != 0)
	case KindInt:
		return strconv.AppendInt(dst, int64(v.n), 10)
	case KindFloat:
		x := math.Float64frombits(v.n)
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return append(dst, "null"...) // JSON has no spelling for them
		}
		return appendJSON(dst, x)
	case KindString:
		return appendJSONString(dst, v.s)
	case KindStruct:
		return appendJSONStruct(dst, f.Fields, v.s)
	}
	return appendJSON(dst, v.native())
}

// appendJSONStruct writes the encoded nested record enc as an object, reading its values in
// place rather than decoding them into a record.
func appendJSONStruct(dst []byte, s Schema, enc string) []byte {
	if len(enc) == 0 {
		return append(dst, '{', '}')
	}
	b := bytesOf(enc)
	n, off := binary.Uvarint(b)
	if off <= 0 {
		return append(dst, "null"...)
	}
	dst = append(dst, '{')
	for i := range int(n) {
		v, err := valueAt(b, off)
		if err != nil {
			break
		}
		off, _ = skipShallow(b, off)
		if i > 0 {
			dst = append(dst, ',')
		}
		var f Field
		if i < len(s) {
			f = s[i]
		} else {
			f = Field{Name: "f" + strconv.Itoa(i), Kind: KindAny}
		}
		dst = appendJSONString(dst, f.Name)
		dst = append(dst, ':')
		dst = appendJSONValue(dst, f, v)
	}
	return append(dst, '}')
}

// appendJSONString quotes s as JSON: control characters, quotes and backslashes escaped,
// invalid UTF-8 replaced by U+FFFD (as encoding/json does), without allocating.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, "\\ufffd"...)
			i += size
			start = i
			continue
		}
		// U+2028 and U+2029 end lines in JavaScript; encoding/json escapes them too.
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&15])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// JSONSchema builds the schema of a json source from its fields option: a name is a field,
// a path (bid.price) a field of a nested object, the object a struct field whose fields are
// listed in the order they first appear. Leaves are of kind any: JSON says the kind of each
// value.
func JSONSchema(op *OperatorSpec, fields []string) (Schema, error) {
	var s Schema
	for _, path := range fields {
		parts := strings.Split(path, ".")
		for _, p := range parts {
			if err := CheckFieldName(op, "fields", p); err != nil {
				return nil, err
			}
		}
		cur := &s
		for i, name := range parts {
			j := cur.Index(name)
			last := i == len(parts)-1
			switch {
			case j < 0 && last:
				*cur = append(*cur, Field{Name: name, Kind: KindAny})
			case j < 0:
				*cur = append(*cur, Field{Name: name, Kind: KindStruct})
				j = len(*cur) - 1
			case last || (*cur)[j].Kind != KindStruct:
				return nil, op.errf("fields", "%q is listed twice, or both as a field and as a nested object", path)
			}
			if !last {
				cur = &(*cur)[j].Fields
			}
		}
	}
	return s, nil
}

// ParseJSONObject reads one JSON object into rec (len(rec) == len(s)): each field from the
// key of its name, a struct field from a nested object (null when the key is missing or
// null), leaves as jsonValue converts them. A line that is null gives nulls.
func ParseJSONObject(data []byte, s Schema, rec Record) error {
	if !json.Valid(data) {
		var obj map[string]json.RawMessage
		err := json.Unmarshal(data, &obj) // for encoding/json's description of the error
		return fmt.Errorf("want one JSON object per line: %w", err)
	}
	i := skipSpace(data, 0)
	switch data[i] {
	case '{':
		_, err := scanJSONObject(data, i, s, rec, 0)
		return err
	case 'n':
		for k := range rec {
			rec[k] = Null()
		}
		return nil
	}
	var obj map[string]json.RawMessage
	return fmt.Errorf("want one JSON object per line: %w", json.Unmarshal(data, &obj))
}

// parseJSONObjectMap is ParseJSONObject through encoding/json's map decoding: the
// reference the fuzz target holds the scanner to.
func parseJSONObjectMap(data []byte, s Schema, rec Record) error {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		return fmt.Errorf("want one JSON object per line: %w", err)
	}
	return fillJSON(obj, s, rec, 0)
}

func fillJSON(obj map[string]json.RawMessage, s Schema, rec Record, depth int) error {
	for i, f := range s {
		raw := obj[f.Name]
		if f.Kind != KindStruct {
			rec[i] = jsonValue(raw)
			continue
		}
		if len(raw) == 0 || string(raw) == "null" {
			rec[i] = Null()
			continue
		}
		if depth >= maxNesting {
			return fmt.Errorf("%s: nested deeper than %d", f.Name, maxNesting)
		}
		var inner map[string]json.RawMessage
		if err := json.Unmarshal(raw, &inner); err != nil || inner == nil {
			return fmt.Errorf("%s: want a JSON object or null, got %.40s", f.Name, raw)
		}
		nested := make(Record, len(f.Fields))
		if err := fillJSON(inner, f.Fields, nested, depth+1); err != nil {
			return fmt.Errorf("%s.%w", f.Name, err)
		}
		rec[i] = Struct(nested)
	}
	return nil
}
