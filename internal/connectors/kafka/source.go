package kafka

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/dataflow"
	"github.com/sluice-dev/sluice/internal/state"
)

// kafkaOffsetsState is the union list state of a kafka source: one entry per partition a
// subtask read, (topic, partition, next offset, end offset or -1). Union, not split: every
// subtask sees every partition's offset after a restore and keeps those its assignment
// gives it, so partitions find their offsets at any parallelism (Flink's legacy consumer
// does the same).
const kafkaOffsetsState = "kafka-offsets"

// kafkaBatch is how many records one Poll emits at most.
const kafkaBatch = 512

type topicPartition struct {
	topic     string
	partition int32
}

// kafkaPartition is one partition a subtask reads.
type kafkaPartition struct {
	next int64 // the offset of the next record to emit
	end  int64 // bounded: stop here; -1 unbounded
	done bool
}

// kafkaSource reads the partitions its assignment gives it, without a consumer group: the
// offsets live in checkpoints, and go to the group (properties.group.id) only as a courtesy
// when a checkpoint completes, for monitoring.
type kafkaSource struct {
	dataflow.NoInput
	opts *Options
	rc   *dataflow.RuntimeContext
	out  dataflow.Output
	list *state.ListState

	cl    *kgo.Client
	adm   *kadm.Client
	parts map[topicPartition]*kafkaPartition
	live  int // partitions not done

	// The fetch loop (its goroutine is the source's; Close stops it) hands fetched records
	// over here; Poll emits them.
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	fetched  chan []*kgo.Record
	fetchErr chan error
	ready    chan struct{}
	// discovered hands Poll the partitions discoverLoop (a goroutine of the source's, with
	// the fetch loop's context) found, with the offsets they start at.
	discovered chan map[topicPartition]int64
	batch      []*kgo.Record

	rec    dataflow.Record
	el     dataflow.Element
	lastTP topicPartition
	lastP  *kafkaPartition
	// Offsets per checkpoint, committed to the group when the checkpoint completes, by
	// commitLoop (a goroutine of the source's, started with the first commit).
	snapshots map[int64]map[topicPartition]int64
	commits   chan kafkaCommit
}

func (s *kafkaSource) Open(ctx context.Context, rc *dataflow.RuntimeContext) error {
	k := s.opts
	s.rc, s.out = rc, rc.Output
	s.rec = make(dataflow.Record, len(k.schema))
	s.el = dataflow.Element{Record: s.rec}
	s.snapshots = map[int64]map[topicPartition]int64{}
	list, err := rc.ListState(kafkaOffsetsState, state.Union)
	if err != nil {
		return err
	}
	s.list = list
	opts, err := kafkaClientOptions(ctx, rc, k)
	if err != nil {
		return err
	}
	admin, err := kgo.NewClient(opts...)
	if err != nil {
		return kafkaFailure(rc, fmt.Errorf("kafka client: %w", err))
	}
	s.adm = kadm.NewClient(admin)
	if err := s.assign(ctx); err != nil {
		return kafkaFailure(rc, err)
	}
	starts := map[string]map[int32]kgo.Offset{}
	for tp, p := range s.parts {
		if p.done {
			continue
		}
		if starts[tp.topic] == nil {
			starts[tp.topic] = map[int32]kgo.Offset{}
		}
		starts[tp.topic][tp.partition] = kgo.NewOffset().At(p.next)
	}
	s.ready = make(chan struct{}, 1)
	s.fetched = make(chan []*kgo.Record, 2)
	s.fetchErr = make(chan error, 1)
	s.discovered = make(chan map[topicPartition]int64, 1)
	if len(starts) == 0 && k.discovery == 0 {
		return nil
	}
	tuning, err := ConsumerOptions(k.Properties)
	if err != nil {
		return dataflow.Unrecoverable(dataflow.OperatorError(rc.Operator, err))
	}
	copts := append(append(opts, tuning...), kgo.ConsumePartitions(starts),
		// Control records (transaction markers) advance the offsets, so a bounded read of
		// transactional data reaches its end offset.
		kgo.KeepControlRecords())
	if s.cl, err = kgo.NewClient(copts...); err != nil {
		return kafkaFailure(rc, fmt.Errorf("kafka consumer: %w", err))
	}
	fctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.fetchLoop(fctx)
	}()
	if k.discovery > 0 {
		known := make(map[topicPartition]bool, len(s.parts))
		for tp := range s.parts {
			known[tp] = true
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.discoverLoop(fctx, known)
		}()
	}
	return nil
}

