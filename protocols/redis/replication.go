package redis

import (
	"bytes"
	"time"
)

// A replica syncs with "PSYNC replid offset". The master answers
// "+FULLRESYNC replid offset" and sends a snapshot, either sized
// ("$<length>\r\n<RDB>", no CRLF after it) or, diskless, delimited
// ("$EOF:<40-byte mark>\r\n<RDB><mark>"), with bare "\n" keepalives before
// it; or it answers "+CONTINUE". Then the master streams the commands it
// runs, as RESP arrays, and the replica sends "REPLCONF ACK <offset>"
// without replies. The connection then carries commands both ways.

// rdbState is where the decoder is in a snapshot transfer.
type rdbState uint8

const (
	rdbNone   rdbState = iota
	rdbHeader          // waiting for "$<length>" or "$EOF:<mark>"
	rdbSized           // skipping rdbLeft bytes
	rdbMarked          // skipping up to the mark
)

// rdbMarkLen is the length of a diskless transfer's end mark.
const rdbMarkLen = 40

// rdbNext reads a snapshot transfer; the message's value has kind 'R' and
// the transfer's size.
func (d *decoder) rdbNext(p []byte, ts time.Time) (int, *message, error) {
	n := 0
	for n < len(p) {
		switch d.rdb {
		case rdbHeader:
			i := bytes.IndexByte(p[n:], '\n')
			if i < 0 {
				if len(p)-n > headerLimit+rdbMarkLen {
					return n, nil, errBadRDB
				}
				return n, nil, nil
			}
			line := p[n : n+i]
			n += i + 1
			if i == 0 {
				// A keepalive while the master prepares the snapshot.
				continue
			}
			d.busy, d.start, d.wire = true, ts, int64(i+1)
			if line[len(line)-1] != '\r' || line[0] != '$' {
				return n, nil, errBadRDB
			}
			line = line[1 : len(line)-1]
			if mark, ok := bytes.CutPrefix(line, []byte("EOF:")); ok && len(mark) == rdbMarkLen {
				d.rdb, d.rdbMark, d.rdbTail = rdbMarked, append([]byte(nil), mark...), nil
				continue
			}
			size, ok := parseInt(line)
			if !ok || size < 0 {
				return n, nil, errBadRDB
			}
			d.rdb, d.rdbLeft = rdbSized, size
			if size == 0 {
				return n, d.rdbDone(), nil
			}
		case rdbSized:
			take := int(min(int64(len(p)-n), d.rdbLeft))
			n += take
			d.wire += int64(take)
			d.rdbLeft -= int64(take)
			if d.rdbLeft == 0 {
				return n, d.rdbDone(), nil
			}
		case rdbMarked:
			k, done := d.skipToMark(p[n:])
			n += k
			d.wire += int64(k)
			if done {
				return n, d.rdbDone(), nil
			}
		}
	}
	return n, nil, nil
}

// skipToMark consumes p up to and including the end mark, if it is there.
func (d *decoder) skipToMark(p []byte) (int, bool) {
	if len(d.rdbTail) > 0 {
		// A mark that began in what came before.
		joined := append(append([]byte(nil), d.rdbTail...), p[:min(len(p), rdbMarkLen-1)]...)
		if i := bytes.Index(joined, d.rdbMark); i >= 0 {
			return i + rdbMarkLen - len(d.rdbTail), true
		}
	}
	if i := bytes.Index(p, d.rdbMark); i >= 0 {
		return i + rdbMarkLen, true
	}
	d.rdbTail = append(d.rdbTail, p...)
	if extra := len(d.rdbTail) - (rdbMarkLen - 1); extra > 0 {
		d.rdbTail = append(d.rdbTail[:0], d.rdbTail[extra:]...)
	}
	return len(p), false
}

// rdbDone ends a snapshot transfer: commands follow.
func (d *decoder) rdbDone() *message {
	d.out = message{v: &value{kind: 'R', size: d.wire}, start: d.start, wire: d.wire, gap: d.gap}
	d.reset()
	d.rdb, d.rdbMark, d.rdbTail, d.client = rdbNone, nil, nil, true
	return &d.out
}
