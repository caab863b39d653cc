package entryjson

import (
	"encoding/binary"
	stdjson "encoding/json"
	"fmt"
	"slices"
	"strconv"

	"github.com/sondehq/sonde/protocols"
)

// Additions are what the hub adds to an entry line it stores as the agent
// wrote it: its ID (given when Merge is called), the endpoints it named, and
// the node and capture source of the agent's hello where the line has none.
type Additions struct {
	// At is where the line's ID and endpoints are (from Scan or Decode).
	At Spans
	// Src, Dst and Via, when set, replace the line's endpoints.
	Src, Dst, Via *protocols.Endpoint
	// Node and Source, when set, are the entry's node and capture source.
	Node, Source string
}

// Overlay flags: which additions follow the ID's span.
const (
	hasSrc = 1 << iota
	hasDst
	hasVia
	hasNode
	hasSource
	// reencode: the line is decoded and encoded again with the additions,
	// since they cannot be spliced in (a node or source the line lacks goes
	// where encoding/json puts it; a named endpoint the line has no span
	// for).
	reencode
)

// AppendOverlay appends the overlay of a (see Merge) to dst. The overlay
// is binary: a flags byte; the ID's span (two uvarints); for each of src,
// dst and via that is named, its span and the endpoint (address as a uvarint
// length and netip.Addr's binary form, a uvarint port, then pod, namespace, service,
// workload and node, each a uvarint length and bytes); then node and source
// when set, as strings.
func AppendOverlay(dst []byte, a *Additions) []byte {
	var flags byte
	eps := [3]struct {
		ep   *protocols.Endpoint
		at   Span
		flag byte
	}{{a.Src, a.At.Src, hasSrc}, {a.Dst, a.At.Dst, hasDst}, {a.Via, a.At.Via, hasVia}}
	for _, e := range eps {
		if e.ep != nil {
			flags |= e.flag
			if e.at == (Span{}) {
				flags |= reencode
			}
		}
	}
	if a.Node != "" {
		flags |= hasNode | reencode
	}
	if a.Source != "" {
		flags |= hasSource | reencode
	}
	dst = append(dst, flags)
	dst = binary.AppendUvarint(dst, uint64(a.At.ID.Start))
	dst = binary.AppendUvarint(dst, uint64(a.At.ID.End))
	for _, e := range eps {
		if e.ep == nil {
			continue
		}
		dst = binary.AppendUvarint(dst, uint64(e.at.Start))
		dst = binary.AppendUvarint(dst, uint64(e.at.End))
		ip, _ := e.ep.IP.MarshalBinary() // never fails; keeps an IPv6 zone
		dst = appendBytes(dst, ip)
		dst = binary.AppendUvarint(dst, uint64(e.ep.Port))
		for _, s := range [...]string{e.ep.Pod, e.ep.Namespace, e.ep.Service, e.ep.Workload, e.ep.Node} {
			dst = appendBytes(dst, []byte(s))
		}
	}
	if a.Node != "" {
		dst = appendBytes(dst, []byte(a.Node))
	}
	if a.Source != "" {
		dst = appendBytes(dst, []byte(a.Source))
	}
	return dst
}

func appendBytes(dst, b []byte) []byte {
	return append(binary.AppendUvarint(dst, uint64(len(b))), b...)
}

// overlayReader reads an overlay in a straight line; err is sticky.
type overlayReader struct {
	p   []byte
	err bool
}

func (r *overlayReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.p)
	if n <= 0 {
		r.err, r.p = true, nil
		return 0
	}
	r.p = r.p[n:]
	return v
}

func (r *overlayReader) bytes() []byte {
	l := r.uvarint()
	if l > uint64(len(r.p)) {
		r.err, r.p = true, nil
		return nil
	}
	b := r.p[:l]
	r.p = r.p[l:]
	return b
}

// span reads a span and checks that it lies in a line of n bytes.
func (r *overlayReader) span(n int) Span {
	s, e := r.uvarint(), r.uvarint()
	if s > e || e > uint64(n) {
		r.err = true
		return Span{}
	}
	return Span{Start: int(s), End: int(e)}
}

