package kafka

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/dataflow"
)

// Type is the operator type: a source without input (it reads topics) and a sink with one
// (it writes a topic). Its options are those of Flink's Kafka connector; `properties.*` go
// to the client under Kafka's own names (properties.go).
const Type = "kafka"

func init() {
	dataflow.Register(dataflow.OperatorType{Name: Type, New: func() dataflow.Definition { return &Options{Properties: Properties{}} }})
}

var (
	_ dataflow.PrefixedOptions      = (*Options)(nil)
	_ dataflow.OptionWarner         = (*Options)(nil)
	_ dataflow.TimestampingOperator = (*Options)(nil)
)

// Kafka's option values.
const (
	kafkaStartEarliest  = "earliest-offset"
	kafkaStartLatest    = "latest-offset"
	kafkaStartGroup     = "group-offsets"
	kafkaStartTimestamp = "timestamp"

	kafkaBoundedNone = "unbounded"

	// DefaultDiscoveryInterval is scan.topic-partition-discovery.interval's default, Flink's.
	DefaultDiscoveryInterval = 5 * time.Minute
	// MinDiscoveryInterval bounds how often a source may list the cluster's topics: every
	// subtask asks the brokers for metadata at each discovery.
	MinDiscoveryInterval = time.Second
	kafkaBoundedLatest   = "latest-offset"

	deliveryNone        = "none"
	deliveryAtLeastOnce = "at-least-once"
	deliveryExactlyOnce = "exactly-once"
)

// kafkaMetadata are the record metadata a source can add as fields (Flink's metadata
// columns).
var kafkaMetadata = []string{"topic", "partition", "offset", "timestamp"}

// Options are the options of a kafka source or sink.
type Options struct {
	Topic        Topics `yaml:"topic"`
	TopicPattern string `yaml:"topic-pattern"`
	// Properties are the `properties.*` options, by Kafka's names; masked when shown.
	Properties    Properties `yaml:"-" json:"properties"`
	StartupMode   string     `yaml:"scan.startup.mode"`
	StartupMillis int64      `yaml:"scan.startup.timestamp-millis"`
	BoundedMode   string     `yaml:"scan.bounded.mode"`
	// DiscoveryInterval is how often an unbounded source looks for partitions added to its
	// topics and topics newly matching topic-pattern (Flink's default: 5 minutes; 0 or
	// negative: never).
	DiscoveryInterval string   `yaml:"scan.topic-partition-discovery.interval"`
	Format            string   `yaml:"format"` // json, raw or csv
	Fields            []string `yaml:"fields" want:"a list of field names" elem:"a field name"`
	KeyFields         []string `yaml:"key.fields" want:"a list of field names" elem:"a field name"`
	KeyFormat         string   `yaml:"key.format"`
	Key               string   `yaml:"key" want:"a CEL expression"` // sink: the record key
	Headers           []string `yaml:"headers" want:"a list of header names" elem:"a header name"`
	Metadata          []string `yaml:"metadata" want:"a list of topic, partition, offset, timestamp" elem:"topic, partition, offset or timestamp"`
	Delivery          string   `yaml:"sink.delivery-guarantee"`
	TxnPrefix         string   `yaml:"sink.transactional-id-prefix"`

	sink      bool
	settings  *Settings
	discovery time.Duration // 0: no discovery
	pattern   *regexp.Regexp
	name      string // the operator's

	// After Plan.
	schema    dataflow.Schema // a source's output, a sink's input
	valueN    int             // a source: the first valueN fields come from the value
	keyIdx    []int           // a sink: key.fields in the input
	headerIdx []int           // a sink: headers in the input
	keyExpr   *dataflow.Expr
	valueIdx  int // a raw sink: the field written
}

// Topics is `topic:`, one name or a list.
type Topics []string

// UnmarshalYAML accepts a string, Flink's semicolon-separated list of topics in one string
// ('topic-1;topic-2'), or a YAML list of strings.
func (t *Topics) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*t = nil
		for _, name := range strings.Split(n.Value, ";") {
			if name = strings.TrimSpace(name); name != "" || !strings.Contains(n.Value, ";") {
				*t = append(*t, name)
			}
		}
		return nil
	case yaml.SequenceNode:
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return fmt.Errorf("line %d: want a topic name", c.Line)
			}
			*t = append(*t, c.Value)
		}
		return nil
	}
	return fmt.Errorf("line %d: want a topic name or a list of them", n.Line)
}

// OptionPrefix implements dataflow.PrefixedOptions.
func (k *Options) OptionPrefix() string { return "properties." }

