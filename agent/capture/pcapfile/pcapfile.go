package pcapfile

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/sondehq/sonde/agent/packet"
)

var (
	// ErrNotCapture: the file starts with neither a pcap nor a pcapng magic number.
	ErrNotCapture = errors.New("not a pcap or pcapng capture")
	// ErrTruncated: the file ends in the middle of a record.
	ErrTruncated = errors.New("capture file is truncated")
	// ErrUnsupportedLink: the capture's link type is not one Sonde decodes.
	ErrUnsupportedLink = errors.New("unsupported link type")
)

// MaxFrame is the largest record the reader accepts. pcapgo already refuses
// records longer than the file's snap length; this bounds files that declare
// a huge one.
const MaxFrame = 256 << 10

// Frame is one captured link-layer frame.
type Frame struct {
	Data    []byte
	WireLen int
	Time    time.Time
	Link    packet.LinkType
}

type packetReader interface {
	ZeroCopyReadPacketData() ([]byte, gopacket.CaptureInfo, error)
}

// Reader reads the frames of one capture file.
type Reader struct {
	f    *os.File
	r    packetReader
	link func(ci gopacket.CaptureInfo) (packet.LinkType, error)
}

// Open opens a pcap or pcapng file.
func Open(path string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	r, err := newReader(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	r.f = f
	return r, nil
}

func newReader(f io.Reader) (*Reader, error) {
	br := bufio.NewReaderSize(f, 256<<10)
	magic, err := br.Peek(4)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: the file is empty or shorter than a file header", ErrNotCapture)
		}
		return nil, err
	}
	switch {
	case bytes.Equal(magic, []byte{0x0a, 0x0d, 0x0d, 0x0a}):
		ng, err := pcapgo.NewNgReader(br, pcapgo.NgReaderOptions{WantMixedLinkType: true, SkipUnknownVersion: true})
		if err != nil {
			return nil, headerError(err)
		}
		r := &Reader{r: ng}
		r.link = func(ci gopacket.CaptureInfo) (packet.LinkType, error) {
			iface, err := ng.Interface(ci.InterfaceIndex)
			if err != nil {
				return 0, fmt.Errorf("packet names interface %d: %w", ci.InterfaceIndex, err)
			}
			return linkType(iface.LinkType)
		}
		return r, nil
	case isPcapMagic(magic):
		pr, err := pcapgo.NewReader(br)
		if err != nil {
			return nil, headerError(err)
		}
		lt, err := linkType(pr.LinkType())
		if err != nil {
			return nil, err
		}
		if pr.Snaplen() > MaxFrame {
			// Records are still checked against MaxFrame one by one.
			pr.SetSnaplen(MaxFrame)
		}
		return &Reader{r: pr, link: func(gopacket.CaptureInfo) (packet.LinkType, error) { return lt, nil }}, nil
	default:
		return nil, ErrNotCapture
	}
}

func headerError(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: the file header is cut short", ErrTruncated)
	}
	return fmt.Errorf("%w: %v", ErrNotCapture, err)
}

func isPcapMagic(m []byte) bool {
	for _, want := range [][]byte{
		{0xd4, 0xc3, 0xb2, 0xa1}, {0xa1, 0xb2, 0xc3, 0xd4}, // microseconds
		{0x4d, 0x3c, 0xb2, 0xa1}, {0xa1, 0xb2, 0x3c, 0x4d}, // nanoseconds
	} {
		if bytes.Equal(m, want) {
			return true
		}
	}
	return false
}

func linkType(lt layers.LinkType) (packet.LinkType, error) {
	switch lt {
	case layers.LinkTypeEthernet:
		return packet.LinkEthernet, nil
	case layers.LinkTypeLinuxSLL:
		return packet.LinkLinuxSLL, nil
	case layers.LinkTypeLinuxSLL2:
		return packet.LinkLinuxSLL2, nil
	case layers.LinkTypeRaw, 12, 14: // DLT_RAW differs across platforms
		return packet.LinkRaw, nil
	case layers.LinkTypeIPv4:
		return packet.LinkIPv4, nil
	case layers.LinkTypeIPv6:
		return packet.LinkIPv6, nil
	case layers.LinkTypeNull:
		return packet.LinkNull, nil
	case layers.LinkTypeLoop:
		return packet.LinkLoop, nil
	}
	return 0, fmt.Errorf("%w %s (%d)", ErrUnsupportedLink, lt, int(lt))
}

// Next returns the next frame, io.EOF at the end of the file, or
// ErrTruncated when the file ends inside a record.
func (r *Reader) Next() (Frame, error) {
	data, ci, err := r.r.ZeroCopyReadPacketData()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return Frame{}, io.EOF
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return Frame{}, ErrTruncated
		}
		return Frame{}, fmt.Errorf("reading record: %w", err)
	}
	if len(data) > MaxFrame {
		return Frame{}, fmt.Errorf("a record of %d bytes exceeds the %d-byte limit", len(data), MaxFrame)
	}
	lt, err := r.link(ci)
	if err != nil {
		return Frame{}, err
	}
	wire := ci.Length
	if wire < len(data) {
		wire = len(data)
	}
	return Frame{Data: data, WireLen: wire, Time: ci.Timestamp, Link: lt}, nil
}

// Close closes the file.
func (r *Reader) Close() error {
	if r.f == nil {
		return nil
	}
	return r.f.Close()
}
