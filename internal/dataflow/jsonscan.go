package dataflow

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unsafe"
)

// A JSON line is checked by encoding/json's scanner (json.Valid), then read in place: keys
// are matched against the schema without building a map, values of fields the schema lacks
// are skipped, and a string without escapes becomes a value without unescaping. What it
// yields is what decoding into map[string]json.RawMessage and converting each value gave
// before (jsonValue), an order of magnitude faster; FuzzJSONLine holds
// the two to the same results.

// scanJSONObject reads the object starting at data[i] (after whitespace) into rec, fields
// by s; it returns the offset after the object. data is valid JSON.
func scanJSONObject(data []byte, i int, s Schema, rec Record, depth int) (int, error) {
	for k := range rec {
		rec[k] = Value{}
	}
	// Nested objects are read once the object is, from the last occurrence of their key
	// (as a map keeps the last of duplicate keys): an earlier one may be anything.
	var stack [16][]byte
	nestedRaw := stack[:0]
	if len(s) > len(stack) {
		nestedRaw = make([][]byte, 0, len(s))
	}
	nestedRaw = nestedRaw[:len(s)]
	i = skipSpace(data, i) + 1 // '{'
	for {
		i = skipSpace(data, i)
		if data[i] == '}' {
			break
		}
		if data[i] == ',' {
			i = skipSpace(data, i+1)
		}
		keyStart := i
		i = skipString(data, i)
		key, err := jsonString(data[keyStart:i])
		if err != nil {
			return 0, err
		}
		i = skipSpace(data, i) + 1 // ':'
		i = skipSpace(data, i)
		valStart := i
		i = skipJSONValue(data, i)
		j := s.Index(key)
		if j < 0 {
			continue
		}
		raw := data[valStart:i]
		if s[j].Kind != KindStruct {
			rec[j] = scanJSONLeaf(raw)
			continue
		}
		nestedRaw[j] = raw
	}
	for j, raw := range nestedRaw {
		if raw == nil {
			continue
		}
		f := s[j]
		switch raw[0] {
		case 'n':
			rec[j] = Null()
		case '{':
			if depth >= maxNesting {
				return 0, fmt.Errorf("%s: nested deeper than %d", f.Name, maxNesting)
			}
			nested := make(Record, len(f.Fields))
			if _, err := scanJSONObject(raw, 0, f.Fields, nested, depth+1); err != nil {
				return 0, fmt.Errorf("%s.%w", f.Name, err)
			}
			rec[j] = Struct(nested)
		default:
			return 0, fmt.Errorf("%s: want a JSON object or null, got %.40s", f.Name, raw)
		}
	}
	return i + 1, nil
}

// scanJSONLeaf converts one valid JSON value as jsonValue does.
func scanJSONLeaf(raw []byte) Value {
	switch raw[0] {
	case 'n':
		return Null()
	case 't':
		return Bool(true)
	case 'f':
		return Bool(false)
	case '"':
		s, err := jsonString(raw)
		if err != nil {
			return String(string(raw))
		}
		return String(s)
	case '{', '[':
		return String(string(raw))
	}
	text := unsafe.String(&raw[0], len(raw))
	if i, err := strconv.ParseInt(text, 10, 64); err == nil {
		return Int(i)
	}
	f, _ := strconv.ParseFloat(text, 64)
	return Float(f)
}

// jsonString unquotes a valid JSON string token: directly when it has no escapes and is
// printable ASCII, else through encoding/json (escapes, surrogates, invalid UTF-8).
func jsonString(tok []byte) (string, error) {
	inner := tok[1 : len(tok)-1]
	for _, c := range inner {
		if c == '\\' || c >= 0x80 {
			var s string
			if err := json.Unmarshal(tok, &s); err != nil {
				return "", err
			}
			return s, nil
		}
	}
	return string(inner), nil
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the offset after the string token at data[i].
func skipString(data []byte, i int) int {
	for i++; i < len(data); i++ {
		switch data[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

// skipJSONValue returns the offset after the valid JSON value at data[i].
func skipJSONValue(data []byte, i int) int {
	switch data[i] {
	case '"':
		return skipString(data, i)
	case '{', '[':
		depth := 0
		for ; i < len(data); i++ {
			switch data[i] {
			case '"':
				i = skipString(data, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return i
	}
	for i < len(data) {
		switch data[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
		i++
	}
	return i
}
