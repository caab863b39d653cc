package kafka

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/protocolstest"
)

// lab is a kfake cluster of one broker whose every client connection runs
// through a Recorder, and what the client and the broker say they did.
type lab struct {
	t       *testing.T
	cluster *kfake.Cluster
	rec     *protocolstest.Recorder

	mu       sync.Mutex
	writes   []ioEvent // requests the clients wrote
	reads    []ioEvent // responses the clients read
	versions map[[2]int16]bool
	seen     map[int16]chan struct{} // closed when a request with the key is written
}

// ioEvent is a request or response as kgo's hooks saw it.
type ioEvent struct {
	key   int16
	bytes int
}

func newLab(t *testing.T, opts ...kfake.Opt) *lab {
	t.Helper()
	l := &lab{t: t, versions: map[[2]int16]bool{}, seen: map[int16]chan struct{}{}}
	// The broker advertises the Recorder's address in its metadata, so
	// that a client's every connection, not only the first, is recorded.
	listen := func(network, address string) (net.Listener, error) {
		ln, err := net.Listen(network, address)
		if err != nil {
			return nil, err
		}
		l.rec = protocolstest.NewRecorder(t, ln.Addr().String())
		addr, err := net.ResolveTCPAddr("tcp", l.rec.Addr)
		if err != nil {
			ln.Close()
			return nil, err
		}
		return advertised{ln, addr}, nil
	}
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.ListenFn(listen)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	l.cluster = c
	t.Cleanup(c.Close) // runs before the Recorder's Close, which waits for the connections
	c.Control(func(req kmsg.Request) (kmsg.Response, error, bool) {
		l.mu.Lock()
		l.versions[[2]int16{req.Key(), req.GetVersion()}] = true
		l.mu.Unlock()
		return nil, nil, false // observe only
	})
	return l
}

// advertised is a listener that gives another address as its own.
type advertised struct {
	net.Listener
	addr net.Addr
}

func (a advertised) Addr() net.Addr { return a.addr }

// OnBrokerWrite implements kgo.HookBrokerWrite.
func (l *lab) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, n int, _, _ time.Duration, err error) {
	if err != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writes = append(l.writes, ioEvent{key, n})
	if ch := l.seen[key]; ch != nil {
		close(ch)
		delete(l.seen, key)
	}
}

// OnBrokerRead implements kgo.HookBrokerRead.
func (l *lab) OnBrokerRead(_ kgo.BrokerMetadata, key int16, n int, _, _ time.Duration, err error) {
	if err != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reads = append(l.reads, ioEvent{key, n})
}

// written returns a channel closed once a request with key has been written.
func (l *lab) written(key int16) <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	ch := make(chan struct{})
	if slices.ContainsFunc(l.writes, func(e ioEvent) bool { return e.key == key }) {
		close(ch)
	} else {
		l.seen[key] = ch
	}
	return ch
}

// client makes a kgo client of the lab's broker, whose hooks count what it
// writes and reads.
func (l *lab) client(opts ...kgo.Opt) *kgo.Client {
	l.t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(l.rec.Addr), kgo.WithHooks(l)}, opts...)...)
	if err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(cl.Close)
	return cl
}

// finish stops the cluster and the Recorder and dissects every recorded
// connection with one dissector, in the order they were opened (a client
// learns topic IDs on its first connection and uses them on later ones).
// Then it checks that cutting each connection's bytes anywhere changes
// nothing.
func (l *lab) finish(opts protocols.Options) []*protocols.Entry {
	l.t.Helper()
	l.cluster.Close()
	l.rec.Close()
	d := New()
	info := protocols.ConnInfo{Options: opts}
	var all []*protocols.Entry
	for i, chunks := range l.rec.Conns() {
		res, err := protocolstest.Replay(d, info, chunks, protocols.ClosedFIN)
		if err != nil || res.Err != nil {
			l.t.Fatalf("connection %d: %v %v", i, err, res.Err)
		}
		all = append(all, res.Entries...)
	}
	for _, chunks := range l.rec.Conns() {
		replayWith(l.t, d, info, chunks)
	}
	return all
}