// assign lists the topics' partitions, takes this subtask's share, and finds where each
// starts: the restored offset, else the startup mode's.
func (s *kafkaSource) assign(ctx context.Context) error {
	k, rc := s.opts, s.rc
	lctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var topics []string
	if k.pattern != nil {
		all, err := s.adm.ListTopics(lctx)
		if err != nil {
			return kafkaExplain(k, err, "list topics for topic-pattern %q", k.TopicPattern)
		}
		for _, t := range all.Names() {
			if k.pattern.MatchString(t) {
				topics = append(topics, t)
			}
		}
		if len(topics) == 0 && k.discovery == 0 {
			rc.Logger.Warn("kafka: no topic matches topic-pattern (yet), and scan.topic-partition-discovery.interval is 0: topics created later are not read", "topic-pattern", k.TopicPattern)
		} else if len(topics) == 0 {
			rc.Logger.Warn("kafka: no topic matches topic-pattern yet; topics created later are read once discovered", "topic-pattern", k.TopicPattern, "interval", k.discovery)
		}
	} else {
		topics = slices.Clone([]string(k.Topic))
	}
	s.parts = map[topicPartition]*kafkaPartition{}
	if len(topics) == 0 {
		return nil
	}
	details, err := s.adm.ListTopics(lctx, topics...)
	if err != nil {
		what := "topic "
		if len(topics) > 1 {
			what = "topics "
		}
		return kafkaExplain(k, err, "%s%s", what, strings.Join(topics, ", "))
	}
	for _, t := range topics {
		d, ok := details[t]
		if !ok {
			return fmt.Errorf("topic %q: no metadata returned", t)
		}
		if d.Err != nil {
			return kafkaExplain(k, d.Err, "topic %s", t)
		}
		for _, p := range d.Partitions.Numbers() {
			if kafkaOwner(t, p, rc.Parallelism) == rc.Subtask {
				s.parts[topicPartition{t, p}] = &kafkaPartition{next: -1, end: -1}
			}
		}
	}
	// Restored offsets: every subtask's entries; keep ours.
	if rc.Restored > 0 {
		for i, e := range s.list.Entries() {
			tp, next, end, err := decodeKafkaOffset(e)
			if err != nil {
				return fmt.Errorf("restore kafka offsets (entry %d of checkpoint %d): %w", i, rc.Restored, err)
			}
			if p, ok := s.parts[tp]; ok {
				p.next, p.end = next, end
			}
		}
	}
	var need []string
	for tp, p := range s.parts {
		if p.next < 0 && !slices.Contains(need, tp.topic) {
			need = append(need, tp.topic)
		}
	}
	if len(need) > 0 {
		mode := k.StartupMode
		if rc.Restored > 0 && k.discovery > 0 {
			// A partition the checkpoint does not hold appeared after the job started:
			// discovery would have read it from its start (as Flink's), so a restore does too.
			mode = kafkaStartEarliest
		}
		if err := s.startOffsets(lctx, need, mode); err != nil {
			return err
		}
	}
	if k.BoundedMode == kafkaBoundedLatest {
		var ends kadm.ListedOffsets
		for tp, p := range s.parts {
			if p.end >= 0 {
				continue
			}
			if ends == nil {
				if ends, err = s.adm.ListCommittedOffsets(lctx, topics...); err != nil {
					return kafkaExplain(k, err, "end offsets of %s", strings.Join(topics, ", "))
				}
			}
			o, ok := ends.Lookup(tp.topic, tp.partition)
			if !ok || o.Err != nil {
				return kafkaExplain(k, errors.Join(o.Err, errors.New("no end offset")), "topic %s partition %d", tp.topic, tp.partition)
			}
			p.end = o.Offset
		}
	}
	for _, p := range s.parts {
		p.done = p.end >= 0 && p.next >= p.end
		if !p.done {
			s.live++
		}
	}
	rc.Logger.Info("kafka source assigned", "partitions", len(s.parts), "bounded", k.BoundedMode == kafkaBoundedLatest)
	return nil
}

