package pipeline

import (
	"github.com/sondehq/sonde/agent/assembly"
	"github.com/sondehq/sonde/protocols"
)

// Stats counts what the pipeline saw, made and could not read.
type Stats struct {
	// Connections is how many TCP connections were opened (seen).
	Connections uint64 `json:"connections"`
	// Bytes is the TCP payload delivered in order by the assembly.
	Bytes uint64 `json:"bytes"`
	// Gaps counts holes in byte streams (missing bytes handed to parsers).
	Gaps uint64 `json:"gaps"`
	// Entries counts emitted entries by protocol.
	Entries        map[protocols.Protocol]uint64 `json:"entries"`
	EntriesWithGap uint64                        `json:"entries_with_gap"`
	Unmatched      uint64                        `json:"unmatched"`
	// OpaqueConns are connections whose bytes no parser read to the end:
	// Undetected ones were claimed by no dissector (after an upgrade to a
	// protocol Sonde does not read, too); the rest failed to parse (ParseErrors).
	OpaqueConns uint64 `json:"opaque_connections"`
	OpaqueBytes uint64 `json:"opaque_bytes"`
	Undetected  uint64 `json:"undetected"`
	// NATTwins counts connections seen a second time on another interface
	// after DNAT (a service IP); their entries appear once, with Via set, and
	// NATTwinBytes are the second copy's bytes, not dissected again.
	NATTwins     uint64 `json:"nat_twins"`
	NATTwinBytes uint64 `json:"nat_twin_bytes"`
	// Upgrades counts connections that switched protocols (h2c, websocket,
	// CONNECT tunnels); what follows is detected afresh.
	Upgrades uint64 `json:"upgrades"`
	// ParseErrors counts connections made opaque, by the parser's error code.
	ParseErrors map[string]uint64 `json:"parse_errors"`
	// Protocol holds the dissectors' own counters (see protocols.Counters).
	Protocol map[string]uint64 `json:"protocol"`
	// LeftoverOverflows counts parsers that held more than MaxLeftover unconsumed.
	LeftoverOverflows uint64         `json:"leftover_overflows"`
	Assembly          assembly.Stats `json:"assembly"`
}