// checkDecoded checks that every entry has its request, that every
// response was decoded without warnings, and that every API key and version
// the broker handled appears.
func (l *lab) checkDecoded(entries []*protocols.Entry) {
	l.t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	got := map[[2]int16]bool{}
	for _, e := range entries {
		k := e.Kafka
		if k.APIKey < 0 {
			l.t.Errorf("response without its request: %s", line(e))
			continue
		}
		got[[2]int16{k.APIKey, k.APIVersion}] = true
		if e.Unmatched == protocols.Matched && e.ResponseSize > 0 && k.Error == "" {
			l.t.Errorf("response not decoded: %s %q", line(e), e.Warnings)
		}
		if len(e.Warnings) > 0 && e.Unmatched == protocols.Matched {
			l.t.Errorf("warnings on %s: %q", line(e), e.Warnings)
		}
	}
	for kv := range l.versions {
		if !got[kv] {
			l.t.Errorf("the broker handled %s v%d; no entry has it", kmsg.NameForKey(kv[0]), kv[1])
		}
	}
}

// checkCalls is checkDecoded, and checks that every request a kgo client
// wrote and every response it read appears once, with the sizes it counted.
func (l *lab) checkCalls(entries []*protocols.Entry) {
	l.t.Helper()
	l.checkDecoded(entries)
	l.mu.Lock()
	defer l.mu.Unlock()
	var reqs, resps []ioEvent
	for _, e := range entries {
		if e.Kafka.APIKey < 0 {
			continue
		}
		reqs = append(reqs, ioEvent{e.Kafka.APIKey, int(e.RequestSize)})
		if e.Unmatched == protocols.Matched && e.ResponseSize > 0 {
			resps = append(resps, ioEvent{e.Kafka.APIKey, int(e.ResponseSize)})
		}
	}
	if missing, extra := diffEvents(reqs, l.writes); len(missing)+len(extra) > 0 {
		l.t.Errorf("requests: the client wrote %v that were not dissected; dissected %v that it did not write", missing, extra)
	}
	// A consumer closes with a Fetch long poll outstanding: its answer can
	// be on the wire (and recorded) although the client no longer reads it.
	missing, extra := diffEvents(resps, l.reads)
	extra = slices.DeleteFunc(extra, func(e ioEvent) bool { return e.key == 1 })
	if len(missing)+len(extra) > 0 {
		l.t.Errorf("responses: the client read %v that were not dissected; dissected %v that it did not read", missing, extra)
	}
}

// diffEvents returns the events of want missing from got, and those of got
// not in want, counting repeats.
func diffEvents(got, want []ioEvent) (missing, extra []ioEvent) {
	left := map[ioEvent]int{}
	for _, e := range got {
		left[e]++
	}
	for _, e := range want {
		if left[e] == 0 {
			missing = append(missing, e)
			continue
		}
		left[e]--
	}
	for e, n := range left {
		for range n {
			extra = append(extra, e)
		}
	}
	return missing, extra
}

func calls(entries []*protocols.Entry, api string) []*protocols.Entry {
	var out []*protocols.Entry
	for _, e := range entries {
		if e.Kafka.API == api {
			out = append(out, e)
		}
	}
	return out
}

var liveCodecs = []struct {
	name  string
	codec kgo.CompressionCodec
}{
	{"none", kgo.NoCompression()},
	{"gzip", kgo.GzipCompression()},
	{"snappy", kgo.SnappyCompression()},
	{"lz4", kgo.Lz4Compression()},
	{"zstd", kgo.ZstdCompression()},
}

