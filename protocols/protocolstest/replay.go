package protocolstest

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/sondehq/sonde/protocols"
)

// Chunk is bytes that one direction carried at one time, or a gap of Gap
// bytes when Gap is not zero.
type Chunk struct {
	Dir  protocols.Direction
	Data []byte
	Gap  int
	Time time.Time
}

// MaxLeftover is the most unconsumed bytes Replay keeps per direction, the
// same bound the agent's pipeline applies.
const MaxLeftover = 1 << 20

// Result is what a replay produced.
type Result struct {
	// Entries are what the Conn emitted, at Close included.
	Entries []*protocols.Entry
	// Err is the first error Feed returned; feeding stopped there, and the
	// Conn was closed, as the pipeline closes it.
	Err error
	// Upgrade is set when Feed asked to hand the connection to another protocol.
	Upgrade *protocols.UpgradeError
	// Leftover is what each direction left unconsumed at the end.
	Leftover [2]int
}

// Replay feeds chunks to a new Conn of d through a protocols.Feeder, as the
// pipeline does, then closes it with reason (after an error, the Feeder has
// closed it already). It returns an error when the Conn breaks the contract
// (consumed more than it was given).
func Replay(d protocols.Dissector, info protocols.ConnInfo, chunks []Chunk, reason protocols.CloseReason) (Result, error) {
	return replay(d, info, chunks, reason, nil)
}

// replay is Replay that calls each, when not nil, with every entry as the
// Conn emits it, before it is added to the result.
func replay(d protocols.Dissector, info protocols.ConnInfo, chunks []Chunk, reason protocols.CloseReason, each func(*protocols.Entry)) (Result, error) {
	var res Result
	if info.Options.BodyCap == 0 {
		info.Options = protocols.DefaultOptions()
	}
	if !info.Client.IsValid() {
		info.Client = netip.MustParseAddrPort("10.0.0.1:40000")
		info.Server = netip.MustParseAddrPort("10.0.0.2:80")
	}
	f := protocols.NewFeeder(d.NewConn(info, func(e *protocols.Entry) {
		if each != nil {
			each(e)
		}
		res.Entries = append(res.Entries, e)
	}), MaxLeftover)
	last := time.Unix(0, 0)
	for _, ch := range chunks {
		if !ch.Time.IsZero() {
			last = ch.Time
		}
		if ch.Gap != 0 {
			f.Gap(ch.Dir, ch.Gap, last)
			continue
		}
		err := f.Feed(ch.Dir, ch.Data, last)
		if err == nil {
			continue
		}
		res.Leftover = [2]int{len(f.Leftover(0)), len(f.Leftover(1))}
		var pe *protocols.ParseError
		if errors.As(err, &pe) && pe.Code == protocols.CodeConsumedOutOfRange {
			return res, errors.New(pe.Detail)
		}
		var up *protocols.UpgradeError
		if errors.As(err, &up) {
			res.Upgrade = up
		} else {
			res.Err = err
		}
		return res, nil
	}
	f.Close(reason, last)
	res.Leftover = [2]int{len(f.Leftover(0)), len(f.Leftover(1))}
	return res, nil
}

// Split cuts each chunk's data into pieces at random points chosen by seed,
// keeping the order of bytes, so that parsers see every possible boundary.
func Split(chunks []Chunk, seed uint64) []Chunk {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var out []Chunk
	for _, ch := range chunks {
		if ch.Gap != 0 || len(ch.Data) < 2 {
			out = append(out, ch)
			continue
		}
		data := ch.Data
		for len(data) > 0 {
			n := 1 + r.IntN(len(data))
			if r.IntN(3) == 0 {
				n = 1 + r.IntN(min(len(data), 8))
			}
			out = append(out, Chunk{Dir: ch.Dir, Data: data[:n], Time: ch.Time})
			data = data[n:]
		}
	}
	return out
}

// Stream builds the chunks of a conversation from alternating client and
// server messages: Stream(req1, resp1, req2, resp2, ...). Empty strings are skipped.
func Stream(msgs ...string) []Chunk {
	var out []Chunk
	t := time.Unix(1_700_000_000, 0)
	for i, m := range msgs {
		if m == "" {
			continue
		}
		out = append(out, Chunk{Dir: protocols.Direction(i % 2), Data: []byte(m), Time: t.Add(time.Duration(i) * time.Millisecond)})
	}
	return out
}