// SetPrefixedOption implements dataflow.PrefixedOptions.
func (k *Options) SetPrefixedOption(name, value string) error {
	if _, dup := k.Properties[name]; dup {
		return fmt.Errorf("set twice")
	}
	k.Properties[name] = value
	return nil
}

// OptionWarnings implements dataflow.OptionWarner: properties this client does not understand.
func (k *Options) OptionWarnings(op *dataflow.OperatorSpec) []string {
	var out []string
	for _, p := range k.Properties.Unknown() {
		out = append(out, fmt.Sprintf("operator %q (kafka): properties.%s is not a Kafka client property this connector understands; it is ignored", op.Name, p))
	}
	return out
}

// StampsResults implements dataflow.TimestampingOperator: a source's records carry their Kafka
// timestamps as event time.
func (k *Options) StampsResults() {}

// Check implements dataflow.Definition.
func (k *Options) Check(op *dataflow.OperatorSpec) (dataflow.Shape, error) {
	k.sink, k.name = op.Input != "", op.Name
	s, err := k.Properties.Check()
	if err != nil {
		return dataflow.Shape{}, op.Errorf("properties", "%v", err)
	}
	k.settings = s
	switch {
	case len(k.Topic) == 0 && k.TopicPattern == "":
		return dataflow.Shape{}, op.Errorf("topic", "missing required option: the topic (or a list of topics, or topic-pattern)")
	case len(k.Topic) > 0 && k.TopicPattern != "":
		return dataflow.Shape{}, op.Errorf("topic-pattern", "give topic or topic-pattern, not both")
	}
	for _, t := range k.Topic {
		if !validTopic(t) {
			return dataflow.Shape{}, op.Errorf("topic", "%q is not a Kafka topic name (letters, digits, '.', '_', '-', at most 249)", t)
		}
	}
	if k.TopicPattern != "" {
		re, err := regexp.Compile("^(?:" + k.TopicPattern + ")$")
		if err != nil {
			return dataflow.Shape{}, op.Errorf("topic-pattern", "%v", err)
		}
		k.pattern = re
	}
	if k.Format == "" {
		return dataflow.Shape{}, op.Errorf("format", "missing required option: json, raw or csv")
	}
	if k.Format != "json" && k.Format != "raw" && k.Format != "csv" {
		return dataflow.Shape{}, op.Errorf("format", "unknown format %q: want json, raw or csv", k.Format)
	}
	switch k.KeyFormat {
	case "":
		k.KeyFormat = "raw"
		if len(k.KeyFields) > 1 {
			k.KeyFormat = "json"
		}
	case "raw", "json", "csv":
	default:
		return dataflow.Shape{}, op.Errorf("key.format", "unknown format %q: want raw, json or csv", k.KeyFormat)
	}
	if k.KeyFormat == "raw" && len(k.KeyFields) > 1 {
		return dataflow.Shape{}, op.Errorf("key.format", "raw holds one field and key.fields lists %d: use json or csv", len(k.KeyFields))
	}
	for _, h := range k.Headers {
		if h == "" {
			return dataflow.Shape{}, op.Errorf("headers", "an empty header name")
		}
	}
	if k.sink {
		return k.checkSink(op)
	}
	return k.checkSource(op)
}

