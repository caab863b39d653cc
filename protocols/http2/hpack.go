package http2

import (
	"fmt"
	"sync"

	"golang.org/x/net/http2/hpack"
)

// HPACK bounds (RFC 7541, RFC 9113 §6.5.2).
const (
	// defaultTableSize is SETTINGS_HEADER_TABLE_SIZE until a peer says otherwise.
	defaultTableSize = 4096
	// maxTableSize bounds the dynamic table Sonde keeps per direction, whatever
	// a peer announces (an announcement above it is counted,
	// http2_table_size_capped); a table size update beyond it ends the
	// connection. Tables up to it are legal and seen in the wild (64 KiB and
	// more), and one Sonde refused made the whole connection opaque.
	maxTableSize = 1 << 20
	// maxHeaderBlock bounds a header block (HEADERS or PUSH_PROMISE and its
	// CONTINUATION frames, frame headers included): a CONTINUATION flood is
	// refused at this size instead of being followed forever.
	maxHeaderBlock = 256 << 10
	// maxHeaderList bounds the decoded header list of one block (field sizes
	// as RFC 9113 §6.5.2 counts them); fields past it are decoded, to keep
	// the table in step, but not kept.
	maxHeaderList = 256 << 10
)

// decodedBlock is one decoded header block.
type decodedBlock struct {
	fields []hpack.HeaderField
	// unknown is true when some fields could not be decoded because the
	// dynamic table's state is unknown (joined mid-stream, or after a gap).
	unknown bool
	// overflow is true when fields past maxHeaderList were left out.
	overflow bool
}

// headerDecoder decodes the header blocks one direction sends. While the
// connection was followed from its start it is x/net's hpack.Decoder; once
// the dynamic table's state is unknown it is a shadowTable, which decodes
// what it can and says what it could not.
type headerDecoder struct {
	hp      *hpack.Decoder
	shadow  *shadowTable
	allowed uint32 // the receiver's SETTINGS_HEADER_TABLE_SIZE, capped

	cur decodedBlock
	// listSize is the size of the current block's fields so far.
	listSize uint32
	// buf holds the current block in shadow mode, which decodes whole blocks.
	buf []byte
}

func newHeaderDecoder(stateKnown bool) *headerDecoder {
	h := &headerDecoder{allowed: defaultTableSize}
	if stateKnown {
		h.hp = hpack.NewDecoder(defaultTableSize, h.emit)
		h.hp.SetMaxStringLength(maxHeaderList)
	} else {
		h.shadow = &shadowTable{tailUnknown: true}
	}
	return h
}

// stateKnown reports whether the dynamic table is known exactly.
func (h *headerDecoder) stateKnown() bool { return h.hp != nil }

func (h *headerDecoder) emit(f hpack.HeaderField) {
	if h.cur.overflow {
		return
	}
	h.listSize += f.Size()
	if h.listSize > maxHeaderList {
		h.cur.overflow = true
		if h.hp != nil {
			// Keep decoding to keep the table in step, without the garbage.
			h.hp.SetEmitEnabled(false)
		}
		return
	}
	h.cur.fields = append(h.cur.fields, f)
}

// write hands over the next fragment of the current block.
func (h *headerDecoder) write(frag []byte) error {
	if h.hp != nil {
		_, err := h.hp.Write(frag)
		return err
	}
	h.buf = append(h.buf, frag...)
	return nil
}

// finish ends the current block and returns it.
func (h *headerDecoder) finish() (decodedBlock, error) {
	var err error
	if h.hp != nil {
		err = h.hp.Close()
		h.hp.SetEmitEnabled(true)
	} else {
		h.cur.unknown = h.shadow.decode(h.buf, h.emit)
		h.buf = h.buf[:0]
	}
	b := h.cur
	h.cur, h.listSize = decodedBlock{}, 0
	return b, err
}

// lose forgets the dynamic table: bytes of this direction went missing, so
// entries may have been added that were never seen. A block in progress is
// dropped.
func (h *headerDecoder) lose() {
	h.hp = nil
	h.shadow = &shadowTable{tailUnknown: true, limit: h.allowed, limitKnown: true}
	h.cur, h.listSize, h.buf = decodedBlock{}, 0, nil
}

// setAllowed applies the SETTINGS_HEADER_TABLE_SIZE the receiving side
// announced: the most the sender's encoder may use (RFC 7541 §4.2).
func (h *headerDecoder) setAllowed(v uint32) {
	// A peer may lower the setting only after its ACK, which Sonde does not
	// track; an encoder that has not caught up yet stays within the default.
	v = min(max(v, defaultTableSize), maxTableSize)
	h.allowed = v
	if h.hp != nil {
		h.hp.SetAllowedMaxDynamicTableSize(v)
		return
	}
	h.shadow.bound(v)
}

// staticTable is HPACK's static table (RFC 7541 Appendix A), read out of
// x/net's decoder rather than copied.
var staticTable = sync.OnceValue(func() []hpack.HeaderField {
	t := make([]hpack.HeaderField, 62)
	d := hpack.NewDecoder(0, nil)
	for i := 1; i < len(t); i++ {
		fs, err := d.DecodeFull([]byte{0x80 | byte(i)})
		if err != nil || len(fs) != 1 {
			panic(fmt.Sprintf("hpack static table entry %d: %v", i, err))
		}
		t[i] = fs[0]
	}
	return t
})

// shadowTable follows an HPACK dynamic table whose older entries are not
// known. Indices count from the newest entry (RFC 7541 §2.3.3), so entries
// added since Sonde started watching keep their right indices whatever came
// before; only references past them, to entries that predate the watch,
// cannot be resolved. Eviction never changes the index of a live entry, so
// keeping more entries than the encoder does is harmless: it only ever
// references entries it still has.
type shadowTable struct {
	ents []shadowEntry // oldest first
	// size is the sum of the entries' sizes; a lower bound when some names
	// are unknown.
	size uint32
	// limit is an upper bound of the encoder's table size when limitKnown:
	// from a size update (exact) or the receiver's setting.
	limit      uint32
	limitKnown bool
	// tailUnknown is true while entries older than ents may exist.
	tailUnknown bool
}

