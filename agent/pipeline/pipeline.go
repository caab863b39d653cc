package pipeline

import (
	"errors"
	"net/netip"
	"strconv"
	"time"

	"github.com/sondehq/sonde/agent/assembly"
	"github.com/sondehq/sonde/agent/packet"
	"github.com/sondehq/sonde/protocols"
)

// Config configures a Pipeline.
type Config struct {
	Assembly   assembly.Config
	Options    protocols.Options
	Dissectors []protocols.Dissector
	// Node and Source stamp every entry (see protocols.Entry).
	Node, Source string
	// IDPrefix starts every entry ID; IDs are IDPrefix + a counter.
	IDPrefix string
	// DetectLimit is how many bytes of a connection are held while its
	// protocol is unknown; past it the connection is opaque.
	DetectLimit int
	// MaxLeftover bounds what a parser may leave unconsumed per direction.
	MaxLeftover int
}

// DefaultConfig returns the configuration Sonde runs with, dissecting with ds.
func DefaultConfig(ds []protocols.Dissector) Config {
	return Config{
		Assembly:    assembly.DefaultConfig(),
		Options:     protocols.DefaultOptions(),
		Dissectors:  ds,
		DetectLimit: 8 << 10,
		MaxLeftover: 1 << 20,
	}
}

// ExpireEvery is how often idle connections are looked for: in capture time
// as segments arrive, and by a live capture's ticker (agent/runner) when
// none do.
const ExpireEvery = time.Second

// Pipeline runs segments through assembly, detection and dissection.
type Pipeline struct {
	cfg        Config
	emit       protocols.EmitFunc
	asm        *assembly.Assembler
	seq        uint64
	lastExpire time.Time
	stats      Stats
	// byClient finds the open connection a client started, by its address
	// and initial sequence number, to recognise the same connection seen
	// again after NAT (see twinWindow).
	byClient map[clientSYN]*stream
	// adding is the segment being added; the assembly calls NewStream for it.
	adding *packet.Segment
}

// twinWindow is how soon after a connection's SYN another SYN from the same
// client address with the same initial sequence number, to a different
// server, is taken for the same connection seen on a second interface after
// DNAT: a pod dialling a service IP is captured on its own veth with the
// service address and on the server pod's veth with the pod address.
//
// NAT leaves sequence numbers alone, and they are what tells a copy from
// another connection; the client port is not enough. The kernel lets one
// port connect to several destinations at once (only the 4-tuple must be
// unique), so a pod with a connection open to a pod may dial a service from
// the same port; and when that service leads to the pod already connected
// to, conntrack gives the connection after DNAT another client port. The
// window only guards against long-lived stale state.
const twinWindow = 2 * time.Second

// clientSYN names a connection by what its copies on every interface share.
type clientSYN struct {
	client netip.Addr
	isn    uint32
}

// New returns a pipeline that hands every entry to emit.
func New(cfg Config, emit protocols.EmitFunc) *Pipeline {
	if cfg.DetectLimit <= 0 {
		cfg.DetectLimit = 8 << 10
	}
	if cfg.MaxLeftover <= 0 {
		cfg.MaxLeftover = 1 << 20
	}
	p := &Pipeline{cfg: cfg, emit: emit, byClient: map[clientSYN]*stream{}}
	p.stats.ParseErrors = map[string]uint64{}
	p.stats.Entries = map[protocols.Protocol]uint64{}
	p.stats.Protocol = map[string]uint64{}
	p.asm = assembly.New(cfg.Assembly, (*factory)(p))
	return p
}

// Segment processes one TCP segment.
func (p *Pipeline) Segment(seg *packet.Segment) {
	p.adding = seg
	p.asm.Add(seg)
	p.adding = nil
	if seg.Time.Sub(p.lastExpire) >= ExpireEvery {
		p.lastExpire = seg.Time
		p.asm.Expire(seg.Time)
	}
}

// Expire closes connections idle for longer than the assembly's timeout, as
// of now. Live sources call it from a ticker; files drive it by capture time.
func (p *Pipeline) Expire(now time.Time) { p.asm.Expire(now) }

