package kafka

import (
	"encoding/binary"
	"fmt"

	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/internal/bin"
)

const (
	// maxBatches is the most batches one entry lists; RecordCount still
	// counts the records of the others.
	maxBatches = 64
	// maxShownRecords is the most records one entry shows, keys and values
	// together being held to Options.BodyCap.
	maxShownRecords = 64
	// decodeBudgetFactor bounds decompression per entry to this many times
	// Options.DecodedCap, so that a frame of many small compressed batches
	// cannot make the parser inflate each of them up to the cap.
	decodeBudgetFactor = 4
	// batchHeaderV2 is the length of a magic 2 record batch header.
	batchHeaderV2 = 61
)

// recordBudget is what is left of an entry's caps on shown records and on
// decompression.
type recordBudget struct {
	shown      int
	bytesLeft  int
	decodeLeft int
	decodedCap int
}

func newRecordBudget(opts protocols.Options) recordBudget {
	return recordBudget{
		bytesLeft:  opts.BodyCap,
		decodeLeft: decodeBudgetFactor * opts.DecodedCap,
		decodedCap: opts.DecodedCap,
	}
}

func (b *recordBudget) canShow() bool { return b.shown < maxShownRecords && b.bytesLeft > 0 }

// capture copies p within the bytes left; nil stays nil (null on the wire).
func (b *recordBudget) capture(p []byte, present bool) *protocols.Body {
	if !present {
		return nil
	}
	body := &protocols.Body{Data: make([]byte, 0, min(len(p), max(b.bytesLeft, 0)))}
	body.Capture(p, b.bytesLeft)
	b.bytesLeft -= len(body.Data)
	return body
}

// recordSet reads the record batches of one partition: a Produce request's
// records or a Fetch response's record batches.
//
//	RecordBatch => baseOffset:int64 batchLength:int32 partitionLeaderEpoch:int32
//	               magic:int8 (2) crc:uint32 attributes:int16 lastOffsetDelta:int32
//	               baseTimestamp:int64 maxTimestamp:int64 producerId:int64
//	               producerEpoch:int16 baseSequence:int32 recordsCount:int32 records
//	MessageSet (magic 0, 1) => [offset:int64 messageSize:int32 Message]
//
// Both begin with an int64 offset and an int32 length, and keep the magic
// byte at offset 16, which is how one tells them apart.
func (w *walker) recordSet(data []byte, at where) {
	var legacy *protocols.KafkaBatch
	for len(data) > 0 {
		if len(data) < 17 {
			// A Fetch response may end with the start of a batch that
			// did not fit its size limit; the consumer drops it too.
			return
		}
		size := int(int32(binary.BigEndian.Uint32(data[8:])))
		if size < 5 {
			w.batchError(at, fmt.Errorf("%w: length %d", errCorruptBatch, size))
			return
		}
		if 12+size > len(data) {
			return // a partial batch at the end, as above
		}
		batch := data[:12+size]
		data = data[12+size:]
		switch magic := int8(batch[16]); magic {
		case 2:
			legacy = nil
			if err := w.batchV2(batch, at); err != nil {
				w.batchError(at, err)
				return
			}
		case 0, 1:
			if legacy == nil || legacy.Magic != magic {
				legacy = w.addBatch(protocols.KafkaBatch{
					Topic: at.topic, Partition: at.partition, Magic: magic, Compression: codecName(0),
					BaseOffset: int64(binary.BigEndian.Uint64(batch)),
				})
			}
			if err := w.legacyMessage(batch, legacy, true); err != nil {
				w.batchError(at, err)
				return
			}
		default:
			w.batchError(at, fmt.Errorf("%w: magic %d", errCorruptBatch, magic))
			return
		}
	}
}

func (w *walker) batchError(at where, err error) {
	w.c.d.count(CountBatchMalformed)
	w.e.Warn(fmt.Sprintf("records of %s[%d] not decodable: %v", at.topic, at.partition, err))
}

// addBatch lists a batch and returns where to fill it in: a scratch value
// past the list cap, whose records still count.
func (w *walker) addBatch(b protocols.KafkaBatch) *protocols.KafkaBatch {
	if len(w.rec.Batches) >= maxBatches {
		w.capHit()
		return &b
	}
	w.rec.Batches = append(w.rec.Batches, b)
	return &w.rec.Batches[len(w.rec.Batches)-1]
}

