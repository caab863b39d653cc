package wire

import (
	"bytes"
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
	ErrNoToken = errors.New("token file is empty")
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

// SplitMessage splits a message into its first line (the header, or the
// whole of a hello or an ack) and the entry lines after it. The entries
// alias msg.
func SplitMessage(msg []byte) (header []byte, entries [][]byte) {
	header, rest, found := bytes.Cut(msg, []byte{'\n'})
	if !found {
		return header, nil
	}
	for len(rest) > 0 {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte{'\n'})
		entries = append(entries, line)
	}
	return header, entries
}

// Ack says that every batch up to and including Seq is stored. Stored counts
// the entries of batch Seq that were stored now (0 for a batch resent after it
// had been stored before).
type Ack struct {
	Type   string `json:"type"`
	Seq    uint64 `json:"seq"`
	Stored int    `json:"stored"`
}

// Envelope is decoded first to learn a message's type.
type Envelope struct {
	Type string `json:"type"`
}

// ReadTokenFile reads a bearer token from a file (a mounted Secret), without
// surrounding white space.
func ReadTokenFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading token: %w", err)
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, fmt.Errorf("%s: %w", path, ErrNoToken)
	}
	return b, nil
}