// Close ends every connection (the capture ended) and flushes their entries.
func (p *Pipeline) Close(ts time.Time) {
	p.asm.CloseAll(protocols.ClosedEnd, ts)
}

// Stats returns the counters so far.
func (p *Pipeline) Stats() Stats {
	s := p.stats
	s.Assembly = p.asm.Stats()
	s.ParseErrors = make(map[string]uint64, len(p.stats.ParseErrors))
	for k, v := range p.stats.ParseErrors {
		s.ParseErrors[k] = v
	}
	s.Entries = make(map[protocols.Protocol]uint64, len(p.stats.Entries))
	for k, v := range p.stats.Entries {
		s.Entries[k] = v
	}
	s.Protocol = make(map[string]uint64, len(p.stats.Protocol))
	for k, v := range p.stats.Protocol {
		s.Protocol[k] = v
	}
	for _, d := range p.cfg.Dissectors {
		if c, ok := d.(protocols.Counters); ok {
			for k, v := range c.Counters() {
				s.Protocol[k] += v
			}
		}
	}
	return s
}

type factory Pipeline

func (f *factory) NewStream(key assembly.Key, sawSYN bool, ts time.Time) assembly.Stream {
	p := (*Pipeline)(f)
	var syn clientSYN
	if sawSYN {
		syn = clientSYN{key.A.Addr(), clientISN(p.adding)}
		if first := p.byClient[syn]; first != nil && first.key.B != key.B &&
			ts.Sub(first.opened) < twinWindow && !first.realServer.IsValid() {
			// The same connection after DNAT: the first copy, from the
			// client's side, is kept and learns where it really went.
			first.realServer = key.B
			p.stats.NATTwins++
			return twin{p}
		}
	}
	p.stats.Connections++
	s := &stream{p: p, key: key, midStream: !sawSYN, opened: ts, syn: syn}
	if sawSYN {
		p.byClient[syn] = s
	}
	return s
}

// clientISN is the client's initial sequence number, from the SYN or, when
// only the SYN-ACK was captured, from what it acknowledges.
func clientISN(seg *packet.Segment) uint32 {
	if seg.Flags&packet.ACK != 0 {
		return seg.Ack - 1
	}
	return seg.Seq
}

// twin swallows the second copy of a connection seen after NAT, counting
// its bytes.
type twin struct{ p *Pipeline }

func (t twin) Data(_ assembly.Side, data []byte, _ time.Time) {
	t.p.stats.NATTwinBytes += uint64(len(data))
}
func (twin) Gap(assembly.Side, int, time.Time)      {}
func (twin) Close(protocols.CloseReason, time.Time) {}

// chunk is bytes held while a connection's protocol is being detected.
type chunk struct {
	side assembly.Side
	data []byte
	gap  int
	ts   time.Time
}

type state uint8

const (
	detecting state = iota
	parsing
	opaque
)

// stream is one connection: first detection, then a parser.
type stream struct {
	p         *Pipeline
	key       assembly.Key
	midStream bool
	opened    time.Time
	syn       clientSYN // when the SYN was seen
	state     state
	// realServer is where DNAT sent the connection (key.B is what the
	// client dialled), when a second copy showed it.
	realServer netip.AddrPort

	held     []chunk // while detecting
	heldSize [2]int

	// feeder feeds the parser, keeping what it leaves unconsumed.
	feeder     *protocols.Feeder
	clientSide assembly.Side
	client     netip.AddrPort
	server     netip.AddrPort
}

func (s *stream) Data(side assembly.Side, data []byte, ts time.Time) {
	s.p.stats.Bytes += uint64(len(data))
	s.deliver(side, data, ts)
}

// deliver routes bytes by the connection's state; a parser's upgrade may
// change the state between two deliveries.
func (s *stream) deliver(side assembly.Side, data []byte, ts time.Time) {
	switch s.state {
	case detecting:
		s.held = append(s.held, chunk{side: side, data: append([]byte(nil), data...), ts: ts})
		s.heldSize[side] += len(data)
		s.detect()
	case parsing:
		s.feed(s.dir(side), data, ts)
	case opaque:
		s.p.stats.OpaqueBytes += uint64(len(data))
	}
}

