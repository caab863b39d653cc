package wire

import "strings"

// Counter is one of the running totals an agent reports with every batch
// (BatchHeader.Counters). Loss says whether a non-zero value means traffic
// that Sonde could not show: packets or bytes that never reached a
// dissector, entries that never reached the hub. Counters that are not loss
// measure work done (packets seen, connections followed, entries made).
type Counter struct {
	Name string `json:"name"`
	Loss bool   `json:"loss"`
	Doc  string `json:"doc"`
}

// The names of the agent's own counters, as the hub, the UI and /metrics
// show them.
const (
	CaptureSeen      = "capture_seen"
	CaptureFiltered  = "capture_filtered"
	CaptureCaptured  = "capture_captured"
	CaptureLost      = "capture_lost"
	CaptureLostBytes = "capture_lost_bytes"
	CaptureTruncated = "capture_truncated"
	CaptureDelivered = "capture_delivered"
	CaptureMalformed = "capture_malformed"

	Connections          = "connections"
	Gaps                 = "gaps"
	GapBytes             = "gap_bytes"
	EntriesWithGap       = "entries_with_gap"
	Unmatched            = "unmatched"
	OpaqueConnections    = "opaque_connections"
	Undetected           = "undetected"
	ConnsEvicted         = "conns_evicted"
	ReassemblyBufferFull = "reassembly_buffer_full"
	LeftoverOverflows    = "leftover_overflows"
	NATTwins             = "nat_twins"
	Entries              = "entries"

	EmitDropped    = "emit_dropped"
	EmitOversize   = "emit_oversize"
	EmitReconnects = "emit_reconnects"

	// ParseErrorPrefix starts the name of each parse-error counter,
	// parse_error_<code>: connections made opaque by the check that failed.
	ParseErrorPrefix = "parse_error_"
)

// agentCounters is the table of the agent's own counters. A dissector's
// counters (<protocol>_<name>) come on top, declared by its protocol
// (protocols.CounterNames), those that count loss named in the agent's
// Hello.
var agentCounters = []Counter{
	{CaptureSeen, false, "packets the TC program saw on the captured interfaces"},
	{CaptureFiltered, false, "packets the TC program passed over (not TCP, or not a targeted pod)"},
	{CaptureCaptured, false, "packets the TC program copied into the ring buffer"},
	{CaptureLost, true, "packets selected but dropped because the ring buffer was full"},
	{CaptureLostBytes, true, "payload bytes of the packets counted by capture_lost"},
	{CaptureTruncated, true, "packets whose payload was cut at the snap length"},
	{CaptureDelivered, false, "packets read from the ring buffer by the agent"},
	{CaptureMalformed, true, "records in the ring buffer that could not be decoded"},
	{Connections, false, "TCP connections followed"},
	{Gaps, true, "holes in a TCP byte stream handed to a dissector"},
	{GapBytes, true, "bytes missing in those holes"},
	{EntriesWithGap, true, "entries marked gap: a hole touched the exchange"},
	{Unmatched, true, "entries whose request or response was never seen"},
	{OpaqueConnections, false, "connections no dissector could read (parse error or undetected)"},
	{Undetected, false, "connections in no protocol Sonde reads"},
	{ConnsEvicted, true, "connections closed early to stay within the connection limit"},
	{ReassemblyBufferFull, true, "out-of-order data given up on because a reassembly bound was reached"},
	{LeftoverOverflows, true, "unconsumed bytes dropped because a dissector held more than its cap"},
	{NATTwins, false, "connections seen again after DNAT on a second interface; shown once"},
	{Entries, false, "entries the dissectors made"},
	{EmitDropped, true, "entries dropped because the agent's send buffer was full (oldest first)"},
	{EmitOversize, true, "entries too large for a batch, sent cut: payloads shortened, or only the summary"},
	{EmitReconnects, false, "times the agent reconnected to the hub"},
}

// AgentCounters returns the table of the agent's own counters.
func AgentCounters() []Counter {
	out := make([]Counter, len(agentCounters))
	copy(out, agentCounters)
	return out
}

// IsAgentCounter reports whether name is one of the agent's own counters
// (the table above), as opposed to a dissector's.
func IsAgentCounter(name string) bool {
	for _, c := range agentCounters {
		if c.Name == name {
			return true
		}
	}
	return false
}

// IsLoss reports whether the agent counter of that name counts loss. A
// dissector's counter is loss when the agent's Hello names it so (Hello.Loss);
// a parse-error counter is not, since its connection is counted as opaque.
func IsLoss(name string, hello *Hello) bool {
	for _, c := range agentCounters {
		if c.Name == name {
			return c.Loss
		}
	}
	if strings.HasPrefix(name, ParseErrorPrefix) || hello == nil {
		return false
	}
	for _, l := range hello.Loss {
		if l == name {
			return true
		}
	}
	return false
}
