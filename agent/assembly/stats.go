package assembly

// Stats are an Assembler's counters. Those that lose data are GapBytes (which
// includes MissingBytes), LateBytes, ConnsEvicted and the caps' *Full
// counters; RetransmittedBytes and OverlapConflicts lose nothing that was not
// delivered once.
type Stats struct {
	// Segments and PayloadBytes are what Add was given; MissingBytes are
	// bytes those segments carried on the wire but the capture cut off.
	Segments     uint64 `json:"segments"`
	PayloadBytes uint64 `json:"payload_bytes"`
	MissingBytes uint64 `json:"missing_bytes"`

	// Conns counts streams made; ConnsOpen is how many are open now.
	Conns     uint64 `json:"conns"`
	ConnsOpen int    `json:"conns_open"`

	// DeliveredBytes went to Stream.Data; Gaps and GapBytes to Stream.Gap.
	DeliveredBytes uint64 `json:"delivered_bytes"`
	Gaps           uint64 `json:"gaps"`
	GapBytes       uint64 `json:"gap_bytes"`

	// OutOfOrder counts segments held until the bytes before them came.
	OutOfOrder uint64 `json:"out_of_order_segments"`
	// RetransmittedBytes arrived again, where bytes had been delivered, given
	// up on, or held already; the first copy was kept.
	RetransmittedBytes uint64 `json:"retransmitted_bytes"`
	// OverlapConflicts counts overlaps with held bytes that differed.
	OverlapConflicts uint64 `json:"overlap_conflicts"`
	// KeepAlives counts segments of at most one byte just behind the stream.
	KeepAlives uint64 `json:"keepalives"`
	// LateBytes came after that side's FIN or after the connection closed,
	// and were ignored.
	LateBytes uint64 `json:"late_bytes"`
	// Unattached counts segments without data or SYN for no known
	// connection (the ACKs, FINs and RSTs of connections seen no further).
	Unattached uint64 `json:"unattached_segments"`
	// PortReuses counts SYNs that ended a connection to start a new one on
	// the same 4-tuple.
	PortReuses uint64 `json:"port_reuses"`

	// ConnsEvicted were closed to stay within MaxConns; ConnsExpired were
	// closed after IdleTimeout without a segment.
	ConnsEvicted uint64 `json:"conns_evicted"`
	ConnsExpired uint64 `json:"conns_expired"`
	// ConnBufferFull, SegmentsFull and TotalBufferFull count the holes given
	// up on (reported as a Gap) because MaxBufferedPerConn,
	// MaxSegmentsPerConn or MaxBufferedTotal would have been passed;
	// HoleTimeouts those given up on after IdleTimeout.
	ConnBufferFull  uint64 `json:"conn_buffer_full"`
	SegmentsFull    uint64 `json:"segments_full"`
	TotalBufferFull uint64 `json:"total_buffer_full"`
	HoleTimeouts    uint64 `json:"hole_timeouts"`

	// BufferedBytes (charged as the caps count them) and HeldSegments are
	// held now.
	BufferedBytes int `json:"buffered_bytes"`
	HeldSegments  int `json:"held_segments"`
}