// startOffsets sets the offsets of the partitions without one as mode (a scan.startup.mode)
// says.
func (s *kafkaSource) startOffsets(ctx context.Context, topics []string, mode string) error {
	k := s.opts
	var (
		listed kadm.ListedOffsets
		err    error
	)
	what := "start offsets of " + strings.Join(topics, ", ")
	switch mode {
	case kafkaStartEarliest:
		listed, err = s.adm.ListStartOffsets(ctx, topics...)
	case kafkaStartLatest:
		listed, err = s.adm.ListCommittedOffsets(ctx, topics...)
	case kafkaStartTimestamp:
		listed, err = s.adm.ListOffsetsAfterMilli(ctx, k.StartupMillis, topics...)
	case kafkaStartGroup:
		group := k.Properties["group.id"]
		committed, ferr := s.adm.FetchOffsetsForTopics(ctx, group, topics...)
		if ferr == nil {
			ferr = committed.Error()
		}
		if errors.Is(ferr, kerr.GroupIDNotFound) {
			// A group that never committed: every partition starts as auto.offset.reset says.
			committed, ferr = nil, nil
		}
		if ferr != nil {
			return kafkaExplain(k, ferr, "committed offsets of group %s", group)
		}
		// Partitions the group never committed start as auto.offset.reset says (Kafka's
		// default: latest).
		reset := strings.ToLower(k.Properties["auto.offset.reset"])
		if reset == "earliest" {
			listed, err = s.adm.ListStartOffsets(ctx, topics...)
		} else {
			listed, err = s.adm.ListCommittedOffsets(ctx, topics...)
		}
		if err == nil {
			for tp, p := range s.parts {
				if o, ok := committed.Lookup(tp.topic, tp.partition); ok && o.Err == nil && o.At >= 0 && p.next < 0 {
					p.next = o.At
				}
			}
		}
	}
	if err != nil {
		return kafkaExplain(k, err, "%s", what)
	}
	for tp, p := range s.parts {
		if p.next >= 0 {
			continue
		}
		o, ok := listed.Lookup(tp.topic, tp.partition)
		if !ok || o.Err != nil {
			return kafkaExplain(k, errors.Join(o.Err, errors.New("no offset listed")), "topic %s partition %d", tp.topic, tp.partition)
		}
		p.next = o.Offset
		if p.next < 0 { // a timestamp after the last record: the end
			end, err := s.adm.ListCommittedOffsets(ctx, tp.topic)
			if err != nil {
				return kafkaExplain(k, err, "%s", what)
			}
			e, _ := end.Lookup(tp.topic, tp.partition)
			p.next = e.Offset
		}
	}
	return nil
}

// kafkaOwner is the subtask reading a partition: Flink's KafkaTopicPartitionAssigner, so a
// topic's partitions go round-robin from a start that depends on the topic.
func kafkaOwner(topic string, partition int32, parallelism int) int {
	var h int32
	for _, c := range []byte(topic) {
		h = 31*h + int32(c)
	}
	start := int((h*31)&0x7FFFFFFF) % parallelism
	return (start + int(partition)) % parallelism
}

// discoverLoop looks, every scan.topic-partition-discovery.interval until ctx ends, for
// partitions this subtask's assignment gives it that it does not read yet (partitions added
// to its topics, topics newly matching topic-pattern), and hands them to Poll. known are the
// partitions it reads already; the loop owns it.
func (s *kafkaSource) discoverLoop(ctx context.Context, known map[topicPartition]bool) {
	t := time.NewTicker(s.opts.discovery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		found, err := s.discover(ctx, known)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			// The partitions read already are unaffected: try again at the next interval.
			s.rc.Logger.Warn("kafka: partition discovery failed; trying again at the next interval", "err", err, "interval", s.opts.discovery)
			continue
		}
		if len(found) == 0 {
			continue
		}
		select {
		case s.discovered <- found:
			for tp := range found {
				known[tp] = true
			}
			s.wake()
		case <-ctx.Done():
			return
		}
	}
}

