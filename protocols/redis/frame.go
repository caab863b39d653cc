package redis

import (
	"bytes"
	"strconv"
	"time"
	"unsafe"

	"github.com/sondehq/sonde/protocols"
)

// Bounds on what a peer may declare. Each refusal is a ParseError with a
// stable code (see the var block below).
const (
	// maxDepth bounds the nesting of aggregates. Redis's deepest replies
	// (COMMAND DOCS) nest six levels.
	maxDepth = 32
	// maxLine bounds a line: a length header, a number, an inline command
	// (Redis's own PROTO_INLINE_MAX_SIZE). Simple strings and errors may be
	// longer (MONITOR repeats whole commands): they are read to their end
	// keeping only the first maxScalar bytes.
	maxLine = 64 << 10
	// maxBulk is Redis's default proto-max-bulk-len: no string is longer.
	maxBulk = 512 << 20
	// maxRequestCount bounds the element count of a command. Redis closes a
	// client whose query buffer passes 1 GiB (client-query-buffer-limit),
	// and every element takes at least 6 bytes ("$0\r\n\r\n").
	maxRequestCount = (1 << 30) / 6
	// maxReplyCount bounds the element count of a reply: hiredis, Redis's
	// own C client, refuses more (REDIS_READER_MAX_ARRAY_ELEMENTS).
	maxReplyCount = 1<<32 - 1
	// maxKeptNodes and maxScalar bound what one message keeps in memory for
	// display; the rest is read and counted, not kept.
	maxKeptNodes = 1024
	// valueCost is what one kept value holds besides its text: the value
	// and its place in its parent's elements, as drawn from Options.Budget.
	valueCost = int(unsafe.Sizeof(value{})) + 8
	maxScalar = 4096
)

// value is one RESP value as far as it is kept. Commands are arrays of bulk
// strings, inline commands included.
type value struct {
	kind byte // the RESP type byte: '+', '$', '*', '%', ...
	// text is a scalar's payload, at most maxScalar bytes of it; size is
	// the payload's full length, -1 for a RESP2 null ("$-1", "*-1").
	text []byte
	size int64
	// n is an aggregate's declared element count (pairs for a map or an
	// attribute); elems are the elements kept.
	n     int64
	elems []*value
	// attr is the RESP3 attribute that came before the value.
	attr *value
	// cut says that text or elems hold less than was sent, here or below.
	cut bool
	// inline: a command sent as a line; unbalanced: its quotes did not
	// close, which Redis answers with an error before it hangs up.
	inline, unbalanced bool
	// dropped: the value is read but not kept, its parent being over budget.
	dropped bool
	// gap: bytes of the payload were lost; what is kept stops there.
	gap bool
}

func (v *value) isAggregate() bool { return isAggregate(v.kind) }

func (v *value) isNull() bool { return v.kind == '_' || v.size < 0 || v.n < 0 }

func (v *value) isError() bool { return v.kind == '-' || v.kind == '!' }

// str is the value's text when it is a string of any kind.
func (v *value) str() (string, bool) {
	switch v.kind {
	case '+', '$', '=', '-', '!':
		if v.size < 0 {
			return "", false
		}
		if v.kind == '=' && len(v.text) >= 4 && v.text[3] == ':' {
			return string(v.text[4:]), true
		}
		return string(v.text), true
	}
	return "", false
}

// integer is the value of an integer reply.
func (v *value) integer() (int64, bool) {
	if v.kind != ':' {
		return 0, false
	}
	n, err := strconv.ParseInt(string(v.text), 10, 64)
	return n, err == nil
}

func isAggregate(kind byte) bool {
	switch kind {
	case '*', '%', '~', '>', '|':
		return true
	}
	return false
}

// frame is an aggregate being read.
type frame struct {
	v    *value
	left int64 // elements still to come
	// attr is an attribute read at this level, for the next element.
	attr *value
}