func validTopic(t string) bool {
	if t == "" || len(t) > 249 || t == "." || t == ".." {
		return false
	}
	for _, c := range t {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func (k *Options) checkSource(op *dataflow.OperatorSpec) (dataflow.Shape, error) {
	for opt, set := range map[string]bool{"key": k.Key != "", "sink.delivery-guarantee": k.Delivery != "", "sink.transactional-id-prefix": k.TxnPrefix != ""} {
		if set {
			return dataflow.Shape{}, op.Errorf(opt, "only for kafka sinks (an operator with an input)")
		}
	}
	switch k.StartupMode {
	case "":
		k.StartupMode = kafkaStartGroup
		if k.Properties[GroupID] == "" {
			k.StartupMode = kafkaStartEarliest
		}
	case kafkaStartEarliest, kafkaStartLatest:
	case kafkaStartGroup:
		if k.Properties[GroupID] == "" {
			return dataflow.Shape{}, op.Errorf("scan.startup.mode", "group-offsets needs properties.group.id")
		}
	case kafkaStartTimestamp:
		if k.StartupMillis <= 0 {
			return dataflow.Shape{}, op.Errorf("scan.startup.timestamp-millis", "missing required option for scan.startup.mode timestamp: milliseconds since the epoch")
		}
	default:
		return dataflow.Shape{}, op.Errorf("scan.startup.mode", "unknown mode %q: want earliest-offset, latest-offset, group-offsets or timestamp", k.StartupMode)
	}
	if k.StartupMode != kafkaStartTimestamp && k.StartupMillis != 0 {
		return dataflow.Shape{}, op.Errorf("scan.startup.timestamp-millis", "only with scan.startup.mode: timestamp")
	}
	switch k.BoundedMode {
	case "", kafkaBoundedNone:
		k.BoundedMode = kafkaBoundedNone
	case kafkaBoundedLatest:
	default:
		return dataflow.Shape{}, op.Errorf("scan.bounded.mode", "unknown mode %q: want latest-offset (read up to the offsets at start and finish) or unbounded", k.BoundedMode)
	}
	switch k.Format {
	case "raw":
		if len(k.Fields) > 0 {
			return dataflow.Shape{}, op.Errorf("fields", "a raw source has the single field value")
		}
	default:
		if len(k.Fields) == 0 {
			return dataflow.Shape{}, op.Errorf("fields", "missing required option: list the %s fields of the record value", k.Format)
		}
	}
	for _, m := range k.Metadata {
		if !slices.Contains(kafkaMetadata, m) {
			return dataflow.Shape{}, op.Errorf("metadata", "unknown metadata %q: want %s", m, strings.Join(kafkaMetadata, ", "))
		}
	}
	if err := k.checkDiscovery(op); err != nil {
		return dataflow.Shape{}, err
	}
	return dataflow.Shape{Bounded: k.BoundedMode == kafkaBoundedLatest}, nil
}

// checkDiscovery sets the discovery interval: Flink's default for an unbounded source, none
// for a bounded one (it reads what it found at start, as Flink's bounded KafkaSource).
func (k *Options) checkDiscovery(op *dataflow.OperatorSpec) error {
	const opt = "scan.topic-partition-discovery.interval"
	k.discovery = DefaultDiscoveryInterval
	if k.DiscoveryInterval != "" {
		d, err := config.ParseDuration(k.DiscoveryInterval)
		if err != nil {
			return op.Errorf(opt, "%q: want a duration such as 5 min or 30 s (0 turns discovery off)", k.DiscoveryInterval)
		}
		if d > 0 && d < MinDiscoveryInterval {
			return op.Errorf(opt, "%s is below the minimum %s: each discovery asks the brokers for the metadata of the topics; set at least %s, or 0 to turn discovery off", d, MinDiscoveryInterval, MinDiscoveryInterval)
		}
		k.discovery = max(d, 0)
	}
	if k.BoundedMode == kafkaBoundedLatest {
		if k.DiscoveryInterval != "" && k.discovery > 0 {
			return op.Errorf(opt, "only for unbounded sources: with scan.bounded.mode latest-offset the source reads the partitions it finds at start; remove the option or set it to 0")
		}
		k.discovery = 0
	}
	return nil
}

func (k *Options) checkSink(op *dataflow.OperatorSpec) (dataflow.Shape, error) {
	for opt, set := range map[string]bool{"topic-pattern": k.TopicPattern != "", "scan.startup.mode": k.StartupMode != "",
		"scan.startup.timestamp-millis": k.StartupMillis != 0, "scan.bounded.mode": k.BoundedMode != "",
		"scan.topic-partition-discovery.interval": k.DiscoveryInterval != "", "fields": len(k.Fields) > 0,
		"metadata": len(k.Metadata) > 0} {
		if set {
			return dataflow.Shape{}, op.Errorf(opt, "only for kafka sources (an operator without input)")
		}
	}
	if len(k.Topic) != 1 {
		return dataflow.Shape{}, op.Errorf("topic", "a sink writes one topic, %d are listed", len(k.Topic))
	}
	if k.Key != "" && len(k.KeyFields) > 0 {
		return dataflow.Shape{}, op.Errorf("key", "give key (an expression) or key.fields, not both")
	}
	switch k.Delivery {
	case "":
		k.Delivery = deliveryAtLeastOnce
	case deliveryNone, deliveryAtLeastOnce, deliveryExactlyOnce:
	default:
		return dataflow.Shape{}, op.Errorf("sink.delivery-guarantee", "unknown guarantee %q: want none, at-least-once or exactly-once", k.Delivery)
	}
	if k.TxnPrefix != "" && k.Delivery != deliveryExactlyOnce {
		return dataflow.Shape{}, op.Errorf("sink.transactional-id-prefix", "only with sink.delivery-guarantee: exactly-once")
	}
	if k.TxnPrefix == "" && k.Delivery == deliveryExactlyOnce {
		// As Flink's KafkaSink: two jobs sharing transactional ids would fence each other.
		return dataflow.Shape{}, op.Errorf("sink.transactional-id-prefix", "missing required option for exactly-once: a prefix of the transactional ids, unique to this job and sink (it must stay the same across restarts)")
	}
	return dataflow.Shape{Inputs: 1, Sink: true}, nil
}

// Plan implements dataflow.Definition.
func (k *Options) Plan(pc *dataflow.PlanContext) (dataflow.Schema, error) {
	o := pc.Op
	if k.sink {
		return nil, k.planSink(pc)
	}
	var s dataflow.Schema
	switch k.Format {
	case "raw":
		s = dataflow.Schema{{Name: "value", Kind: dataflow.KindString}}
	case "json":
		js, err := dataflow.JSONSchema(o, k.Fields)
		if err != nil {
			return nil, err
		}
		s = js
	case "csv":
		for _, f := range k.Fields {
			if err := dataflow.CheckFieldName(o, "fields", f); err != nil {
				return nil, err
			}
			s = append(s, dataflow.Field{Name: f, Kind: dataflow.KindString})
		}
	}
	k.valueN = len(s)
	add := func(opt, name string, kind dataflow.Kind) error {
		if err := dataflow.CheckFieldName(o, opt, name); err != nil {
			return err
		}
		if s.Index(name) >= 0 {
			return o.Errorf(opt, "field %q is already a field of the record: rename one", name)
		}
		s = append(s, dataflow.Field{Name: name, Kind: kind})
		return nil
	}
	for _, f := range k.KeyFields {
		if err := add("key.fields", f, dataflow.KindAny); err != nil {
			return nil, err
		}
	}
	for _, h := range k.Headers {
		if err := add("headers", h, dataflow.KindString); err != nil {
			return nil, err
		}
	}
	for _, m := range k.Metadata {
		kind := dataflow.KindInt
		if m == "topic" {
			kind = dataflow.KindString
		}
		if err := add("metadata", m, kind); err != nil {
			return nil, err
		}
	}
	k.schema = s
	return s, nil
}

func (k *Options) planSink(pc *dataflow.PlanContext) error {
	o, in := pc.Op, pc.Inputs[0]
	k.schema = in
	k.keyIdx, k.headerIdx, k.keyExpr = nil, nil, nil
	for _, f := range k.KeyFields {
		i := in.Index(f)
		if i < 0 {
			return o.Errorf("key.fields", "unknown field %q: input %q has fields %s", f, o.Input, listOrNone(in.Names()))
		}
		k.keyIdx = append(k.keyIdx, i)
	}
	for _, h := range k.Headers {
		i := in.Index(h)
		if i < 0 {
			return o.Errorf("headers", "unknown field %q: input %q has fields %s", h, o.Input, listOrNone(in.Names()))
		}
		k.headerIdx = append(k.headerIdx, i)
	}
	if k.Key != "" {
		e, err := pc.CompileExpr(0, k.Key)
		if err != nil {
			return o.Errorf("key", "%v", err)
		}
		if !e.Scalar() {
			return o.Errorf("key", "CEL type error: key %q is of type %s, want a scalar", k.Key, e.Type())
		}
		k.keyExpr = e
	}
	if k.Format == "raw" {
		k.valueIdx = in.Index("value")
		if k.valueIdx < 0 {
			if len(in) != 1 {
				return o.Errorf("format", "raw writes one field: the input %q has %s; name the field to write value (a map before the sink) or use json or csv", o.Input, listOrNone(in.Names()))
			}
			k.valueIdx = 0
		}
	}
	return nil
}

// Access implements dataflow.Definition: a source reads its topics (for topic-pattern, every
// topic the pattern can match: patternResources), a sink writes its topic; the client reads
// the files its properties name.
func (k *Options) Access(op *dataflow.OperatorSpec) []dataflow.Access {
	var out []dataflow.Access
	write := op.Input != ""
	if k.TopicPattern != "" {
		for _, r := range patternResources(k.TopicPattern) {
			out = append(out, dataflow.Access{Scheme: "kafka", Target: "topic/" + r, Write: write})
		}
	}
	for _, t := range k.Topic {
		out = append(out, dataflow.Access{Scheme: "kafka", Target: "topic/" + t, Write: write})
	}
	if k.settings != nil {
		for _, f := range k.settings.Files {
			out = append(out, dataflow.Access{Scheme: "file", Target: f})
		}
	}
	return out
}

// NewOperator implements dataflow.Definition.
func (k *Options) NewOperator() dataflow.Operator {
	if k.sink {
		return &kafkaSink{opts: k}
	}
	return &kafkaSource{opts: k}
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