// discover lists the source's topics as assign does (topic-pattern matched as written, the
// pattern the job was authorized for; the cluster's internal topics are never listed) and
// returns the partitions the assignment gives this subtask that are not known, each with
// its earliest offset: records written to a new partition before it was discovered are read
// too (Flink's default for discovered partitions).
func (s *kafkaSource) discover(ctx context.Context, known map[topicPartition]bool) (map[topicPartition]int64, error) {
	k, rc := s.opts, s.rc
	lctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var (
		details kadm.TopicDetails
		err     error
	)
	if k.pattern != nil {
		details, err = s.adm.ListTopics(lctx)
		if err != nil {
			return nil, kafkaExplain(k, err, "list topics for topic-pattern %q", k.TopicPattern)
		}
	} else if details, err = s.adm.ListTopics(lctx, k.Topic...); err != nil {
		return nil, kafkaExplain(k, err, "topics %s", strings.Join(k.Topic, ", "))
	}
	var (
		fresh  []topicPartition
		topics []string
	)
	for t, d := range details {
		if !k.subscribes(t) {
			continue
		}
		if d.Err != nil {
			if errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
				continue // deleted: its partitions read so far stay as they are
			}
			return nil, kafkaExplain(k, d.Err, "topic %s", t)
		}
		for _, p := range d.Partitions.Numbers() {
			tp := topicPartition{t, p}
			if !known[tp] && kafkaOwner(t, p, rc.Parallelism) == rc.Subtask {
				fresh = append(fresh, tp)
				if !slices.Contains(topics, t) {
					topics = append(topics, t)
				}
			}
		}
	}
	if len(fresh) == 0 {
		return nil, nil
	}
	starts, err := s.adm.ListStartOffsets(lctx, topics...)
	if err != nil {
		return nil, kafkaExplain(k, err, "start offsets of %s", strings.Join(topics, ", "))
	}
	out := make(map[topicPartition]int64, len(fresh))
	for _, tp := range fresh {
		o, ok := starts.Lookup(tp.topic, tp.partition)
		if !ok || o.Err != nil {
			return nil, kafkaExplain(k, errors.Join(o.Err, errors.New("no offset listed")), "topic %s partition %d", tp.topic, tp.partition)
		}
		out[tp] = o.Offset
	}
	return out, nil
}

// subscribes says whether the source reads topic t: one of its topics, or a name its
// topic-pattern matches whole.
func (k *Options) subscribes(t string) bool {
	if k.pattern != nil {
		return k.pattern.MatchString(t)
	}
	return slices.Contains(k.Topic, t)
}

// addDiscovered starts reading the partitions discoverLoop found, from the task's thread:
// from now on they are in the checkpoints' offsets.
func (s *kafkaSource) addDiscovered(found map[topicPartition]int64) {
	add := map[string]map[int32]kgo.Offset{}
	var topics []string
	for tp, next := range found {
		if _, ok := s.parts[tp]; ok {
			continue
		}
		s.parts[tp] = &kafkaPartition{next: next, end: -1}
		s.live++
		if add[tp.topic] == nil {
			add[tp.topic] = map[int32]kgo.Offset{}
			topics = append(topics, tp.topic)
		}
		add[tp.topic][tp.partition] = kgo.NewOffset().At(next)
	}
	if len(add) == 0 {
		return
	}
	slices.Sort(topics)
	s.cl.AddConsumePartitions(add)
	s.lastP = nil
	s.rc.Logger.Info("kafka source discovered partitions", "partitions", len(found), "topics", strings.Join(topics, ","), "assigned", len(s.parts))
}

// fetchLoop polls the consumer until ctx ends, handing batches to Poll.
func (s *kafkaSource) fetchLoop(ctx context.Context) {
	for {
		fs := s.cl.PollRecords(ctx, 16*kafkaBatch)
		if ctx.Err() != nil {
			return
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if ferr == nil && !errors.Is(err, context.Canceled) {
				ferr = kafkaExplain(s.opts, err, "topic %s partition %d", t, p)
			}
		})
		if ferr != nil {
			select {
			case s.fetchErr <- ferr:
			default:
			}
			s.wake()
			return
		}
		recs := fs.Records()
		if len(recs) == 0 {
			continue
		}
		select {
		case s.fetched <- recs:
			s.wake()
		case <-ctx.Done():
			return
		}
	}
}