type shadowEntry struct {
	name, value string
	known       bool
	size        uint32
}

// bound records an upper bound of the encoder's table size.
func (t *shadowTable) bound(v uint32) {
	t.limit, t.limitKnown = v, true
	t.evict()
}

func (t *shadowTable) add(e shadowEntry) {
	t.ents = append(t.ents, e)
	t.size += e.size
	t.evict()
}

func (t *shadowTable) evict() {
	drop := 0
	for t.size > maxTableSize || (t.limitKnown && t.size > t.limit) {
		if t.limitKnown && t.size > t.limit {
			// The encoder evicted this entry, and anything older.
			t.tailUnknown = false
		} else {
			// Sonde's own bound: the entry may still be live, so references
			// to it and beyond become unknown.
			t.tailUnknown = true
		}
		t.size -= t.ents[drop].size
		drop++
	}
	if drop > 0 {
		t.ents = append(t.ents[:0], t.ents[drop:]...)
	}
	if t.limitKnown && t.size+32 > t.limit {
		// Not even an empty entry older than these can still fit.
		t.tailUnknown = false
	}
}

// lookup resolves an index; ok is false when the entry is not known.
func (t *shadowTable) lookup(i uint64) (hpack.HeaderField, bool) {
	st := staticTable()
	if i == 0 {
		return hpack.HeaderField{}, false
	}
	if i < uint64(len(st)) {
		return st[i], true
	}
	j := i - uint64(len(st))
	if j >= uint64(len(t.ents)) {
		return hpack.HeaderField{}, false
	}
	e := t.ents[len(t.ents)-1-int(j)]
	return hpack.HeaderField{Name: e.name, Value: e.value}, e.known
}

// decode decodes one complete header block, calling emit for each field it
// can resolve, and reports whether some could not be. A block that does not
// parse leaves the table unknown from then on.
func (t *shadowTable) decode(p []byte, emit func(hpack.HeaderField)) (unknown bool) {
	for len(p) > 0 {
		b := p[0]
		var err error
		switch {
		case b&0x80 != 0: // indexed field, §6.1
			var i uint64
			if i, p, err = readInt(p, 7); err != nil {
				break
			}
			if f, ok := t.lookup(i); ok {
				emit(f)
			} else {
				unknown = true
			}
		case b&0xe0 == 0x20: // dynamic table size update, §6.3
			var v uint64
			if v, p, err = readInt(p, 5); err != nil {
				break
			}
			t.bound(uint32(min(v, 1<<32-1)))
		default: // literal, §6.2: with (01), without (0000) or never (0001) indexing
			prefix, indexing := uint8(4), false
			if b&0xc0 == 0x40 {
				prefix, indexing = 6, true
			}
			var f hpack.HeaderField
			var known bool
			if f, known, p, err = t.literal(p, prefix); err != nil {
				break
			}
			f.Sensitive = b&0xf0 == 0x10
			if indexing {
				t.add(shadowEntry{name: f.Name, value: f.Value, known: known, size: f.Size()})
			}
			if known {
				emit(f)
			} else {
				unknown = true
			}
		}
		if err != nil {
			// The rest of the block is lost, and with it the table's state.
			*t = shadowTable{tailUnknown: true, limit: t.limit, limitKnown: t.limitKnown}
			return true
		}
	}
	return unknown
}

func (t *shadowTable) literal(p []byte, prefix uint8) (f hpack.HeaderField, known bool, rest []byte, err error) {
	var i uint64
	if i, p, err = readInt(p, prefix); err != nil {
		return f, false, p, err
	}
	if i == 0 {
		if f.Name, known, p, err = readString(p); err != nil {
			return f, false, p, err
		}
	} else {
		var nf hpack.HeaderField
		nf, known = t.lookup(i)
		f.Name = nf.Name
	}
	var valueOK bool
	if f.Value, valueOK, p, err = readString(p); err != nil {
		return f, false, p, err
	}
	return f, known && valueOK, p, nil
}

// readInt reads an integer with an n-bit prefix (RFC 7541 §5.1).
func readInt(p []byte, n uint8) (uint64, []byte, error) {
	if len(p) == 0 {
		return 0, p, errHPACKInteger
	}
	mask := uint64(1)<<n - 1
	i := uint64(p[0]) & mask
	p = p[1:]
	if i < mask {
		return i, p, nil
	}
	for k, shift := 0, uint(0); k < len(p); k, shift = k+1, shift+7 {
		if shift > 56 {
			return 0, p, errHPACKInteger
		}
		b := p[k]
		i += uint64(b&0x7f) << shift
		if b&0x80 == 0 {
			return i, p[k+1:], nil
		}
	}
	return 0, p, errHPACKInteger
}

// readString reads a string literal (RFC 7541 §5.2); ok is false when its
// Huffman coding is invalid, which loses the value but not the parse.
func readString(p []byte) (s string, ok bool, rest []byte, err error) {
	if len(p) == 0 {
		return "", false, p, errHPACKInteger
	}
	huff := p[0]&0x80 != 0
	n, p, err := readInt(p, 7)
	if err != nil || n > uint64(len(p)) {
		return "", false, p, errHPACKInteger
	}
	raw := p[:n]
	p = p[n:]
	if !huff {
		return string(raw), true, p, nil
	}
	s, herr := hpack.HuffmanDecodeToString(raw)
	return s, herr == nil, p, nil
}