// decoder reads the RESP values that one direction carries, incrementally:
// it consumes lines and string payloads as they arrive, so that neither a
// 512 MiB string nor a million-element array ever waits in the pipeline's
// leftover, and it keeps only what a message shows (see maxKeptNodes).
type decoder struct {
	client  bool
	keepCap int // bytes of payload one message may keep (Options.BodyCap)
	// budget is Options.Budget: the payload a message keeps while it is
	// read is drawn from it (held), so that many connections in the middle
	// of large values stay within the agent's memory; budgetCut says that
	// it kept less than keepCap because the budget was spent.
	budget    *protocols.Budget
	held      int
	budgetCut bool
	// resync: bytes were lost, look for a start (see findStart), at a line
	// start when lineStart is set.
	resync, lineStart bool
	inlineOK          bool // client: inline commands were seen, resync may stop at one

	busy    bool // a value has begun
	start   time.Time
	wire    int64
	root    *value
	stack   []frame
	topAttr *value // a top-level attribute, for the next value
	nodes   int
	kept    int

	// Values and their text are allocated in blocks that the message
	// owns once it is complete (see alloc and keepText).
	slab     []value
	slabSize int
	arena    []byte
	out      message

	// rdb follows a replica's snapshot transfer (see replication.go).
	rdb              rdbState
	rdbLeft          int64
	rdbMark, rdbTail []byte

	bulk     *value // the string whose payload is being read
	bulkLeft int64
	gap      bool   // bytes of the current message were lost
	long     *value // the simple string or error read past maxLine
	longCR   bool   // the last byte of long read so far is '\r'
}

// message is one complete top-level value and what it took on the wire.
type message struct {
	v     *value
	start time.Time
	wire  int64
	gap   bool // bytes inside it were lost
	// held is what the message's payload holds of Options.Budget until
	// the conn has made its entry; budgetCut says it was kept shorter for
	// want of budget.
	held      int
	budgetCut bool
}

// reset drops the value being read.
func (d *decoder) reset() {
	d.busy, d.wire, d.root, d.stack, d.topAttr = false, 0, nil, d.stack[:0], nil
	d.nodes, d.kept, d.bulk, d.bulkLeft, d.long, d.longCR = 0, 0, nil, 0, nil, false
	d.gap = false
	d.budget.Release(d.held)
	d.held, d.budgetCut = 0, false
}

// skip accounts for n lost bytes when they all fall inside the string
// payload being read: the stream stays in step, only the payload is
// incomplete. It reports whether it could.
func (d *decoder) skip(n int) bool {
	if d.rdb == rdbSized && n >= 0 && int64(n) < d.rdbLeft {
		d.rdbLeft -= int64(n)
		d.wire += int64(n)
		d.gap = true
		return true
	}
	if d.bulk == nil || n < 0 || int64(n) > d.bulkLeft {
		return false
	}
	d.bulkLeft -= int64(n)
	d.wire += int64(n)
	d.bulk.gap, d.bulk.cut, d.gap = true, true, true
	return true
}

