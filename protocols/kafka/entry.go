package kafka

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"reflect"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sondehq/sonde/protocols"
)

// Caps on what one entry lists. What is left out is still counted (topics
// in TopicCount, records in RecordCount) and the cap hit is counted.
const (
	maxTopics     = 100
	maxPartitions = 128
	maxErrors     = 32
)

var (
	stringSliceType = reflect.TypeFor[[]string]()
	int32SliceType  = reflect.TypeFor[[]int32]()
	byteSliceType   = reflect.TypeFor[[]byte]()
	uuidType        = reflect.TypeFor[[16]byte]()
	tagsType        = reflect.TypeFor[kmsg.Tags]()
)

// plan says which fields of one kmsg struct type carry what Sonde shows.
// kmsg names fields after Kafka's JSON schemas, which name them consistently
// across every API ("Topic", "TopicID", "Partition", "ErrorCode", ...), so one
// walk over the decoded message serves every API key and version.
type plan struct {
	topic, topicID, partition    int
	partitions, topicNames       int
	errorCodes                   []int
	errorMessage                 int
	records                      int
	group, groups, transactional int
	resourceType, resourceName   int
	mechanism, saslAuth          int
	// coordinatorType says whether coordinatorKey(s) name a group (0) or
	// a transaction (1), in FindCoordinator requests.
	coordinatorType, coordinatorKey, coordinatorKeys int
	children                                         []int
}

func makePlan(t reflect.Type) *plan {
	p := &plan{
		topic: -1, topicID: -1, partition: -1, partitions: -1, topicNames: -1,
		errorMessage: -1, records: -1, group: -1, groups: -1, transactional: -1,
		resourceType: -1, resourceName: -1, mechanism: -1, saslAuth: -1,
		coordinatorType: -1, coordinatorKey: -1, coordinatorKeys: -1,
	}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		ft := f.Type
		switch name := f.Name; {
		case name == "Topic" && isString(ft):
			p.topic = i
		case name == "TopicID" && ft == uuidType:
			p.topicID = i
		case name == "Partition" && ft.Kind() == reflect.Int32:
			p.partition = i
		case name == "Partitions" && ft == int32SliceType:
			p.partitions = i
		case (name == "Topics" || name == "TopicNames") && ft == stringSliceType:
			p.topicNames = i
		case strings.HasSuffix(name, "ErrorCode") && ft.Kind() == reflect.Int16:
			p.errorCodes = append(p.errorCodes, i)
		case name == "ErrorMessage" && isString(ft):
			p.errorMessage = i
		case (name == "Records" || name == "RecordBatches") && ft == byteSliceType:
			p.records = i
		case (name == "Group" || name == "GroupID") && isString(ft):
			p.group = i
		case name == "Groups" && ft == stringSliceType:
			p.groups = i
		case name == "TransactionalID" && isString(ft):
			p.transactional = i
		case name == "ResourceType" && ft.Kind() == reflect.Int8:
			p.resourceType = i
		case name == "ResourceName" && isString(ft):
			p.resourceName = i
		case name == "Mechanism" && ft.Kind() == reflect.String:
			p.mechanism = i
		case name == "SASLAuthBytes" && ft == byteSliceType:
			p.saslAuth = i
		case name == "CoordinatorType" && ft.Kind() == reflect.Int8:
			p.coordinatorType = i
		case name == "CoordinatorKey" && ft.Kind() == reflect.String:
			p.coordinatorKey = i
		case name == "CoordinatorKeys" && ft == stringSliceType:
			p.coordinatorKeys = i
		case ft == tagsType:
			// Tagged fields kmsg does not know: nothing to show.
		case ft.Kind() == reflect.Struct,
			ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Struct,
			ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			p.children = append(p.children, i)
		}
	}
	return p
}

func isString(t reflect.Type) bool {
	return t.Kind() == reflect.String || t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.String
}

// str reads a string or *string field; ok is false for a nil pointer.
func str(v reflect.Value) (string, bool) {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return "", false
		}
		v = v.Elem()
	}
	return v.String(), true
}

// resourceTopic is the value of ConfigResourceType and ACLResourceType that
// means "topic" (both define TOPIC = 2).
const resourceTopic = int64(kmsg.ConfigResourceTypeTopic)

// where is the topic and partition a part of a message is about.
type where struct {
	topic     string // the name, or the ID when the message names the topic by ID
	ti        int    // index in KafkaRecord.Topics, -1 when not listed
	partition int32  // -1 outside a partition
}

// walker collects what one decoded request or response shows into the entry.
type walker struct {
	c        *conn
	e        *protocols.Entry
	rec      *protocols.KafkaRecord
	response bool
	byName   map[string]int
	byID     map[string]int
	// countNew says whether topics beyond the list cap count toward
	// TopicCount: for a response they usually repeat the request's.
	countNew bool
	capped   bool
	visits   int
	recs     recordBudget
	// buf holds decompressed records while they are read; pooled.
	buf *bytes.Buffer
}

