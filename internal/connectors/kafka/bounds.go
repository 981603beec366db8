package kafka

import (
	"fmt"
	"strconv"
	"time"
)

// Bounds of the numeric properties a job sets. A job names them, and a TaskManager runs
// many jobs: a fetch size is memory the TaskManager allocates per partition and per
// request, and a timeout past the broker's maximum, or past what a time.Duration holds,
// would only fail later and less clearly.
const (
	// MaxFetchBytes bounds fetch.max.bytes and max.partition.fetch.bytes: franz-go's
	// limit on what it reads from a broker in one response (BrokerMaxReadBytes, 100 MiB).
	MaxFetchBytes = 100 << 20
	// MaxDecompressedBatch bounds what one fetched record batch may decompress to (franz-go's
	// default is 1 GiB): Kafka's batches are about 1 MiB compressed (message.max.bytes), so
	// this leaves room for a compression ratio of 256.
	MaxDecompressedBatch = 256 << 20
	// MaxTransactionTimeout is Kafka's default transaction.max.timeout.ms (15 minutes): a
	// broker refuses a longer transaction.timeout.ms.
	MaxTransactionTimeout = 15 * time.Minute
	// MaxRequestTimeout bounds request.timeout.ms (10 minutes).
	MaxRequestTimeout = 10 * time.Minute
	// MaxLinger bounds linger.ms (1 minute): records wait that long in memory.
	MaxLinger = time.Minute
)

// bounded are the numeric properties with their least and greatest values.
var bounded = []struct {
	key      string
	min, max int64
	want     string
}{
	{FetchMaxBytes, 1, MaxFetchBytes, "bytes"},
	{MaxPartitionFetch, 1, MaxFetchBytes, "bytes"},
	{TransactionTimeoutMS, 1, MaxTransactionTimeout.Milliseconds(), "milliseconds"},
	{RequestTimeoutMS, 1, MaxRequestTimeout.Milliseconds(), "milliseconds"},
	{LingerMS, 0, MaxLinger.Milliseconds(), "milliseconds"},
}

// Int returns the numeric property key (false when it is not set), checked against its
// bounds: the error names the property and its range.
func (p Properties) Int(key string) (int64, bool, error) {
	v, ok := p[key]
	if !ok || v == "" {
		return 0, false, nil
	}
	for _, b := range bounded {
		if b.key != key {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < b.min || n > b.max {
			return 0, false, fmt.Errorf("properties.%s: %q: want a whole number of %s from %d to %d", key, v, b.want, b.min, b.max)
		}
		return n, true, nil
	}
	return 0, false, fmt.Errorf("properties.%s is not a numeric property", key)
}

// Millis is the time property key (a number of milliseconds); false when it is not set.
func (p Properties) Millis(key string) (time.Duration, bool, error) {
	n, ok, err := p.Int(key)
	return time.Duration(n) * time.Millisecond, ok, err
}

// checkBounds checks every numeric property that is set.
func (p Properties) checkBounds() error {
	for _, b := range bounded {
		if _, _, err := p.Int(b.key); err != nil {
			return err
		}
	}
	return nil
}
