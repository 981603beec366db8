package kafka

import (
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"strings"
	"unsafe"

	"github.com/sluice-dev/sluice/internal/dataflow"
)

// decodeKafkaValue fills rec (the fields of s) from a Kafka value or key in format.
func decodeKafkaValue(format string, b []byte, s dataflow.Schema, rec dataflow.Record) error {
	switch format {
	case "raw":
		if b == nil {
			rec[0] = dataflow.Null()
		} else {
			// No copy: the value aliases the fetched batch, as a decoded record aliases its
			// network buffer (DecodeRecord): the client never reuses fetch buffers (no pool
			// is configured), and an operator keeping a value clones it (Operator.Process).
			rec[0] = dataflow.String(unsafe.String(unsafe.SliceData(b), len(b)))
		}
		return nil
	case "csv":
		if len(b) == 0 {
			for i := range rec {
				rec[i] = dataflow.Null()
			}
			return nil
		}
		cols, err := parseCSVRecord(string(b))
		if err != nil {
			return err
		}
		for i := range rec {
			if i < len(cols) {
				rec[i] = dataflow.String(cols[i])
			} else {
				rec[i] = dataflow.Null()
			}
		}
		return nil
	}
	if len(bytes.TrimSpace(b)) == 0 {
		for i := range rec {
			rec[i] = dataflow.Null()
		}
		return nil
	}
	return dataflow.ParseJSONObject(b, s, rec)
}

// parseCSVRecord parses one Kafka value as one CSV record. A value holding more (a line
// break outside quotes) is an error rather than its first line: the rest would be lost.
func parseCSVRecord(v string) ([]string, error) {
	r := csv.NewReader(strings.NewReader(strings.TrimRight(v, "\r\n")))
	r.FieldsPerRecord = -1
	cols, err := r.Read()
	if err != nil {
		return nil, err
	}
	if _, err := r.Read(); err != io.EOF {
		return nil, errors.New("holds more than one CSV record (a line break outside double quotes): write one record per Kafka record, or quote the field")
	}
	return cols, nil
}

// appendKafkaValue encodes the fields idx of r (all when idx is nil) in format.
func appendKafkaValue(dst []byte, format string, s dataflow.Schema, r dataflow.Record, idx []int) []byte {
	if idx != nil {
		sub := make(dataflow.Schema, len(idx))
		vals := make(dataflow.Record, len(idx))
		for i, j := range idx {
			sub[i], vals[i] = s[j], r[j]
		}
		s, r = sub, vals
	}
	switch format {
	case "raw":
		if len(r) == 0 || r[0].Kind() == dataflow.KindNull {
			return dst
		}
		return append(dst, r[0].Text()...)
	case "csv":
		cols := make([]string, len(r))
		for i, v := range r {
			if v.Kind() != dataflow.KindNull {
				cols[i] = v.Text()
			}
		}
		var buf bytes.Buffer
		w := csv.NewWriter(&buf)
		_ = w.Write(cols)
		w.Flush()
		return append(dst, bytes.TrimRight(buf.Bytes(), "\n")...)
	}
	return dataflow.AppendJSONRecord(dst, s, r)
}