func (r *overlayReader) endpoint(ep *protocols.Endpoint) {
	if ep.IP.UnmarshalBinary(r.bytes()) != nil {
		r.err = true
	}
	port := r.uvarint()
	r.err = r.err || port > 0xffff
	ep.Port = uint16(port)
	for _, s := range [...]*string{&ep.Pod, &ep.Namespace, &ep.Service, &ep.Workload, &ep.Node} {
		*s = string(r.bytes())
	}
}

// Merge appends to dst the entry as the hub serves it: line, as the agent
// wrote it, with the additions of overlay (from AppendOverlay) and the ID id.
// The ID and named endpoints are spliced into the line in one pass; only
// what cannot be spliced (a node or source from the agent's hello) makes it
// decode and encode the entry. An empty overlay means that line is served
// as it is.
func Merge(dst, line, overlay []byte, id uint64) ([]byte, error) {
	if len(overlay) == 0 {
		return append(dst, line...), nil
	}
	r := overlayReader{p: overlay[1:]}
	flags := overlay[0]
	idAt := r.span(len(line))
	type splice struct {
		at Span
		ep protocols.Endpoint
	}
	var parts [3]splice
	n := 0
	for _, f := range [...]byte{hasSrc, hasDst, hasVia} {
		if flags&f != 0 {
			parts[n].at = r.span(len(line))
			r.endpoint(&parts[n].ep)
			n++
		}
	}
	var node, source string
	if flags&hasNode != 0 {
		node = string(r.bytes())
	}
	if flags&hasSource != 0 {
		source = string(r.bytes())
	}
	if r.err {
		return dst, errOverlay
	}
	if flags&reencode != 0 {
		e := new(protocols.Entry)
		if err := stdjson.Unmarshal(line, e); err != nil {
			return dst, fmt.Errorf("decoding a stored entry: %w", err)
		}
		e.ID = strconv.FormatUint(id, 10)
		if node != "" {
			e.Node = node
		}
		if source != "" {
			e.Source = source
		}
		i := 0
		for _, f := range [...]byte{hasSrc, hasDst, hasVia} {
			if flags&f == 0 {
				continue
			}
			switch f {
			case hasSrc:
				e.Src = parts[i].ep
			case hasDst:
				e.Dst = parts[i].ep
			case hasVia:
				e.Via = &parts[i].ep
			}
			i++
		}
		b, err := stdjson.Marshal(e)
		if err != nil {
			return dst, fmt.Errorf("encoding a stored entry: %w", err)
		}
		return append(dst, b...), nil
	}
	ends := parts[:n]
	// In the order they appear in the line, which the agent chose.
	slices.SortFunc(ends, func(a, b splice) int { return a.at.Start - b.at.Start })
	from := 0
	writeID := func() {
		dst = append(dst, line[from:idAt.Start]...)
		if idAt.Start == idAt.End { // the line has none: the ID goes first
			dst = append(dst, `"id":"`...)
			dst = strconv.AppendUint(dst, id, 10)
			dst = append(dst, `",`...)
		} else {
			dst = append(dst, '"')
			dst = strconv.AppendUint(dst, id, 10)
			dst = append(dst, '"')
		}
		from = idAt.End
	}
	idDone := false
	for i := range ends {
		p := &ends[i]
		if !idDone && idAt.Start <= p.at.Start {
			writeID()
			idDone = true
		}
		if p.at.Start < from {
			return dst, errOverlay // overlapping spans
		}
		dst = append(dst, line[from:p.at.Start]...)
		var err error
		if dst, err = appendEndpoint(dst, &p.ep); err != nil {
			return dst, fmt.Errorf("encoding an endpoint: %w", err)
		}
		from = p.at.End
	}
	if !idDone {
		if idAt.Start < from {
			return dst, errOverlay
		}
		writeID()
	}
	return append(dst, line[from:]...), nil
}