// next reads at most one value from p. It returns how many bytes it
// consumed and the value once it is complete; the message is valid until
// the next call, its value for as long as it is kept. Without a value and an error,
// what it left of p is the start of a line it needs the end of.
func (d *decoder) next(p []byte, ts time.Time) (int, *message, error) {
	n := 0
	for n < len(p) {
		if d.resync {
			k, ok := d.findStart(p[n:])
			n += k
			if !ok {
				return n, nil, nil
			}
			d.resync = false
		}
		if d.rdb != rdbNone {
			k, m, err := d.rdbNext(p[n:], ts)
			return n + k, m, err
		}
		if !d.busy {
			d.busy, d.start = true, ts
		}
		switch {
		case d.bulk != nil:
			take := int(min(int64(len(p)-n), d.bulkLeft))
			d.keepText(d.bulk, p[n:n+take])
			n += take
			d.wire += int64(take)
			d.bulkLeft -= int64(take)
			if d.bulkLeft > 0 || len(p)-n < 2 {
				return n, nil, nil
			}
			// "$<length>\r\n<data>\r\n"
			if p[n] != '\r' || p[n+1] != '\n' {
				return n, nil, errBulkCRLF
			}
			n += 2
			d.wire += 2
			b := d.bulk
			d.bulk = nil
			if m := d.complete(b); m != nil {
				return n, m, nil
			}
		case d.long != nil:
			i := bytes.IndexByte(p[n:], '\n')
			if i < 0 {
				d.keepText(d.long, p[n:])
				d.wire += int64(len(p) - n)
				d.longCR = p[len(p)-1] == '\r'
				return len(p), nil, nil
			}
			if !(i == 0 && d.longCR || i > 0 && p[n+i-1] == '\r') {
				return n, nil, errMissingCR
			}
			// The text is already cut far before the CR (maxLine > maxScalar).
			d.keepText(d.long, p[n:n+i])
			n += i + 1
			d.wire += int64(i + 1)
			l := d.long
			d.long = nil
			if m := d.complete(l); m != nil {
				return n, m, nil
			}
		default:
			i := bytes.IndexByte(p[n:], '\n')
			if i < 0 && len(p)-n <= maxLine {
				return n, nil, nil
			}
			if i < 0 || i > maxLine {
				// A line this long is refused unless it is a server's
				// simple string or error, which is read on to its end.
				// The same limit applies however the line was split.
				if i < 0 {
					i = len(p) - n
				}
				if err := d.startLong(p[n : n+i]); err != nil {
					return n, nil, err
				}
				n += i
				continue
			}
			line := p[n : n+i+1]
			n += i + 1
			d.wire += int64(i + 1)
			m, err := d.line(line)
			if err != nil || m != nil {
				return n, m, err
			}
		}
	}
	return n, nil, nil
}

// startLong begins a simple string or error longer than maxLine.
func (d *decoder) startLong(p []byte) error {
	if d.client {
		if len(d.stack) == 0 && p[0] != '*' {
			return errInlineTooLong
		}
		return errLineTooLong
	}
	if p[0] != '+' && p[0] != '-' {
		return errLineTooLong
	}
	d.long = d.newValue(p[0])
	d.keepText(d.long, p[1:])
	d.wire += int64(len(p))
	d.longCR = p[len(p)-1] == '\r'
	return nil
}

// line handles one line, '\n' included.
func (d *decoder) line(raw []byte) (*message, error) {
	body := raw[:len(raw)-1]
	cr := len(body) > 0 && body[len(body)-1] == '\r'
	if cr {
		body = body[:len(body)-1]
	}
	if d.client && len(d.stack) == 0 && (len(body) == 0 || body[0] != '*') {
		// Anything but '*' starts an inline command, which may end in a
		// bare LF (Redis's processInlineBuffer).
		return d.inline(body), nil
	}
	if !d.client && len(body) == 0 && len(d.stack) == 0 && d.topAttr == nil {
		// A blank line between replies: Redis sends none, but some test
		// servers end their replies with one. It carries nothing.
		d.reset()
		return nil, nil
	}
	if !cr {
		return nil, errMissingCR
	}
	if d.client {
		return d.requestLine(body)
	}
	return d.replyLine(body)
}

// inline makes a command of an inline line; an empty one is no command.
func (d *decoder) inline(body []byte) *message {
	d.inlineOK = true
	args, balanced := splitInline(body)
	if len(args) == 0 {
		d.reset()
		return nil
	}
	v := d.alloc('*')
	v.n, v.inline, v.unbalanced = int64(len(args)), true, !balanced
	v.elems = make([]*value, 0, min(len(args), maxKeptNodes))
	for i, a := range args {
		if i == maxKeptNodes {
			v.cut = true
			break
		}
		e := d.alloc('$')
		e.size = int64(len(a))
		d.keepText(e, a)
		v.elems = append(v.elems, e)
	}
	return d.complete(v)
}

