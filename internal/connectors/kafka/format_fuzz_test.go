package kafka

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/dataflow"
	"github.com/twmb/franz-go/pkg/kgo"
)

// kafkaFuzzOptions are planned source options for a value in format and key in keyFormat,
// with two headers and every metadata field, as Plan makes them.
func kafkaFuzzOptions(format, keyFormat string) *Options {
	k := &Options{Format: format, KeyFormat: keyFormat, KeyFields: []string{"k1", "k2"},
		Headers: []string{"trace", "h2"}, Metadata: kafkaMetadata}
	var s dataflow.Schema
	switch format {
	case "raw":
		s = dataflow.Schema{{Name: "value", Kind: dataflow.KindString}}
	case "json":
		s = dataflow.Schema{{Name: "id", Kind: dataflow.KindAny}, {Name: "word", Kind: dataflow.KindAny},
			{Name: "nested", Kind: dataflow.KindStruct, Fields: dataflow.Schema{{Name: "a", Kind: dataflow.KindAny}}}}
	case "csv":
		s = dataflow.Schema{{Name: "a", Kind: dataflow.KindString}, {Name: "b", Kind: dataflow.KindString}}
	}
	k.valueN = len(s)
	if keyFormat == "raw" {
		k.KeyFields = k.KeyFields[:1]
	}
	for _, f := range k.KeyFields {
		s = append(s, dataflow.Field{Name: f, Kind: dataflow.KindAny})
	}
	for _, h := range k.Headers {
		s = append(s, dataflow.Field{Name: h, Kind: dataflow.KindString})
	}
	for _, m := range k.Metadata {
		s = append(s, dataflow.Field{Name: m, Kind: dataflow.KindInt})
	}
	k.schema = s
	return k
}

var kafkaFuzzFormats = []string{"json", "raw", "csv"}

// FuzzKafkaRecord decodes records a hostile producer may write, value and key in each
// format, with headers: a record either fills every field (a raw value and the headers
// byte for byte, the metadata as the record has them) or is an error naming its topic,
// partition, offset and whether the value or the key is at fault; never a panic.
func FuzzKafkaRecord(f *testing.F) {
	for _, seed := range []struct {
		format, key uint8
		value, k    string
		hkey        string
		h1, h2      string
	}{
		{0, 0, `{"id":7,"word":"a \"b\"","nested":{"a":[1,2]}}`, `{"k1":1,"k2":"x"}`, "trace", "t-1", "t-2"},
		{0, 2, `null`, `1,2`, "h2", "", "\xff\x00"},
		{1, 1, "plain bytes \xff\xfe", "key", "trace", "a", "b"},
		{2, 2, "x,\"y,z\"\r\n", "1,\"2\"", "trace", "", ""},
		{2, 0, "a,b\nc,d", `{"k1":null}`, "h2", "", ""},
		{2, 2, `"unterminated`, ``, "", "", ""},
		{0, 0, `{"id":`, `[]`, "trace", "", ""},
		{0, 0, `{"nested":{"nested":{"a":1}}}`, ``, "trace", "", ""},
		{0, 0, strings.Repeat("[", 5000), ``, "", "", ""},
		{1, 1, "", "", "", "", ""},
	} {
		f.Add(seed.format, seed.key, []byte(seed.value), []byte(seed.k), seed.hkey, []byte(seed.h1), []byte(seed.h2))
	}
	f.Fuzz(func(t *testing.T, format, keyFormat uint8, value, key []byte, hkey string, h1, h2 []byte) {
		k := kafkaFuzzOptions(kafkaFuzzFormats[int(format)%3], kafkaFuzzFormats[int(keyFormat)%3])
		r := &kgo.Record{Topic: "orders", Partition: 3, Offset: 1234567, Value: value, Key: key,
			Timestamp: time.UnixMilli(1700000000123),
			Headers:   []kgo.RecordHeader{{Key: hkey, Value: h1}, {Key: "trace", Value: h2}}}
		rec := make(dataflow.Record, len(k.schema))
		unfilled := dataflow.String("\x00unfilled")
		for j := range rec {
			rec[j] = unfilled
		}
		err := kafkaFill(k, r, rec)
		if err != nil {
			msg := err.Error()
			if !strings.Contains(msg, "topic orders partition 3 offset 1234567: ") ||
				!(strings.Contains(msg, k.Format+" value: ") || strings.Contains(msg, k.KeyFormat+" key: ")) {
				t.Fatalf("error does not name the record and the field: %v", err)
			}
			return
		}
		// A CSV value or key read as one record is all of it: nothing after a line break lost.
		for _, part := range []struct {
			format string
			b      []byte
		}{{k.Format, value}, {k.KeyFormat, key}} {
			if part.format != "csv" {
				continue
			}
			// Trailing line breaks end the record; they are not data.
			r := csv.NewReader(bytes.NewReader(bytes.TrimRight(part.b, "\r\n")))
			r.FieldsPerRecord = -1
			if all, err := r.ReadAll(); err == nil && len(all) > 1 {
				t.Fatalf("CSV %q holds %d records and decoded as one", part.b, len(all))
			}
		}
		if k.Format == "raw" {
			if value == nil && rec[0].Kind() != dataflow.KindNull || value != nil && rec[0].Text() != string(value) {
				t.Fatalf("raw value %q decoded as %v", value, rec[0])
			}
		}
		i := k.valueN + len(k.KeyFields)
		wantH2 := []byte(nil)
		if hkey == "h2" {
			wantH2 = h1
		}
		if got := rec[i].Text(); got != string(h2) { // "trace": the last one
			t.Fatalf("header trace: %q, want %q", got, h2)
		}
		if wantH2 == nil && rec[i+1].Kind() != dataflow.KindNull || wantH2 != nil && !bytes.Equal([]byte(rec[i+1].Text()), wantH2) {
			t.Fatalf("header h2: %v, want %q", rec[i+1], wantH2)
		}
		meta := rec[i+2:]
		if meta[0].Text() != "orders" || meta[1].Text() != "3" || meta[2].Text() != "1234567" || meta[3].Text() != "1700000000123" {
			t.Fatalf("metadata: %v", meta)
		}
		for j, v := range rec {
			if v.Kind() == dataflow.KindString && v.Text() == unfilled.Text() {
				t.Fatalf("field %s not filled", k.schema[j].Name)
			}
		}
	})
}
