package pipeline

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/sondehq/sonde/agent/capture/pcapfile"
	"github.com/sondehq/sonde/agent/packet"
	"github.com/sondehq/sonde/protocols"
)

// CaptureStats counts what a source read before the assembly.
type CaptureStats struct {
	Packets   uint64 `json:"packets"`
	WireBytes uint64 `json:"wire_bytes"`
	// NotTCP counts frames without a TCP segment (ARP, UDP, fragments...).
	NotTCP uint64 `json:"not_tcp"`
	// Undecodable counts frames whose headers could not be decoded.
	Undecodable uint64 `json:"undecodable"`
	// SnapCut counts TCP payload bytes that were on the wire but not captured.
	SnapCut uint64 `json:"snap_cut_bytes"`
}

// Frames feeds link-layer frames to a pipeline, keeping one decoder per link type.
type Frames struct {
	p        *Pipeline
	decoders map[packet.LinkType]*packet.Decoder
	seg      packet.Segment
	stats    CaptureStats
}

// NewFrames returns a frame feeder for p.
func NewFrames(p *Pipeline) *Frames {
	return &Frames{p: p, decoders: map[packet.LinkType]*packet.Decoder{}}
}

// Frame decodes one frame and, when it carries TCP, processes the segment.
func (f *Frames) Frame(data []byte, wireLen int, ts time.Time, lt packet.LinkType) {
	f.stats.Packets++
	f.stats.WireBytes += uint64(wireLen)
	d := f.decoders[lt]
	if d == nil {
		var err error
		if d, err = packet.NewDecoder(lt); err != nil {
			f.stats.Undecodable++
			return
		}
		f.decoders[lt] = d
	}
	if err := d.Decode(data, wireLen, ts, &f.seg); err != nil {
		if errors.Is(err, packet.ErrNotTCP) {
			f.stats.NotTCP++
		} else {
			f.stats.Undecodable++
		}
		return
	}
	f.stats.SnapCut += uint64(f.seg.Missing)
	f.p.Segment(&f.seg)
}

// Stats returns the capture counters.
func (f *Frames) Stats() CaptureStats { return f.stats }

// FileStats is what running a capture file produced.
type FileStats struct {
	Capture  CaptureStats `json:"capture"`
	Pipeline Stats        `json:"pipeline"`
}

// RunFile runs a pcap or pcapng file through a new pipeline, handing each
// entry to emit. On a truncated file it processes what it could read, then
// returns an error wrapping pcapfile.ErrTruncated with the stats.
func RunFile(path string, cfg Config, emit protocols.EmitFunc) (FileStats, error) {
	r, err := pcapfile.Open(path)
	if err != nil {
		return FileStats{}, err
	}
	defer r.Close()
	if cfg.Source == "" {
		cfg.Source = "pcap"
	}
	p := New(cfg, emit)
	frames := NewFrames(p)
	var last time.Time
	var readErr error
	for {
		fr, err := r.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				readErr = fmt.Errorf("after %d packets: %w", frames.stats.Packets, err)
			}
			break
		}
		if fr.Time.After(last) {
			last = fr.Time
		}
		frames.Frame(fr.Data, fr.WireLen, fr.Time, fr.Link)
	}
	p.Close(last)
	return FileStats{Capture: frames.Stats(), Pipeline: p.Stats()}, readErr
}

// ReadFile runs a capture file and returns its entries in the order they
// were emitted.
func ReadFile(path string, cfg Config) ([]*protocols.Entry, FileStats, error) {
	var out []*protocols.Entry
	st, err := RunFile(path, cfg, func(e *protocols.Entry) { out = append(out, e) })
	return out, st, err
}
