package runner

import (
	"github.com/sondehq/sonde/agent/capture/live"
	"github.com/sondehq/sonde/agent/pipeline"
	"github.com/sondehq/sonde/protocols/wire"
)

// Counters flattens a capture's and a pipeline's counters under the stable
// names of protocols/wire, as the hub and the metrics show them.
func Counters(c live.Stats, p pipeline.Stats) map[string]uint64 {
	m := map[string]uint64{
		wire.CaptureSeen:          c.Seen,
		wire.CaptureFiltered:      c.Filtered,
		wire.CaptureCaptured:      c.Captured,
		wire.CaptureLost:          c.Lost,
		wire.CaptureLostBytes:     c.LostBytes,
		wire.CaptureTruncated:     c.Truncated,
		wire.CaptureDelivered:     c.Delivered,
		wire.CaptureMalformed:     c.Malformed,
		wire.Connections:          p.Connections,
		wire.Gaps:                 p.Gaps,
		wire.GapBytes:             p.Assembly.GapBytes,
		wire.EntriesWithGap:       p.EntriesWithGap,
		wire.Unmatched:            p.Unmatched,
		wire.OpaqueConnections:    p.OpaqueConns,
		wire.Undetected:           p.Undetected,
		wire.ConnsEvicted:         p.Assembly.ConnsEvicted,
		wire.ReassemblyBufferFull: p.Assembly.ConnBufferFull + p.Assembly.SegmentsFull + p.Assembly.TotalBufferFull,
		wire.LeftoverOverflows:    p.LeftoverOverflows,
		wire.NATTwins:             p.NATTwins,
	}
	var entries uint64
	for _, n := range p.Entries {
		entries += n
	}
	m[wire.Entries] = entries
	for code, n := range p.ParseErrors {
		m[wire.ParseErrorPrefix+code] = n
	}
	for k, n := range p.Protocol {
		m[k] = n
	}
	return m
}
