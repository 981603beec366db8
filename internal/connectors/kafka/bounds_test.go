package kafka

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Numeric properties have bounds; a value past one is refused at Check with the property
// and its range, and an accepted one reads back as given.
func TestPropertyBounds(t *testing.T) {
	for key, bad := range map[string][]string{
		FetchMaxBytes:        {"0", "-1", "104857601", "2147483647", "1e6", "x"},
		MaxPartitionFetch:    {"0", "104857601"},
		TransactionTimeoutMS: {"0", "900001", "9223372036854775807"},
		RequestTimeoutMS:     {"0", "600001"},
		LingerMS:             {"-1", "60001", "99999999999999999999"},
	} {
		for _, v := range bad {
			_, err := Properties{BootstrapServers: "b:1", key: v}.Check()
			if err == nil || !strings.HasPrefix(err.Error(), "properties."+key+": ") || !strings.Contains(err.Error(), " to ") {
				t.Errorf("%s=%s: %v, want a refusal naming the property and its range", key, v, err)
			}
		}
	}
	p := Properties{BootstrapServers: "b:1", FetchMaxBytes: "104857600", TransactionTimeoutMS: "900000", LingerMS: "0"}
	if _, err := p.Check(); err != nil {
		t.Fatal(err)
	}
	if n, ok, err := p.Int(FetchMaxBytes); n != MaxFetchBytes || !ok || err != nil {
		t.Errorf("fetch.max.bytes: %d %v %v", n, ok, err)
	}
	if d, ok, err := p.Millis(TransactionTimeoutMS); d != 15*time.Minute || !ok || err != nil {
		t.Errorf("transaction.timeout.ms: %v %v %v", d, ok, err)
	}
	if _, ok, err := p.Millis(RequestTimeoutMS); ok || err != nil {
		t.Errorf("request.timeout.ms unset: %v %v", ok, err)
	}
}

// A JAAS string broken around a password (a space in an unquoted value, the module left
// out) is refused without showing any piece of it; quoted values read back exactly.
func TestJAASErrorsHidePassword(t *testing.T) {
	for _, s := range []string{
		ModulePlain + ` required username="u" password=Zq9 Wx7secret;`,
		`password="Zq9Wx7secret" username="u";`,
		`password=Zq9Wx7secret ` + ModulePlain + ` required`,
		ModuleSCRAM + ` required username="u" password=Zq9 Wx7secret=1 x`,
	} {
		_, err := ParseJAAS(s)
		if err == nil || strings.Contains(err.Error(), "Wx7secret") || strings.Contains(err.Error(), "Zq9") {
			t.Errorf("ParseJAAS(%q): %v, want an error that does not show the password", s, err)
		}
	}
	if _, err := ParseJAAS(ModuleSCRAM + ` required username="u" password`); err == nil || !strings.Contains(err.Error(), `option password: want password="value"`) {
		t.Errorf("a known option without a value: %v", err)
	}
	for raw, want := range map[string]string{`"a\"b"`: `a"b`, `"a\\b"`: `a\b`, `"a\\\"b"`: `a\"b`, `"a\\\\"`: `a\\`, `"a\nb"`: `a\nb`} {
		j, err := ParseJAAS(ModulePlain + ` required username="u" password=` + raw + `;`)
		if err != nil || j.Password != want {
			t.Errorf("password=%s: %q %v, want %q", raw, j.Password, err, want)
		}
	}
}

// The consumer's fetch sizes are the properties', and a fetched batch may decompress to at
// most MaxDecompressedBatch.
func TestConsumerOptionsBounded(t *testing.T) {
	opts, err := ConsumerOptions(Properties{FetchMaxBytes: "1048576"})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(append(opts, kgo.SeedBrokers("127.0.0.1:1"))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if v := cl.OptValue(kgo.MaxDecompressBatchBytes); v != MaxDecompressedBatch {
		t.Errorf("MaxDecompressBatchBytes %v, want %d", v, MaxDecompressedBatch)
	}
	if v := cl.OptValue(kgo.FetchMaxBytes); v != int32(1048576) {
		t.Errorf("FetchMaxBytes %v", v)
	}
	if _, err := ConsumerOptions(Properties{MaxPartitionFetch: "2147483647"}); err == nil || !strings.Contains(err.Error(), "properties.max.partition.fetch.bytes") {
		t.Errorf("max.partition.fetch.bytes 2^31-1: %v", err)
	}
}