func (s *stream) Gap(side assembly.Side, n int, ts time.Time) {
	s.p.stats.Gaps++
	switch s.state {
	case detecting:
		// What was held of that side no longer starts a message; detection
		// restarts after the gap, and the parser must expect to join mid-stream.
		kept := s.held[:0]
		for _, c := range s.held {
			if c.side != side {
				kept = append(kept, c)
			}
		}
		s.held = kept
		s.heldSize[side] = 0
		s.midStream = true
	case parsing:
		s.feeder.Gap(s.dir(side), n, ts)
	}
}

func (s *stream) Close(reason protocols.CloseReason, ts time.Time) {
	if s.p.byClient[s.syn] == s {
		delete(s.p.byClient, s.syn)
	}
	switch s.state {
	case detecting:
		if s.heldSize[0]+s.heldSize[1] > 0 {
			s.p.stats.OpaqueConns++
			s.p.stats.Undetected++
			s.p.stats.OpaqueBytes += uint64(s.heldSize[0] + s.heldSize[1])
		}
		s.held = nil
	case parsing:
		s.closeConn(reason, ts)
	}
	s.state = opaque
}

// closeConn closes the parser, unless an error closed it already, and adds
// up its counters.
func (s *stream) closeConn(reason protocols.CloseReason, ts time.Time) {
	s.feeder.Close(reason, ts)
	if c, ok := s.feeder.Conn().(protocols.Counters); ok {
		for k, v := range c.Counters() {
			s.p.stats.Protocol[k] += v
		}
	}
}

func (s *stream) dir(side assembly.Side) protocols.Direction {
	if side == s.clientSide {
		return protocols.ClientToServer
	}
	return protocols.ServerToClient
}

// detect asks every dissector about each side's held bytes, in the order
// they were configured, and starts the first that matches.
func (s *stream) detect() {
	var prefix [2][]byte
	for _, c := range s.held {
		prefix[c.side] = append(prefix[c.side], c.data...)
	}
	undecided := false
	for _, side := range s.sideOrder() {
		pre := prefix[side]
		if len(pre) == 0 {
			undecided = true
			continue
		}
		ports := protocols.Ports{Src: s.addr(side).Port(), Dst: s.addr(1 - side).Port()}
		for _, d := range s.p.cfg.Dissectors {
			det := d.Detect(pre, ports)
			switch det.Verdict {
			case protocols.Match:
				s.start(d, side, det.FromClient, nil)
				return
			case protocols.NeedMore:
				undecided = true
			}
		}
	}
	if !undecided || s.heldSize[0]+s.heldSize[1] >= s.p.cfg.DetectLimit {
		s.p.stats.OpaqueConns++
		s.p.stats.Undetected++
		s.p.stats.OpaqueBytes += uint64(s.heldSize[0] + s.heldSize[1])
		s.held = nil
		s.state = opaque
	}
}

// sideOrder puts the side that spoke first first.
func (s *stream) sideOrder() [2]assembly.Side {
	if len(s.held) > 0 && s.held[0].side == assembly.SideB {
		return [2]assembly.Side{assembly.SideB, assembly.SideA}
	}
	return [2]assembly.Side{assembly.SideA, assembly.SideB}
}

func (s *stream) addr(side assembly.Side) netip.AddrPort {
	if side == assembly.SideA {
		return s.key.A
	}
	return s.key.B
}