// TestLiveProduceConsume produces with every codec, consumes in a group,
// commits, and checks each call and record against what the client did.
func TestLiveProduceConsume(t *testing.T) {
	const perTopic = 5
	var topics []string
	for _, c := range liveCodecs {
		topics = append(topics, "t-"+c.name)
	}
	l := newLab(t, kfake.SeedTopics(1, topics...))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	value := strings.Repeat("compressible payload ", 10)
	for _, c := range liveCodecs {
		p := l.client(kgo.DefaultProduceTopic("t-"+c.name), kgo.ProducerBatchCompression(c.codec), kgo.ProducerLinger(time.Minute))
		// Lingering, then flushing, puts the records in one batch.
		errs := make(chan error, perTopic)
		for i := range perTopic {
			p.Produce(ctx, &kgo.Record{
				Key:     fmt.Appendf(nil, "%s-%d", c.name, i),
				Value:   []byte(value),
				Headers: []kgo.RecordHeader{{Key: "codec", Value: []byte(c.name)}},
			}, func(_ *kgo.Record, err error) { errs <- err })
		}
		if err := p.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		for range perTopic {
			if err := <-errs; err != nil {
				t.Fatalf("producing with %s: %v", c.name, err)
			}
		}
		p.Close()
	}

	cons := l.client(kgo.ConsumeTopics(topics...), kgo.ConsumerGroup("g1"),
		kgo.HeartbeatInterval(100*time.Millisecond), kgo.FetchMaxWait(100*time.Millisecond),
		kgo.DisableAutoCommit())
	consumed := 0
	for consumed < perTopic*len(topics) {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d records: %v", consumed, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetching %s[%d]: %v", topic, p, err) })
		consumed += fs.NumRecords()
	}
	if err := cons.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-l.written(12): // a Heartbeat
	case <-ctx.Done():
		t.Fatal("no heartbeat")
	}
	cons.Close() // leaves the group

	entries := l.finish(protocols.DefaultOptions())
	l.checkCalls(entries)
	for _, api := range []string{"ApiVersions", "Metadata", "Produce", "Fetch", "FindCoordinator", "JoinGroup", "SyncGroup", "Heartbeat", "OffsetFetch", "OffsetCommit", "LeaveGroup"} {
		if len(calls(entries, api)) == 0 {
			t.Errorf("no %s call dissected", api)
		}
	}

	produced := map[string]int64{}
	fetched := map[string]int64{}
	for _, e := range calls(entries, "Produce") {
		for _, b := range e.Kafka.Batches {
			produced[b.Topic] += b.RecordCount
			if want := strings.TrimPrefix(b.Topic, "t-"); b.Compression != want {
				t.Errorf("produce to %s: compression %q", b.Topic, b.Compression)
			}
			for i, r := range b.Records {
				// The producer may split a topic's records over several
				// batches, so a record's number is its key's, not its place
				// in the batch.
				n, err := strconv.Atoi(strings.TrimPrefix(string(r.Key.Data), b.Compression+"-"))
				if err != nil || n < 0 || n >= perTopic || string(r.Value.Data) != value ||
					len(r.Headers) != 1 || string(r.Headers[0].Value.Data) != b.Compression {
					t.Errorf("produce to %s: record %d is key %q, value %q, %d headers", b.Topic, i, r.Key.Data, r.Value.Data, len(r.Headers))
				}
			}
		}
	}
	for _, e := range calls(entries, "Fetch") {
		for _, b := range e.Kafka.Batches {
			fetched[b.Topic] += b.RecordCount
		}
	}
	for _, topic := range topics {
		if produced[topic] != perTopic || fetched[topic] < perTopic {
			t.Errorf("%s: %d records produced and %d fetched, want %d", topic, produced[topic], fetched[topic], perTopic)
		}
	}
	for _, e := range slices.Concat(calls(entries, "FindCoordinator"), calls(entries, "JoinGroup"), calls(entries, "SyncGroup"), calls(entries, "Heartbeat")) {
		if e.Summary.Target != "g1" {
			t.Errorf("%s: target %q, want the group", line(e), e.Summary.Target)
		}
	}
	for _, e := range calls(entries, "OffsetCommit") {
		if e.Summary.Target != "5 topics" || e.Summary.Status != "NONE" || e.Kafka.GroupID != "g1" {
			t.Errorf("offset commit: %s group %q", line(e), e.Kafka.GroupID)
		}
	}
}