func (s *kafkaSource) wake() {
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// Available implements dataflow.Source.
func (s *kafkaSource) Available() <-chan struct{} { return s.ready }

// Poll implements dataflow.Source.
func (s *kafkaSource) Poll(context.Context) (dataflow.PollStatus, error) {
	if s.live == 0 && s.opts.BoundedMode == kafkaBoundedLatest {
		return dataflow.PollEnd, nil
	}
	select {
	case found := <-s.discovered:
		s.addDiscovered(found)
	default:
	}
	for n := 0; n < kafkaBatch; {
		if len(s.batch) == 0 {
			select {
			case err := <-s.fetchErr:
				return dataflow.PollEnd, kafkaFailure(s.rc, err)
			case b := <-s.fetched:
				s.batch = b
			default:
				if n > 0 {
					return dataflow.PollMore, nil
				}
				return dataflow.PollIdle, nil
			}
		}
		r := s.batch[0]
		s.batch[0] = nil
		s.batch = s.batch[1:]
		// Records come in runs of one partition: look the partition up once per run.
		if s.lastP == nil || r.Partition != s.lastTP.partition || r.Topic != s.lastTP.topic {
			s.lastTP = topicPartition{r.Topic, r.Partition}
			s.lastP = s.parts[s.lastTP]
		}
		p := s.lastP
		if p == nil || p.done || r.Offset < p.next {
			continue
		}
		p.next = r.Offset + 1
		if p.end >= 0 && r.Offset >= p.end {
			p.done = true
			s.live--
			continue
		}
		if !r.Attrs.IsControl() {
			if err := s.emit(r); err != nil {
				return dataflow.PollEnd, err
			}
			n++
		}
		if p.end >= 0 && p.next >= p.end {
			p.done = true
			s.live--
			if s.live == 0 {
				return dataflow.PollEnd, nil
			}
		}
	}
	return dataflow.PollMore, nil
}

// emit makes the record of a Kafka record and passes it on; its timestamp is the event time.
func (s *kafkaSource) emit(r *kgo.Record) error {
	if err := kafkaFill(s.opts, r, s.rec); err != nil {
		return dataflow.OperatorError(s.rc.Operator, err)
	}
	s.el.Timestamp = r.Timestamp.UnixMilli()
	return s.out.Collect(&s.el)
}

// kafkaFill fills rec (len(rec) == len(k.schema)) from a Kafka record: its value's fields,
// then key fields, headers and metadata. The record's bytes come from any producer: a value
// or key that does not decode is an error naming the topic, partition, offset and which of
// the two, never a partial record. A header the record carries several times is its last
// value (as Kafka's Headers.lastHeader, which Flink's deserializers read).
func kafkaFill(k *Options, r *kgo.Record, rec dataflow.Record) error {
	if err := decodeKafkaValue(k.Format, r.Value, k.schema[:k.valueN], rec[:k.valueN]); err != nil {
		return fmt.Errorf("topic %s partition %d offset %d: %s value: %w", r.Topic, r.Partition, r.Offset, k.Format, err)
	}
	i := k.valueN
	if len(k.KeyFields) > 0 {
		n := len(k.KeyFields)
		if err := decodeKafkaValue(k.KeyFormat, r.Key, k.schema[i:i+n], rec[i:i+n]); err != nil {
			return fmt.Errorf("topic %s partition %d offset %d: %s key: %w", r.Topic, r.Partition, r.Offset, k.KeyFormat, err)
		}
		i += n
	}
	for _, h := range k.Headers {
		rec[i] = dataflow.Null()
		for _, rh := range r.Headers {
			if rh.Key == h {
				rec[i] = dataflow.String(string(rh.Value))
			}
		}
		i++
	}
	for _, m := range k.Metadata {
		switch m {
		case "topic":
			rec[i] = dataflow.String(r.Topic)
		case "partition":
			rec[i] = dataflow.Int(int64(r.Partition))
		case "offset":
			rec[i] = dataflow.Int(r.Offset)
		case "timestamp":
			rec[i] = dataflow.Int(r.Timestamp.UnixMilli())
		}
		i++
	}
	return nil
}

// SnapshotState implements dataflow.Snapshotter: the next offset of every partition this subtask
// reads.
func (s *kafkaSource) SnapshotState(cp dataflow.CheckpointInfo) (func(context.Context) error, error) {
	entries := make([][]byte, 0, len(s.parts))
	offsets := make(map[topicPartition]int64, len(s.parts))
	for tp, p := range s.parts {
		entries = append(entries, appendKafkaOffset(nil, tp, p.next, p.end))
		offsets[tp] = p.next
	}
	s.list.Update(entries)
	if s.opts.Properties["group.id"] != "" && cp.ID > 0 {
		s.snapshots[cp.ID] = offsets
	}
	return nil, nil
}

// NotifyCheckpointComplete implements dataflow.CheckpointListener: hand the checkpoint's offsets to
// the committer, which commits them to the group, for monitoring only (the source never
// reads them back after a restore). A slow group coordinator never holds up the task.
func (s *kafkaSource) NotifyCheckpointComplete(id int64) error {
	offsets, ok := s.snapshots[id]
	for cid := range s.snapshots {
		if cid <= id {
			delete(s.snapshots, cid)
		}
	}
	if !ok || len(offsets) == 0 {
		return nil
	}
	if s.commits == nil {
		s.commits = make(chan kafkaCommit, 1)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.commitLoop()
		}()
	}
	// Only the newest offsets matter: replace what the committer has not taken yet.
	select {
	case <-s.commits:
	default:
	}
	s.commits <- kafkaCommit{id: id, offsets: offsets}
	return nil
}