// requestLine handles a line of a command sent as an array of bulk strings.
func (d *decoder) requestLine(body []byte) (*message, error) {
	if len(d.stack) == 0 {
		n, ok := parseInt(body[1:])
		if !ok {
			return nil, errBadLength
		}
		if n <= 0 {
			// Redis skips "*0" and "*-1" without a reply.
			d.reset()
			return nil, nil
		}
		if n > maxRequestCount {
			return nil, errCountTooLarge
		}
		d.root = d.alloc('*')
		d.root.n = n
		d.root.elems = make([]*value, 0, min(n, 16))
		d.stack = append(d.stack, frame{v: d.root, left: n})
		return nil, nil
	}
	if len(body) == 0 || body[0] != '$' {
		return nil, errRequestType
	}
	size, ok := parseInt(body[1:])
	if !ok || size < 0 {
		return nil, errBadLength
	}
	if size > maxBulk {
		return nil, errBulkTooLarge
	}
	d.startBulk(d.newValue('$'), size)
	return nil, nil
}

// replyLine handles a line of a reply (or of a push).
func (d *decoder) replyLine(body []byte) (*message, error) {
	if len(body) == 0 {
		return nil, errBadType
	}
	kind, rest := body[0], body[1:]
	switch kind {
	case '+', '-':
	case ':':
		if _, ok := parseInt(rest); !ok {
			return nil, errBadInteger
		}
	case ',':
		if !validDouble(rest) {
			return nil, errBadDouble
		}
	case '(':
		if !validBigNumber(rest) {
			return nil, errBadBigNumber
		}
	case '#':
		if len(rest) != 1 || rest[0] != 't' && rest[0] != 'f' {
			return nil, errBadBoolean
		}
	case '_':
		if len(rest) != 0 {
			return nil, errBadNull
		}
	case '$', '!', '=':
		size, ok := parseInt(rest)
		if !ok || size < -1 || size == -1 && kind != '$' {
			return nil, errBadLength
		}
		if size > maxBulk {
			return nil, errBulkTooLarge
		}
		v := d.newValue(kind)
		if size == -1 {
			v.size = -1
			return d.complete(v), nil
		}
		d.startBulk(v, size)
		return nil, nil
	case '*', '%', '~', '>', '|':
		n, ok := parseInt(rest)
		if !ok || n < -1 || n == -1 && kind != '*' {
			return nil, errBadLength
		}
		if n > maxReplyCount {
			return nil, errCountTooLarge
		}
		if len(d.stack) >= maxDepth {
			return nil, errTooDeep
		}
		v := d.newValue(kind)
		v.n = n
		if !v.dropped && n > 0 {
			v.elems = make([]*value, 0, min(n, 16))
		}
		if d.root == nil {
			d.root = v
		}
		left := n
		if kind == '%' || kind == '|' {
			left *= 2
		}
		if left <= 0 {
			return d.complete(v), nil
		}
		d.stack = append(d.stack, frame{v: v, left: left})
		return nil, nil
	default:
		return nil, errBadType
	}
	v := d.newValue(kind)
	v.size = int64(len(rest))
	d.keepText(v, rest)
	return d.complete(v), nil
}

// partial is the top-level value being read, as far as it came, if any.
func (d *decoder) partial() *value {
	switch {
	case d.root != nil:
		return d.root
	case d.bulk != nil && len(d.stack) == 0:
		return d.bulk
	case d.long != nil && len(d.stack) == 0:
		return d.long
	}
	return nil
}

func (d *decoder) startBulk(v *value, size int64) {
	v.size = size
	d.bulk, d.bulkLeft = v, size
}

