package wire

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
)

// Path is where the hub accepts agents.
const Path = "/api/v1/ingest"

// MaxMessageBytes is the largest message the hub reads from an agent by
// default. Senders keep batches well below it (see agent/emit).
const MaxMessageBytes = 8 << 20

// Message types.
const (
	TypeHello = "hello"
	TypeBatch = "batch"
	TypeAck   = "ack"
)

var (
	// ErrNoToken means a token file was empty.
	ErrNoToken = errors.New("the token file is empty")
	// ErrShortToken means a token is too short to withstand guessing.
	ErrShortToken = fmt.Errorf("the token is shorter than %d bytes: use a random one (for example: head -c 32 /dev/urandom | base64)", MinTokenBytes)
	// ErrNewline: an entry's JSON spans lines; encode it with json.Marshal.
	ErrNewline = errors.New("an entry's JSON must be one line")
)

// Hello introduces an agent; it is the first message on every connection.
type Hello struct {
	Type string `json:"type"`
	// AgentID is unique per agent process; batch numbers count within it.
	AgentID string `json:"agent_id"`
	Node    string `json:"node"`
	Version string `json:"version"`
	// Source is the capture source: "ebpf", "afpacket" or "pcap".
	Source string `json:"source"`
	// Loss names the dissectors' counters that count loss (see IsLoss); the
	// agent's own counters are named in AgentCounters.
	Loss []string `json:"loss,omitempty"`
}

// Message is any message an agent sends, decoded in one pass: a Hello, or
// a batch's header line.
type Message struct {
	Hello
	Seq      uint64            `json:"seq"`
	Counters map[string]uint64 `json:"counters"`
}

// BatchHeader is the first line of a batch message. Counters, when set, are
// the agent's running totals (capture loss, parse errors, entries dropped
// while the hub was away), which the hub shows per agent.
type BatchHeader struct {
	Type     string            `json:"type"`
	Seq      uint64            `json:"seq"`
	Counters map[string]uint64 `json:"counters,omitempty"`
}

// AppendBatch appends a batch message to dst: the header line, then each
// entry's JSON (as json.Marshal makes it: one line) on a line of its own.
func AppendBatch(dst []byte, seq uint64, counters map[string]uint64, entries ...[]byte) ([]byte, error) {
	h, err := json.Marshal(BatchHeader{Type: TypeBatch, Seq: seq, Counters: counters})
	if err != nil {
		return dst, fmt.Errorf("encoding batch header: %w", err)
	}
	dst = append(dst, h...)
	for _, e := range entries {
		if bytes.IndexByte(e, '\n') >= 0 {
			return dst, ErrNewline
		}
		dst = append(append(dst, '\n'), e...)
	}
	return dst, nil
}

// Ack says that every batch up to and including Seq is stored. Stored counts
// the entries of batch Seq that were stored now (0 for a batch resent after it
// had been stored before).
type Ack struct {
	Type   string `json:"type"`
	Seq    uint64 `json:"seq"`
	Stored int    `json:"stored"`
}

// MinTokenBytes is the shortest bearer token accepted: 16 bytes of a random
// token are 96 bits or more, past any guessing over the network.
const MinTokenBytes = 16

// ReadTokenFile reads a bearer token from a file (a mounted Secret), without
// surrounding white space, and refuses one shorter than MinTokenBytes.
func ReadTokenFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the token: %w", err)
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, fmt.Errorf("%s: %w", path, ErrNoToken)
	}
	if len(b) < MinTokenBytes {
		return nil, fmt.Errorf("%s: %w", path, ErrShortToken)
	}
	return b, nil
}

// ErrFraming: a binary batch's entries are not (index record, JSON) pairs.
var ErrFraming = errors.New("an indexed entry must be a record and a JSON line, each after its length")

// AppendIndexed appends one entry of an indexed batch to dst: its index
// record and its JSON, each after its length as a uvarint.
func AppendIndexed(dst, record, entry []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(record)))
	dst = append(dst, record...)
	dst = binary.AppendUvarint(dst, uint64(len(entry)))
	return append(dst, entry...)
}

// NextIndexed reads the first entry of an indexed batch's body; record and
// entry alias p.
func NextIndexed(p []byte) (record, entry, rest []byte, err error) {
	record, p, err = lengthPrefixed(p)
	if err != nil {
		return nil, nil, nil, err
	}
	entry, p, err = lengthPrefixed(p)
	if err != nil {
		return nil, nil, nil, err
	}
	return record, entry, p, nil
}

func lengthPrefixed(p []byte) (v, rest []byte, err error) {
	n, w := binary.Uvarint(p)
	if w <= 0 || uint64(len(p)-w) < n {
		return nil, nil, ErrFraming
	}
	return p[w : w+int(n)], p[w+int(n):], nil
}
