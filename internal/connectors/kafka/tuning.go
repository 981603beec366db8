package kafka

import (
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ConsumerOptions are the consumer settings of the properties: isolation.level
// (read_committed unless read_uncommitted is asked for), fetch.max.bytes,
// max.partition.fetch.bytes.
func ConsumerOptions(p Properties) ([]kgo.Opt, error) {
	// A producer chooses how its batches compress: one that inflates far beyond its fetched
	// size (a compression bomb) stops the partition with an error instead of taking the
	// TaskManager's memory.
	opts := []kgo.Opt{kgo.MaxDecompressBatchBytes(MaxDecompressedBatch)}
	switch strings.ToLower(p[IsolationLevel]) {
	case "", "read_committed":
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	case "read_uncommitted":
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadUncommitted()))
	default:
		return nil, fmt.Errorf("properties.%s: %q: want read_committed or read_uncommitted", IsolationLevel, p[IsolationLevel])
	}
	for key, opt := range map[string]func(int32) kgo.ConsumerOpt{FetchMaxBytes: kgo.FetchMaxBytes, MaxPartitionFetch: kgo.FetchMaxPartitionBytes} {
		n, ok, err := p.Int(key)
		if err != nil {
			return nil, err
		}
		if ok {
			opts = append(opts, opt(int32(n))) // at most MaxFetchBytes
		}
	}
	return opts, nil
}

// ProducerOptions are the producer settings of the properties: compression.type.
func ProducerOptions(p Properties) ([]kgo.Opt, error) {
	var c kgo.CompressionCodec
	switch strings.ToLower(p[CompressionType]) {
	case "":
		return nil, nil
	case "none":
		c = kgo.NoCompression()
	case "gzip":
		c = kgo.GzipCompression()
	case "snappy":
		c = kgo.SnappyCompression()
	case "lz4":
		c = kgo.Lz4Compression()
	case "zstd":
		c = kgo.ZstdCompression()
	default:
		return nil, fmt.Errorf("properties.%s: %q: want none, gzip, snappy, lz4 or zstd", CompressionType, p[CompressionType])
	}
	return []kgo.Opt{kgo.ProducerBatchCompression(c)}, nil
}