// newValue makes a value inside the aggregate being read, or a top-level
// one; it is dropped rather than kept once the message's budget is spent.
func (d *decoder) newValue(kind byte) *value {
	v := d.alloc(kind)
	if len(d.stack) > 0 {
		switch {
		case d.stack[len(d.stack)-1].v.dropped || d.nodes >= maxKeptNodes:
			v.dropped = true
		case !d.budget.Reserve(valueCost):
			v.dropped, d.budgetCut = true, true
		default:
			d.held += valueCost
			d.nodes++
		}
	}
	return v
}

// alloc takes a value from the current block, allocating blocks of a few
// values at a time rather than one by one.
func (d *decoder) alloc(kind byte) *value {
	if len(d.slab) == 0 {
		// 2, 4, ... 64 values: a small reply takes little, a large one
		// few allocations.
		d.slabSize = min(max(2*d.slabSize, 2), 64)
		d.slab = make([]value, d.slabSize)
	}
	v := &d.slab[0]
	d.slab = d.slab[1:]
	v.kind = kind
	return v
}

// keepText appends b to v's text while the caps allow. Texts share one
// buffer per message; v, whose text grows, is always the last in it.
func (d *decoder) keepText(v *value, b []byte) {
	if v.dropped || v.gap || len(b) == 0 {
		return
	}
	room := min(maxScalar-len(v.text), d.keepCap-d.kept)
	if len(b) > room {
		b = b[:max(room, 0)]
		v.cut = true
	}
	if len(b) == 0 {
		return
	}
	start := len(d.arena) - len(v.text)
	if need := len(d.arena) + len(b); need > cap(d.arena) {
		// The texts kept so far still point into the old buffer: both
		// stay alive, and both are drawn from the budget.
		grown := min(max(2*cap(d.arena), 64, need), max(d.keepCap, need))
		if !d.budget.Reserve(grown) {
			v.cut, d.budgetCut = true, true
			return
		}
		d.held += grown
		d.arena = append(make([]byte, 0, grown), d.arena...)
	}
	d.arena = append(d.arena, b...)
	v.text = d.arena[start:len(d.arena):len(d.arena)]
	d.kept += len(b)
}

// complete places a finished value in the aggregate it belongs to, closes
// the aggregates it completes, and returns the message once the top-level
// value is done.
func (d *decoder) complete(v *value) *message {
	for {
		if len(d.stack) == 0 {
			if v.kind == '|' {
				// An attribute is not a reply: the reply follows it.
				d.topAttr, d.root = v, nil
				return nil
			}
			v.attr = d.topAttr
			d.out = message{v: v, start: d.start, wire: d.wire, gap: d.gap, held: d.held, budgetCut: d.budgetCut}
			d.held = 0
			d.reset()
			// The message keeps its values and texts; the next one starts
			// new blocks.
			d.slab, d.slabSize, d.arena = nil, 0, nil
			return &d.out
		}
		f := &d.stack[len(d.stack)-1]
		if v.kind == '|' {
			f.attr = v
			return nil
		}
		v.attr, f.attr = f.attr, nil
		if v.dropped {
			f.v.cut = true
		} else {
			f.v.elems = append(f.v.elems, v)
			if v.cut {
				f.v.cut = true
			}
		}
		f.left--
		if f.left > 0 {
			return nil
		}
		v = f.v
		d.stack = d.stack[:len(d.stack)-1]
	}
}

// parseInt parses a RESP length or integer: an optional '-' and decimal
// digits, nothing else.
func parseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	return n, err == nil && b[0] != '+'
}

// validDouble accepts what RESP3 allows: a decimal or exponent form,
// "inf", "-inf" and "nan".
func validDouble(b []byte) bool {
	if len(b) == 0 || len(b) > 64 {
		return false
	}
	switch string(b) {
	case "inf", "-inf", "+inf", "nan":
		return true
	}
	for _, c := range b {
		if !('0' <= c && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E') {
			return false
		}
	}
	_, err := strconv.ParseFloat(string(b), 64)
	return err == nil
}

func validBigNumber(b []byte) bool {
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		b = b[1:]
	}
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