func (w *walker) batchV2(batch []byte, at where) error {
	r := reader{bin.NewReader(batch)}
	base := r.Int64()
	r.Int32() // batchLength, checked by the caller
	r.Int32() // partitionLeaderEpoch
	r.Int8()  // magic
	r.Int32() // crc
	attrs := r.Int16()
	r.Int32() // lastOffsetDelta
	firstTs := r.Int64()
	r.Int64() // maxTimestamp
	r.Int64() // producerId
	r.Int16() // producerEpoch
	r.Int32() // baseSequence
	count := r.Int32()
	if !r.Ok() || count < 0 {
		return fmt.Errorf("%w: header of %d bytes, record count %d", errCorruptBatch, len(batch), count)
	}
	w.rec.RecordCount += int64(count)
	b := w.addBatch(protocols.KafkaBatch{
		Topic:         at.topic,
		Partition:     at.partition,
		Magic:         2,
		Compression:   codecName(int8(attrs & 7)),
		BaseOffset:    base,
		RecordCount:   int64(count),
		Size:          len(batch),
		Transactional: attrs&0x10 != 0,
		Control:       attrs&0x20 != 0,
	})
	defer func() { b.Truncated = int64(len(b.Records)) < b.RecordCount }()
	if count == 0 || !w.recs.canShow() {
		return nil
	}
	payload, ok := w.inflate(int8(attrs&7), r.Rest())
	if !ok {
		return nil
	}
	// Records => length:varint attributes:int8 timestampDelta:varlong
	//            offsetDelta:varint key:varint-bytes value:varint-bytes
	//            [headerKey:varint-string headerValue:varint-bytes] (varint count)
	rs := reader{bin.NewReader(payload)}
	for i := int32(0); i < count && w.recs.canShow(); i++ {
		l := rs.Varint()
		if !rs.Ok() || l < 0 || l > int64(rs.Len()) {
			break // the rest was cut by the decompression cap, or is corrupt
		}
		rr := reader{bin.NewReader(rs.Span(int(l)))}
		rr.Int8()
		tsDelta := rr.Varint()
		offDelta := rr.Varint()
		key, hasKey := rr.varintBytes()
		value, hasValue := rr.varintBytes()
		nh := rr.Varint()
		if !rr.Ok() || nh < 0 || nh > int64(rr.Len()) {
			break
		}
		m := protocols.KafkaMessage{
			Offset:      base + offDelta,
			TimestampMs: firstTs + tsDelta,
			Key:         w.recs.capture(key, hasKey),
			Value:       w.recs.capture(value, hasValue),
		}
		for range nh {
			hk, _ := rr.varintBytes()
			hv, hasValue := rr.varintBytes()
			if !rr.Ok() {
				break
			}
			m.Headers = append(m.Headers, w.recs.header(hk, hv, hasValue))
		}
		w.recs.shown++
		b.Records = append(b.Records, m)
	}
	if !w.recs.canShow() && int64(len(b.Records)) < b.RecordCount {
		w.c.d.count(CountRecordsCap)
	}
	return nil
}

// header keeps a record header within the bytes left.
func (b *recordBudget) header(k, v []byte, hasValue bool) protocols.KafkaHeader {
	k = k[:min(len(k), max(b.bytesLeft, 0))]
	b.bytesLeft -= len(k)
	return protocols.KafkaHeader{Name: string(k), Value: b.capture(v, hasValue)}
}

// legacyMessage reads one message of a magic 0 or 1 message set into b; a
// compressed one (a wrapper) holds a message set of its own, read when top
// is true (wrappers are not nested).
//
//	Message => crc:int32 magic:int8 attributes:int8 [timestamp:int64 (magic 1)]
//	           key:bytes value:bytes
func (w *walker) legacyMessage(msg []byte, b *protocols.KafkaBatch, top bool) error {
	r := reader{bin.NewReader(msg)}
	offset := r.Int64()
	r.Int32() // messageSize
	r.Int32() // crc
	magic := r.Int8()
	attrs := r.Int8()
	ts := int64(-1)
	if magic == 1 {
		ts = r.Int64()
	}
	key, hasKey := r.bytes32()
	value, hasValue := r.bytes32()
	if !r.Ok() {
		return fmt.Errorf("%w: message of %d bytes", errCorruptBatch, len(msg))
	}
	if top {
		b.Size += len(msg)
	}
	codec := int8(attrs & 7)
	if codec == 0 || !top {
		b.RecordCount++
		w.rec.RecordCount++
		if w.recs.canShow() {
			w.recs.shown++
			b.Records = append(b.Records, protocols.KafkaMessage{
				Offset: offset, TimestampMs: ts,
				Key: w.recs.capture(key, hasKey), Value: w.recs.capture(value, hasValue),
			})
		}
		b.Truncated = int64(len(b.Records)) < b.RecordCount
		return nil
	}
	b.Compression = codecName(codec)
	inner, ok := w.inflate(codec, value)
	if !ok {
		// The wrapper's messages cannot be counted: count the wrapper.
		b.RecordCount++
		w.rec.RecordCount++
		b.Truncated = true
		return nil
	}
	for len(inner) >= 12 {
		size := int(int32(binary.BigEndian.Uint32(inner[8:])))
		if size < 0 || 12+size > len(inner) {
			break // cut by the decompression cap
		}
		if err := w.legacyMessage(inner[:12+size], b, false); err != nil {
			return err
		}
		inner = inner[12+size:]
	}
	return nil
}

// inflate decompresses a batch's records within the entry's budget, saying
// in the entry what it could not do. What the caps cut is simply not there:
// the caller reads the records that are whole.
func (w *walker) inflate(codec int8, src []byte) ([]byte, bool) {
	if codec == 0 {
		return src, true
	}
	limit := min(w.recs.decodedCap, w.recs.decodeLeft)
	if limit <= 0 {
		w.c.d.count(CountDecodeBudget)
		w.e.Warn(fmt.Sprintf("records not decompressed: the entry's budget of %d decoded bytes is spent", decodeBudgetFactor*w.recs.decodedCap))
		return nil, false
	}
	if w.buf == nil {
		w.buf = w.c.d.codecs.buffer()
	}
	out, capped, err := w.c.d.codecs.decompress(codec, src, limit, w.buf)
	w.recs.decodeLeft -= len(out)
	if err != nil {
		w.c.d.count(CountDecompressError)
		w.e.Warn(fmt.Sprintf("%s records not decompressed: %v", codecName(codec), err))
		return nil, false
	}
	if capped {
		w.c.d.count(CountDecodedCap)
		w.e.Warn(fmt.Sprintf("%s records decompressed up to the %d-byte cap only", codecName(codec), w.recs.decodedCap))
	}
	return out, true
}

func codecName(c int8) string {
	switch c {
	case 0:
		return "none"
	case 1:
		return "gzip"
	case 2:
		return "snappy"
	case 3:
		return "lz4"
	case 4:
		return "zstd"
	}
	return fmt.Sprintf("codec-%d", c)
}