// describe fills the entry's record from a decoded request or response.
// kmsg decoded with UnsafeReadFrom, so every string kept is cloned.
func (c *conn) describe(e *protocols.Entry, msg any, response bool) {
	rec := e.Kafka
	w := &walker{
		c: c, e: e, rec: rec, response: response,
		byName:   make(map[string]int, len(rec.Topics)),
		byID:     make(map[string]int),
		countNew: !response || rec.TopicCount == 0,
		recs:     newRecordBudget(c.opts),
	}
	for i, t := range rec.Topics {
		if t.Name != "" {
			w.byName[t.Name] = i
		}
		if t.ID != "" {
			w.byID[t.ID] = i
		}
	}
	w.walk(reflect.ValueOf(msg), where{ti: -1, partition: -1})
	c.d.codecs.release(w.buf)
}

func (w *walker) walk(v reflect.Value, at where) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			w.walk(v.Elem(), at)
		}
	case reflect.Slice:
		for i := range v.Len() {
			w.walk(v.Index(i), at)
		}
	case reflect.Struct:
		w.walkStruct(v, at)
	}
}

func (w *walker) walkStruct(v reflect.Value, at where) {
	if w.visits++; w.visits > maxVisits {
		if w.visits == maxVisits+1 {
			w.c.d.count(CountWalkCap)
			w.e.Warn(fmt.Sprintf("only the first %d parts of the message were examined", maxVisits))
		}
		return
	}
	p := w.c.d.planFor(v.Type())
	name, id := "", ""
	if p.topic >= 0 {
		name, _ = str(v.Field(p.topic))
	}
	if p.resourceName >= 0 && p.resourceType >= 0 && v.Field(p.resourceType).Int() == resourceTopic {
		name, _ = str(v.Field(p.resourceName))
	}
	if p.topicID >= 0 {
		var u [16]byte
		reflect.Copy(reflect.ValueOf(u[:]), v.Field(p.topicID))
		if u != ([16]byte{}) {
			id = base64.RawURLEncoding.EncodeToString(u[:])
			if name != "" {
				w.c.d.topics.learn(u, name)
			} else {
				name = w.c.d.topics.name(u)
			}
		}
	}
	if name != "" || id != "" {
		at.ti = w.addTopic(name, id)
		at.topic = strings.Clone(name)
		if name == "" {
			at.topic = id
		}
		at.partition = -1
	}
	if p.partition >= 0 {
		at.partition = int32(v.Field(p.partition).Int())
		w.addPartition(at.ti, at.partition)
	}
	if p.partitions >= 0 {
		for _, part := range v.Field(p.partitions).Interface().([]int32) {
			w.addPartition(at.ti, part)
		}
	}
	if p.topicNames >= 0 {
		for _, t := range v.Field(p.topicNames).Interface().([]string) {
			w.addTopic(t, "")
		}
	}
	if p.group >= 0 && w.rec.GroupID == "" {
		g, _ := str(v.Field(p.group))
		w.rec.GroupID = strings.Clone(g)
	}
	if p.groups >= 0 && w.rec.GroupID == "" {
		if gs := v.Field(p.groups).Interface().([]string); len(gs) > 0 {
			w.rec.GroupID = strings.Clone(gs[0])
		}
	}
	if p.transactional >= 0 && w.rec.TransactionalID == "" {
		t, _ := str(v.Field(p.transactional))
		w.rec.TransactionalID = strings.Clone(t)
	}
	if p.coordinatorType >= 0 {
		w.coordinator(v, p)
	}
	if p.mechanism >= 0 && !w.response {
		w.rec.SASLMechanism = strings.Clone(v.Field(p.mechanism).String())
	}
	if p.saslAuth >= 0 && !w.response {
		w.c.saslAuth(w.e, v.Field(p.saslAuth).Bytes())
	}
	if w.response {
		for _, i := range p.errorCodes {
			if code := int16(v.Field(i).Int()); code != 0 {
				msg := ""
				if p.errorMessage >= 0 {
					msg, _ = str(v.Field(p.errorMessage))
				}
				w.addError(code, at, msg)
			}
		}
	}
	if p.records >= 0 {
		w.recordSet(v.Field(p.records).Bytes(), at)
	}
	for _, i := range p.children {
		w.walk(v.Field(i), at)
	}
}