// TestLiveAdmin issues admin calls whose outcome is known and checks each
// entry's error code.
func TestLiveAdmin(t *testing.T) {
	l := newLab(t, kfake.SeedTopics(2, "existing"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := l.client()

	create := func(name string) kmsg.Request {
		req := kmsg.NewPtrCreateTopicsRequest()
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, 3, 1
		req.Topics = append(req.Topics, rt)
		return req
	}
	deleteTopic := func(name string) kmsg.Request {
		req := kmsg.NewPtrDeleteTopicsRequest()
		rt := kmsg.NewDeleteTopicsRequestTopic()
		rt.Topic = kmsg.StringPtr(name)
		req.Topics = append(req.Topics, rt)
		req.TopicNames = []string{name}
		return req
	}
	describeConfigs := kmsg.NewPtrDescribeConfigsRequest()
	res := kmsg.NewDescribeConfigsRequestResource()
	res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeTopic, "existing"
	describeConfigs.Resources = append(describeConfigs.Resources, res)
	listOffsets := kmsg.NewPtrListOffsetsRequest()
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = "existing"
	for p := range int32(2) {
		lp := kmsg.NewListOffsetsRequestTopicPartition()
		lp.Partition, lp.Timestamp = p, -1
		lt.Partitions = append(lt.Partitions, lp)
	}
	listOffsets.Topics = append(listOffsets.Topics, lt)
	missing := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("missing")
	missing.Topics = append(missing.Topics, mt)

	steps := []struct {
		req    kmsg.Request
		api    string
		target string
		status string
	}{
		{create("fresh"), "CreateTopics", "fresh", "NONE"},
		{create("fresh"), "CreateTopics", "fresh", "TOPIC_ALREADY_EXISTS"},
		{describeConfigs, "DescribeConfigs", "existing", "NONE"},
		{listOffsets, "ListOffsets", "existing", "NONE"},
		{missing, "Metadata", "missing", "UNKNOWN_TOPIC_OR_PARTITION"},
		{deleteTopic("fresh"), "DeleteTopics", "fresh", "NONE"},
		{deleteTopic("never-was"), "DeleteTopics", "never-was", "UNKNOWN_TOPIC_OR_PARTITION"},
	}
	for _, s := range steps {
		if _, err := cl.Request(ctx, s.req); err != nil {
			t.Fatalf("%s: %v", s.api, err)
		}
	}
	cl.Close()
	entries := l.finish(protocols.DefaultOptions())
	l.checkCalls(entries)
	var got, want []string
	for _, e := range entries {
		if k := e.Kafka.APIKey; k == 3 && e.Summary.Target != "missing" || k == 18 {
			continue // the client's own metadata and version requests
		}
		got = append(got, fmt.Sprintf("%s %s %s", e.Summary.Method, e.Summary.Target, e.Summary.Status))
	}
	for _, s := range steps {
		want = append(want, fmt.Sprintf("%s %s %s", s.api, s.target, s.status))
	}
	// Admin calls go to the controller's connection, the rest elsewhere:
	// only the order within a connection is kept.
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("admin calls:\n got %q\nwant %q", got, want)
	}
	for _, e := range calls(entries, "ListOffsets") {
		if tp := e.Kafka.Topics; len(tp) != 1 || !slices.Equal(tp[0].Partitions, []int32{0, 1}) {
			t.Errorf("list offsets topics: %+v", tp)
		}
	}
}

// TestLiveSASLPlain authenticates with SASL PLAIN and checks that the
// password appears in no entry.
func TestLiveSASLPlain(t *testing.T) {
	const password = "s3cret-pw-Xq7"
	l := newLab(t, kfake.EnableSASL(), kfake.Superuser("PLAIN", "admin", password), kfake.SeedTopics(1, "t"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := l.client(kgo.SASL(plain.Auth{User: "admin", Pass: password}.AsMechanism()), kgo.DefaultProduceTopic("t"))
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	entries := l.finish(protocols.DefaultOptions())
	l.checkCalls(entries)
	auth := calls(entries, "SASLAuthenticate")
	if len(auth) == 0 {
		t.Fatal("no SASLAuthenticate call dissected")
	}
	for _, e := range auth {
		if !e.Redacted || e.Kafka.SASLAuth == nil || e.Kafka.SASLAuth.Size == 0 || len(e.Kafka.SASLAuth.Data) != 0 {
			t.Errorf("not redacted: %s %+v", line(e), e.Kafka.SASLAuth)
		}
	}
	for _, e := range calls(entries, "SASLHandshake") {
		if e.Kafka.SASLMechanism != "PLAIN" {
			t.Errorf("mechanism %q", e.Kafka.SASLMechanism)
		}
	}
	js := protocolstest.Fingerprint(protocolstest.Result{Entries: entries})
	for _, secret := range []string{password, base64.StdEncoding.EncodeToString([]byte("\x00admin\x00" + password))} {
		if strings.Contains(js, secret) {
			t.Errorf("the password is in the entries")
		}
	}
}

// TestLiveAcksZero produces without acknowledgements: the broker never
// answers, and each request is an entry of its own.
func TestLiveAcksZero(t *testing.T) {
	l := newLab(t, kfake.SeedTopics(1, "t"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := l.client(kgo.DefaultProduceTopic("t"), kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	for i := range 3 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "v%d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cl.Close()
	entries := l.finish(protocols.DefaultOptions())
	l.checkCalls(entries)
	var n int64
	for _, e := range calls(entries, "Produce") {
		if e.Unmatched != protocols.Matched || e.ResponseSize != 0 || e.Summary.Status != "" {
			t.Errorf("acks=0 produce: %s", line(e))
		}
		n += e.Kafka.RecordCount
	}
	if n != 3 {
		t.Errorf("%d records produced, want 3", n)
	}
}

// TestLiveKcat runs Debian's kcat, a librdkafka client with other versions
// and batching than kgo's, against the broker: it produces asking for every
// codec and consumes what it produced. librdkafka 2.0 compresses with gzip,
// snappy and lz4 only for brokers that accept Produce v2, which kfake (like
// Kafka 4) does not; it says "Broker does not support compression type gzip:
// not compressing batch" and sends those batches uncompressed.
func TestLiveKcat(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Skip("kcat not installed: apt-get install kcat (Debian's librdkafka client)")
	}
	const perTopic = 5
	var topics []string
	for _, c := range liveCodecs {
		topics = append(topics, "k-"+c.name)
	}
	l := newLab(t, kfake.SeedTopics(1, topics...))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	value := strings.Repeat("librdkafka payload ", 10)
	for _, c := range liveCodecs {
		var in bytes.Buffer
		for i := range perTopic {
			fmt.Fprintf(&in, "%s-%d:%s\n", c.name, i, value)
		}
		cmd := exec.CommandContext(ctx, kcat, "-b", l.rec.Addr, "-P", "-t", "k-"+c.name, "-K", ":", "-X", "compression.codec="+c.name,
			"-X", "linger.ms=100", "-H", "codec="+c.name)
		cmd.Stdin = &in
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("kcat producing with %s: %v\n%s", c.name, err, out)
		}
		out, err := exec.CommandContext(ctx, kcat, "-b", l.rec.Addr, "-C", "-t", "k-"+c.name, "-o", "beginning", "-e", "-q", "-f", "%k\n").CombinedOutput()
		if err != nil || strings.Count(string(out), "\n") != perTopic {
			t.Fatalf("kcat consuming %s: %v\n%s", c.name, err, out)
		}
	}
	entries := l.finish(protocols.DefaultOptions())
	l.checkDecoded(entries)
	produced := map[string]int64{}
	fetched := map[string]int64{}
	for _, e := range calls(entries, "Produce") {
		for _, b := range e.Kafka.Batches {
			produced[b.Topic] += b.RecordCount
			codec := strings.TrimPrefix(b.Topic, "k-")
			want := "none" // librdkafka compresses with zstd only, see above
			if codec == "zstd" {
				want = "zstd"
			}
			if b.Compression != want {
				t.Errorf("produce to %s: compression %q", b.Topic, b.Compression)
			}
			for _, r := range b.Records {
				if r.Key == nil || !strings.HasPrefix(string(r.Key.Data), codec+"-") || string(r.Value.Data) != value ||
					len(r.Headers) != 1 || string(r.Headers[0].Value.Data) != codec {
					t.Errorf("produce to %s: record %+v", b.Topic, r)
				}
			}
		}
	}
	for _, e := range calls(entries, "Fetch") {
		for _, b := range e.Kafka.Batches {
			fetched[b.Topic] += b.RecordCount
		}
	}
	for _, topic := range topics {
		if produced[topic] != perTopic || fetched[topic] < perTopic {
			t.Errorf("%s: %d records produced and %d fetched, want %d", topic, produced[topic], fetched[topic], perTopic)
		}
	}
}
