package wire

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"github.com/sondehq/sonde/protocols"
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

// Batch carries entries. Counters, when set, are the agent's running totals
// (capture loss, parse errors, entries dropped while the hub was away), which
// the hub shows per agent.
type Batch struct {
	Type     string             `json:"type"`
	Seq      uint64             `json:"seq"`
	Entries  []*protocols.Entry `json:"entries"`
	Counters map[string]uint64  `json:"counters,omitempty"`
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
