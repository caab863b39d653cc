package packet

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Flags are the TCP flags the assembly acts on.
type Flags uint8

const (
	FIN Flags = 1 << iota
	SYN
	RST
	ACK
)

// Segment is one TCP segment.
type Segment struct {
	Time     time.Time
	Src, Dst netip.AddrPort
	Seq, Ack uint32
	Flags    Flags
	// Payload is the TCP payload that was captured.
	Payload []byte
	// Missing counts payload bytes that were on the wire but not captured (a
	// snap length cut the packet short). They follow Payload.
	Missing int
}

// LinkType is the framing a source's packets start with.
type LinkType uint8

const (
	LinkEthernet LinkType = iota
	LinkLinuxSLL
	LinkLinuxSLL2
	LinkRaw // IPv4 or IPv6 by the version nibble
	LinkNull
	LinkLoop
	LinkIPv4
	LinkIPv6
)

// ErrNotTCP means the frame was decoded but carries no TCP segment (ARP, UDP,
// ICMP, a fragment). Sources count these, they are not an error of the capture.
var ErrNotTCP = errors.New("not a tcp segment")

// Decoder decodes frames of one link type.
type Decoder struct {
	// parsers are keyed by the first layer: one for most link types, one
	// per IP version for raw IP.
	parsers map[gopacket.LayerType]*gopacket.DecodingLayerParser
	decoded []gopacket.LayerType
	eth     layers.Ethernet
	sll     layers.LinuxSLL
	sll2    layers.LinuxSLL2
	loop    layers.Loopback
	dot1q   layers.Dot1Q
	ip4     layers.IPv4
	ip6     layers.IPv6
	tcp     layers.TCP
	first   gopacket.LayerType
}

// NewDecoder returns a decoder for frames of link type lt.
func NewDecoder(lt LinkType) (*Decoder, error) {
	d := &Decoder{}
	switch lt {
	case LinkEthernet:
		d.first = layers.LayerTypeEthernet
	case LinkLinuxSLL:
		d.first = layers.LayerTypeLinuxSLL
	case LinkLinuxSLL2:
		d.first = layers.LayerTypeLinuxSLL2
	case LinkNull, LinkLoop:
		d.first = layers.LayerTypeLoopback
	case LinkIPv4:
		d.first = layers.LayerTypeIPv4
	case LinkIPv6:
		d.first = layers.LayerTypeIPv6
	case LinkRaw:
		d.first = gopacket.LayerTypeZero // chosen per frame from the version nibble
	default:
		return nil, fmt.Errorf("link type %d is not supported", lt)
	}
	d.parsers = make(map[gopacket.LayerType]*gopacket.DecodingLayerParser, 2)
	d.decoded = make([]gopacket.LayerType, 0, 8)
	return d, nil
}

func (d *Decoder) parser(first gopacket.LayerType) *gopacket.DecodingLayerParser {
	p := d.parsers[first]
	if p == nil {
		p = gopacket.NewDecodingLayerParser(first,
			&d.eth, &d.sll, &d.sll2, &d.loop, &d.dot1q, &d.ip4, &d.ip6, &d.tcp)
		// Unknown next layers (UDP, ARP, payload) end decoding without an error.
		p.IgnoreUnsupported = true
		d.parsers[first] = p
	}
	return p
}

// Decode decodes one captured frame. wireLen is the frame's length on the
// wire; when the capture kept fewer bytes, the difference shows up as
// Segment.Missing. It returns ErrNotTCP for frames without a TCP segment.
func (d *Decoder) Decode(frame []byte, wireLen int, ts time.Time, seg *Segment) error {
	first := d.first
	if first == gopacket.LayerTypeZero {
		if len(frame) == 0 {
			return ErrNotTCP
		}
		switch frame[0] >> 4 {
		case 4:
			first = layers.LayerTypeIPv4
		case 6:
			first = layers.LayerTypeIPv6
		default:
			return ErrNotTCP
		}
	}
	// A truncated frame is expected (snap length); the layers decode what is there.
	if err := d.parser(first).DecodeLayers(frame, &d.decoded); err != nil {
		return fmt.Errorf("decoding frame: %w", err)
	}
	var haveIP, haveTCP bool
	var ipPayloadLen int // payload length per the IP header, -1 when unknown
	for _, lt := range d.decoded {
		switch lt {
		case layers.LayerTypeIPv4:
			if d.ip4.Flags&layers.IPv4MoreFragments != 0 || d.ip4.FragOffset != 0 {
				return ErrNotTCP
			}
			seg.Src = netip.AddrPortFrom(addr4(d.ip4.SrcIP), 0)
			seg.Dst = netip.AddrPortFrom(addr4(d.ip4.DstIP), 0)
			ipPayloadLen = int(d.ip4.Length) - int(d.ip4.IHL)*4
			haveIP = true
		case layers.LayerTypeIPv6:
			seg.Src = netip.AddrPortFrom(addr16(d.ip6.SrcIP), 0)
			seg.Dst = netip.AddrPortFrom(addr16(d.ip6.DstIP), 0)
			ipPayloadLen = int(d.ip6.Length)
			if d.ip6.Length == 0 { // jumbogram or TSO super-packet: trust the capture
				ipPayloadLen = -1
			}
			haveIP = true
		case layers.LayerTypeTCP:
			haveTCP = true
		}
	}
	if !haveIP || !haveTCP {
		return ErrNotTCP
	}
	t := &d.tcp
	seg.Time = ts
	seg.Src = netip.AddrPortFrom(seg.Src.Addr(), uint16(t.SrcPort))
	seg.Dst = netip.AddrPortFrom(seg.Dst.Addr(), uint16(t.DstPort))
	seg.Seq, seg.Ack = t.Seq, t.Ack
	seg.Flags = 0
	if t.FIN {
		seg.Flags |= FIN
	}
	if t.SYN {
		seg.Flags |= SYN
	}
	if t.RST {
		seg.Flags |= RST
	}
	if t.ACK {
		seg.Flags |= ACK
	}
	seg.Payload = t.Payload
	seg.Missing = 0
	if ipPayloadLen >= 0 {
		want := ipPayloadLen - int(t.DataOffset)*4
		// Ethernet pads short frames: never trust payload beyond the IP length.
		if want >= 0 && len(seg.Payload) > want {
			seg.Payload = seg.Payload[:want]
		}
		if want > len(seg.Payload) {
			seg.Missing = want - len(seg.Payload)
		}
	} else if wireLen > len(frame) {
		seg.Missing = wireLen - len(frame)
	}
	return nil
}

func addr4(ip []byte) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap()
}

func addr16(ip []byte) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	return a
}
