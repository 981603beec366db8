package kafka

import (
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/dataflow"
)

func TestKafkaFormats(t *testing.T) {
	s := dataflow.Schema{{Name: "id", Kind: dataflow.KindAny}, {Name: "word", Kind: dataflow.KindAny}}
	for _, tc := range []struct {
		format, encoded string
		rec             dataflow.Record
		idx             []int
	}{
		{"json", `{"id":7,"word":"a \"b\""}`, dataflow.Record{dataflow.Int(7), dataflow.String(`a "b"`)}, nil},
		{"csv", `7,"a,b"`, dataflow.Record{dataflow.String("7"), dataflow.String("a,b")}, nil},
		{"raw", `a b`, dataflow.Record{dataflow.String("a b")}, nil},
		{"json", `{"word":"x"}`, dataflow.Record{dataflow.Int(1), dataflow.String("x")}, []int{1}},
	} {
		got := string(appendKafkaValue(nil, tc.format, s, tc.rec, tc.idx))
		if got != tc.encoded {
			t.Errorf("%s encode %v: %q, want %q", tc.format, tc.rec, got, tc.encoded)
		}
		if tc.idx != nil {
			continue
		}
		fields := s[:len(tc.rec)]
		dec := make(dataflow.Record, len(fields))
		if err := decodeKafkaValue(tc.format, []byte(tc.encoded), fields, dec); err != nil {
			t.Fatalf("%s decode %q: %v", tc.format, tc.encoded, err)
		}
		if dec.String() != tc.rec.String() {
			t.Errorf("%s decode %q: %v, want %v", tc.format, tc.encoded, dec, tc.rec)
		}
	}
	// A missing key or value is null, never an error; a malformed JSON value is one.
	dec := make(dataflow.Record, 1)
	if err := decodeKafkaValue("raw", nil, s[:1], dec); err != nil || dec[0].Kind() != dataflow.KindNull {
		t.Errorf("raw nil: %v %v", dec, err)
	}
	if err := decodeKafkaValue("json", []byte(`{"id":`), s, make(dataflow.Record, 2)); err == nil {
		t.Error("a malformed JSON value decoded")
	}
	// A CSV value holding two records is refused, not cut to its first line (the second
	// would be lost); a line break inside quotes is a field's.
	if err := decodeKafkaValue("csv", []byte("1,a\n2,b"), s, make(dataflow.Record, 2)); err == nil || !strings.Contains(err.Error(), "more than one CSV record") {
		t.Errorf("a CSV value of two records: %v", err)
	}
	dec = make(dataflow.Record, 2)
	if err := decodeKafkaValue("csv", []byte("1,\"a\nb\"\r\n"), s, dec); err != nil || dec[1].Text() != "a\nb" {
		t.Errorf("a quoted line break: %v %v", dec, err)
	}
}