// coordinator reads the group or transaction a FindCoordinator request is
// about: CoordinatorKey up to v3, the first of CoordinatorKeys from v4.
func (w *walker) coordinator(v reflect.Value, p *plan) {
	key := ""
	if p.coordinatorKey >= 0 {
		key = v.Field(p.coordinatorKey).String()
	}
	if p.coordinatorKeys >= 0 {
		if keys := v.Field(p.coordinatorKeys).Interface().([]string); len(keys) > 0 {
			key = keys[0]
		}
	}
	switch v.Field(p.coordinatorType).Int() {
	case 0:
		if w.rec.GroupID == "" {
			w.rec.GroupID = strings.Clone(key)
		}
	case 1:
		if w.rec.TransactionalID == "" {
			w.rec.TransactionalID = strings.Clone(key)
		}
	}
}

// addTopic lists a topic once and returns its index, or -1 past the cap.
func (w *walker) addTopic(name, id string) int {
	rec := w.rec
	if i, ok := w.byName[name]; ok && name != "" {
		if id != "" && rec.Topics[i].ID == "" {
			rec.Topics[i].ID = id
			w.byID[id] = i
		}
		return i
	}
	if i, ok := w.byID[id]; ok && id != "" {
		if name != "" && rec.Topics[i].Name == "" {
			rec.Topics[i].Name = strings.Clone(name)
			w.byName[rec.Topics[i].Name] = i
		}
		return i
	}
	if name == "" && id == "" {
		return -1
	}
	if len(rec.Topics) >= maxTopics {
		if w.countNew {
			rec.TopicCount++
		}
		w.capHit()
		return -1
	}
	i := len(rec.Topics)
	rec.Topics = append(rec.Topics, protocols.KafkaTopic{Name: strings.Clone(name), ID: id})
	rec.TopicCount++
	if name != "" {
		w.byName[rec.Topics[i].Name] = i
	}
	if id != "" {
		w.byID[id] = i
	}
	return i
}

func (w *walker) addPartition(ti int, part int32) {
	if ti < 0 {
		return
	}
	t := &w.rec.Topics[ti]
	for _, have := range t.Partitions {
		if have == part {
			return
		}
	}
	if len(t.Partitions) >= maxPartitions {
		w.capHit()
		return
	}
	t.Partitions = append(t.Partitions, part)
}

func (w *walker) addError(code int16, at where, msg string) {
	rec := w.rec
	name := errorName(code)
	if rec.ErrorCode == 0 {
		rec.ErrorCode, rec.Error = code, name
	}
	if len(rec.Errors) >= maxErrors {
		w.capHit()
		return
	}
	rec.Errors = append(rec.Errors, protocols.KafkaError{
		Code: code, Name: name, Topic: at.topic, Partition: at.partition, Message: strings.Clone(msg),
	})
}

// capHit counts a list cap once per message and says so in the entry.
func (w *walker) capHit() {
	if w.capped {
		return
	}
	w.capped = true
	w.c.d.count(CountListCap)
	w.e.Warn(fmt.Sprintf("lists capped: at most %d topics, %d partitions per topic and %d errors are shown", maxTopics, maxPartitions, maxErrors))
}

// errorName is an error code's name as Kafka spells it.
func errorName(code int16) string {
	if code == 0 {
		return "NONE"
	}
	e := kerr.TypedErrorForCode(code)
	if e == kerr.UnknownServerError && code != kerr.UnknownServerError.Code {
		return fmt.Sprintf("ERROR_CODE_%d", code)
	}
	return e.Message
}

// saslAuth keeps a SaslAuthenticate token, or only its size when redacting:
// for PLAIN it is the password itself, for SCRAM a proof of it.
func (c *conn) saslAuth(e *protocols.Entry, token []byte) {
	b := &protocols.Body{}
	if c.opts.Redact {
		b.Size = int64(len(token))
		if len(token) > 0 {
			e.Redacted = true
		}
	} else {
		b.Capture(token, c.opts.BodyCap)
	}
	e.Kafka.SASLAuth = b
}

// redactRecords redacts the records an entry shows, in place, and reports
// whether it replaced anything: the values of secret-named record headers
// (an "authorization" header carried to the consumer), and JSON record
// values. Values are read as they were kept, decompressed when their batch
// was compressed.
func redactRecords(rec *protocols.KafkaRecord, p protocols.SecretPolicy) bool {
	changed := false
	for i := range rec.Batches {
		for j := range rec.Batches[i].Records {
			m := &rec.Batches[i].Records[j]
			for k := range m.Headers {
				h := &m.Headers[k]
				if h.Value == nil || len(h.Value.Data) == 0 && h.Value.Size == 0 {
					continue
				}
				if p.IsSecret(h.Name) {
					if string(h.Value.Data) != protocols.Redacted {
						h.Value = &protocols.Body{Size: h.Value.Size, Data: []byte(protocols.Redacted)}
						changed = true
					}
					continue
				}
				if len(p.Patterns) > 0 && p.RedactBody(h.Value, "application/octet-stream") {
					changed = true
				}
			}
			if m.Value != nil && p.RedactBody(m.Value, "") {
				changed = true
			}
		}
	}
	return changed
}
