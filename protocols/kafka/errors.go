package kafka

import "errors"

var (
	// errUndecodable wraps what kmsg's decoder could not read.
	errUndecodable = errors.New("undecodable")
	// errShortHeader: a flexible response header's tagged fields ran past the frame.
	errShortHeader = errors.New("response header runs past the frame")
	// errCorruptBatch: a record batch's fields contradict its length.
	errCorruptBatch = errors.New("corrupt record batch")
	// errUnknownCodec: a batch names a compression codec Kafka does not define.
	errUnknownCodec = errors.New("unknown compression codec")
)