// start makes the parser, with the client on the side that wrote the
// matching bytes (or the other, when they were a response), and replays
// what was held.
func (s *stream) start(d protocols.Dissector, side assembly.Side, fromClient bool, upgrade *protocols.Entry) {
	s.clientSide = side
	if !fromClient {
		s.clientSide = 1 - side
	}
	if !s.midStream && upgrade == nil {
		// The SYN was captured: its sender is the client, whatever the
		// first bytes look like (a client may send reply-shaped garbage).
		s.clientSide = assembly.SideA
	}
	s.client, s.server = s.addr(s.clientSide), s.addr(1-s.clientSide)
	info := protocols.ConnInfo{
		Client:    s.client,
		Server:    s.server,
		Options:   s.p.cfg.Options,
		MidStream: s.midStream,
		Upgrade:   upgrade,
	}
	s.feeder = protocols.NewFeeder(d.NewConn(info, s.stamp), s.p.cfg.MaxLeftover)
	s.state = parsing
	held := s.held
	s.held = nil
	s.heldSize = [2]int{}
	for _, c := range held {
		s.deliver(c.side, c.data, c.ts)
	}
}

// feed hands data to the parser; the feeder keeps what it leaves
// unconsumed and closes it after an error.
func (s *stream) feed(d protocols.Direction, data []byte, ts time.Time) {
	if err := s.feeder.Feed(d, data, ts); err != nil {
		s.fail(err, d, ts)
	}
}

// fail handles the error that ended a parser (the feeder has closed it): an
// upgrade hands the connection to the dissector of the new protocol (or,
// when Sonde has none by that name, such as a CONNECT tunnel, detects it
// afresh), anything else makes it opaque.
func (s *stream) fail(err error, d protocols.Direction, ts time.Time) {
	s.closeConn(protocols.ClosedEnd, ts)
	var up *protocols.UpgradeError
	if errors.As(err, &up) {
		s.p.stats.Upgrades++
		// What the old parser did not consume, in both directions, belongs
		// to the new protocol.
		s.held = s.held[:0]
		s.heldSize = [2]int{}
		for _, dir := range []protocols.Direction{d, d.Reverse()} {
			if rest := s.feeder.Leftover(dir); len(rest) > 0 {
				side := s.sideOf(dir)
				s.held = append(s.held, chunk{side: side, data: append([]byte(nil), rest...), ts: ts})
				s.heldSize[side] += len(rest)
			}
		}
		s.feeder = nil
		for _, next := range s.p.cfg.Dissectors {
			if next.Protocol() == up.To {
				s.start(next, s.clientSide, true, up.Request)
				return
			}
		}
		s.state = detecting
		s.midStream = false
		if len(s.held) > 0 {
			s.detect()
		}
		return
	}
	code := "other"
	var pe *protocols.ParseError
	switch {
	case errors.As(err, &pe):
		code = pe.Code
	case errors.Is(err, protocols.ErrTooLarge):
		if errors.Is(err, protocols.ErrLeftoverTooLarge) {
			s.p.stats.LeftoverOverflows++
		}
		code = "leftover_too_large"
	}
	s.p.stats.ParseErrors[code]++
	s.p.stats.OpaqueConns++
	s.p.stats.OpaqueBytes += uint64(len(s.feeder.Leftover(d)))
	s.feeder = nil
	s.state = opaque
}

func (s *stream) sideOf(d protocols.Direction) assembly.Side {
	if d == protocols.ClientToServer {
		return s.clientSide
	}
	return 1 - s.clientSide
}

// stamp completes an entry a parser emitted and passes it on.
func (s *stream) stamp(e *protocols.Entry) {
	p := s.p
	p.seq++
	e.ID = p.cfg.IDPrefix + strconv.FormatUint(p.seq, 10)
	e.Node, e.Source = p.cfg.Node, p.cfg.Source
	if !e.Src.IP.IsValid() {
		e.Src.IP, e.Src.Port = s.client.Addr(), s.client.Port()
	}
	if !e.Dst.IP.IsValid() {
		e.Dst.IP, e.Dst.Port = s.server.Addr(), s.server.Port()
		if s.realServer.IsValid() && s.server == s.key.B {
			e.Via = &protocols.Endpoint{IP: s.server.Addr(), Port: s.server.Port()}
			e.Dst.IP, e.Dst.Port = s.realServer.Addr(), s.realServer.Port()
		}
	}
	p.stats.Entries[e.Protocol]++
	if e.Gap {
		p.stats.EntriesWithGap++
	}
	if e.Unmatched != protocols.Matched {
		p.stats.Unmatched++
	}
	p.emit(e)
}