type kafkaCommit struct {
	id      int64
	offsets map[topicPartition]int64
}

// commitLoop commits offsets to the group until Close closes s.commits.
func (s *kafkaSource) commitLoop() {
	group := s.opts.Properties["group.id"]
	for c := range s.commits {
		os := kadm.Offsets{}
		for tp, o := range c.offsets {
			os.Add(kadm.Offset{Topic: tp.topic, Partition: tp.partition, At: o, LeaderEpoch: -1})
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		resp, err := s.adm.CommitOffsets(ctx, group, os)
		cancel()
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			// A courtesy: the offsets that count are in the checkpoint.
			s.rc.Logger.Warn("kafka: committing the checkpoint's offsets to the consumer group failed", "group", group, "checkpoint", c.id, "err", err)
		}
	}
}

// NotifyCheckpointAborted implements dataflow.CheckpointListener.
func (s *kafkaSource) NotifyCheckpointAborted(id int64) error {
	delete(s.snapshots, id)
	return nil
}

func (s *kafkaSource) Finish() error { return nil }

func (s *kafkaSource) Close() error {
	if s.cancel != nil {
		s.cancel()
	}
	if s.commits != nil {
		close(s.commits)
	}
	if s.cl != nil {
		s.cl.Close()
	}
	s.wg.Wait()
	if s.adm != nil {
		s.adm.Close()
	}
	return nil
}

func appendKafkaOffset(dst []byte, tp topicPartition, next, end int64) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(tp.topic)))
	dst = append(dst, tp.topic...)
	dst = binary.AppendVarint(dst, int64(tp.partition))
	dst = binary.AppendVarint(dst, next)
	return binary.AppendVarint(dst, end)
}

func decodeKafkaOffset(b []byte) (topicPartition, int64, int64, error) {
	var tp topicPartition
	n, i := binary.Uvarint(b)
	if i <= 0 || uint64(len(b)-i) < n {
		return tp, 0, 0, errors.New("malformed topic")
	}
	tp.topic = string(b[i : i+int(n)])
	b = b[i+int(n):]
	var vals [3]int64
	for j := range vals {
		v, m := binary.Varint(b)
		if m <= 0 {
			return tp, 0, 0, errors.New("malformed offset")
		}
		vals[j], b = v, b[m:]
	}
	if len(b) != 0 {
		return tp, 0, 0, errors.New("trailing bytes")
	}
	tp.partition = int32(vals[0])
	return tp, vals[1], vals[2], nil
}
