// Package bin is the one sticky-error reader of big-endian binary fields that
// every dissector reads fixed-layout protocol fields with (Kafka, AMQP).
//
// It follows franz-go's kbin.Reader: the first read that runs past the end
// fails the reader, every later read returns zero values, and the parser,
// reading in a straight line, checks Ok once at the end. A length or an
// element count is refused when it is larger than the bytes left, before
// anything is sized by it, so a hostile count cannot make a parser allocate.
//
// A Reader does not copy: the slices it returns alias the bytes it reads
// and are valid as long as those are. It is a value type, not safe for
// concurrent use; copy it to read ahead.
package bin
