package synth

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Config sizes a synthetic capture.
type Config struct {
	Exchanges   int // request/response pairs in all
	PerConn     int // pairs per keep-alive connection
	Concurrency int // connections open at once, their packets interleaved
}

// Stats says what was written.
type Stats struct {
	Packets, Bytes int
}

// WriteHTTP1 writes the capture to w.
func WriteHTTP1(w io.Writer, cfg Config) (Stats, error) {
	if cfg.PerConn <= 0 {
		cfg.PerConn = 100
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 16
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	pw := pcapgo.NewWriter(bw)
	if err := pw.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		return Stats{}, err
	}
	g := &gen{pw: pw, ts: time.Unix(1_700_000_000, 0)}
	conns := make([]*conn, 0, cfg.Concurrency)
	next := 0
	left := cfg.Exchanges
	for left > 0 || len(conns) > 0 {
		for len(conns) < cfg.Concurrency && left > 0 {
			n := min(cfg.PerConn, left)
			left -= n
			c := g.open(next, n)
			next++
			conns = append(conns, c)
		}
		// One exchange on each open connection in turn interleaves them.
		kept := conns[:0]
		for _, c := range conns {
			g.exchange(c)
			if c.remaining == 0 {
				g.close(c)
			} else {
				kept = append(kept, c)
			}
		}
		conns = kept
		if g.err != nil {
			return g.stats, g.err
		}
	}
	if err := bw.Flush(); err != nil {
		return g.stats, err
	}
	return g.stats, g.err
}

type conn struct {
	id                 int
	client, server     [4]byte
	cport, sport       uint16
	cseq, sseq         uint32
	remaining, counter int
}

type gen struct {
	pw    *pcapgo.Writer
	ts    time.Time
	buf   []byte
	stats Stats
	err   error
}

func (g *gen) open(id, exchanges int) *conn {
	c := &conn{
		id:        id,
		client:    [4]byte{10, 1, byte(id >> 8), byte(id)},
		server:    [4]byte{10, 2, 0, byte(1 + id%4)},
		cport:     uint16(32768 + id%28000),
		sport:     8080,
		cseq:      uint32(id) * 7919,
		sseq:      uint32(id) * 104729,
		remaining: exchanges,
	}
	g.frame(c, true, flagSYN, nil)
	c.cseq++
	g.frame(c, false, flagSYN|flagACK, nil)
	c.sseq++
	g.frame(c, true, flagACK, nil)
	return c
}

var body = []byte(`{"id":42,"name":"ada lovelace","email":"ada@example.com","roles":["admin","dev"],"active":true}`)

func (g *gen) exchange(c *conn) {
	c.counter++
	c.remaining--
	req := fmt.Appendf(nil, "GET /api/v1/users/%d?page=%d HTTP/1.1\r\nHost: users.default.svc\r\nUser-Agent: synth/1.0\r\nAccept: application/json\r\n\r\n", c.id, c.counter)
	g.frame(c, true, flagACK|flagPSH, req)
	c.cseq += uint32(len(req))
	status := "200 OK"
	if c.counter%50 == 0 {
		status = "503 Service Unavailable"
	}
	resp := fmt.Appendf(nil, "HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", status, len(body), body)
	g.frame(c, false, flagACK|flagPSH, resp)
	c.sseq += uint32(len(resp))
}

func (g *gen) close(c *conn) {
	g.frame(c, true, flagFIN|flagACK, nil)
	c.cseq++
	g.frame(c, false, flagFIN|flagACK, nil)
	c.sseq++
	g.frame(c, true, flagACK, nil)
}

const (
	flagFIN = 0x01
	flagSYN = 0x02
	flagPSH = 0x08
	flagACK = 0x10
)

// frame writes one Ethernet/IPv4/TCP frame. Checksums are left zero: no
// reader of these files verifies them.
func (g *gen) frame(c *conn, fromClient bool, flags byte, payload []byte) {
	if g.err != nil {
		return
	}
	g.ts = g.ts.Add(50 * time.Microsecond)
	src, dst, sp, dp, seq, ack := c.client, c.server, c.cport, c.sport, c.cseq, c.sseq
	if !fromClient {
		src, dst, sp, dp, seq, ack = c.server, c.client, c.sport, c.cport, c.sseq, c.cseq
	}
	n := 14 + 20 + 20 + len(payload)
	b := append(g.buf[:0], make([]byte, n)...)
	b[12], b[13] = 0x08, 0x00 // IPv4
	ip := b[14:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+20+len(payload)))
	ip[8], ip[9] = 64, 6
	copy(ip[12:16], src[:])
	copy(ip[16:20], dst[:])
	tcp := ip[20:]
	binary.BigEndian.PutUint16(tcp[0:], sp)
	binary.BigEndian.PutUint16(tcp[2:], dp)
	binary.BigEndian.PutUint32(tcp[4:], seq)
	if flags&flagACK != 0 {
		binary.BigEndian.PutUint32(tcp[8:], ack)
	}
	tcp[12] = 5 << 4
	tcp[13] = flags
	binary.BigEndian.PutUint16(tcp[14:], 65535)
	copy(tcp[20:], payload)
	g.buf = b
	ci := gopacket.CaptureInfo{Timestamp: g.ts, CaptureLength: n, Length: n}
	if err := g.pw.WritePacket(ci, b); err != nil {
		g.err = err
		return
	}
	g.stats.Packets++
	g.stats.Bytes += n
}
