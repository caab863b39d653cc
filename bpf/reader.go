package bpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Direction is the hook a packet was captured on, as the interface sees it.
type Direction uint8

const (
	// Ingress: the packet arrived on the interface (DIR_INGRESS).
	Ingress Direction = 0
	// Egress: the packet left through the interface (DIR_EGRESS).
	Egress Direction = 1
)

func (d Direction) String() string {
	if d == Egress {
		return "egress"
	}
	return "ingress"
}

// eventHeaderSize is sizeof(struct event) in capture.bpf.c; the record
// layout is checked by the tests that run the program.
const eventHeaderSize = 24

// Record is one captured frame. It points into the ring buffer: it and Data
// are valid only until the callback that received it returns.
type Record struct {
	Time    time.Time
	WireLen int // the frame's length on the wire (a GSO super-packet's whole length)
	Ifindex int
	Dir     Direction
	Data    []byte // the first Record.Data bytes of the frame, starting with Ethernet
}

// ReaderStats count what a Reader took out of the ring buffer.
type ReaderStats struct {
	Read      uint64 // records taken out of the ring
	Malformed uint64 // records too short for their header (a Sonde bug if not zero)
}

// Reader reads the ring buffer in place (no copy) by mapping it into memory.
type Reader struct {
	cons, data []byte // consumer page; producer page and the ring mapped twice
	ring       []byte
	mask       uint64
	epfd, evfd int
	events     []unix.EpollEvent

	mu     sync.Mutex // held while the mapping is in use
	closed atomic.Bool
	stats  struct{ read, malformed atomic.Uint64 }
}

// NewReader maps the ring buffer. Only one Reader per Capture makes sense:
// records go to whichever reader takes them first.
func (c *Capture) NewReader() (*Reader, error) {
	fd := c.objs.Events.FD()
	page := os.Getpagesize()
	cons, err := unix.Mmap(fd, 0, page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mapping the consumer page: %w", err)
	}
	// The data pages are mapped twice in a row by the kernel, so a record
	// that wraps around the end is contiguous in memory.
	data, err := unix.Mmap(fd, int64(page), page+2*c.ringSize, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		unix.Munmap(cons)
		return nil, fmt.Errorf("mapping the ring: %w", err)
	}
	r := &Reader{cons: cons, data: data, ring: data[page:], mask: uint64(c.ringSize - 1), epfd: -1, evfd: -1}
	if err := r.setupPoll(fd); err != nil {
		r.release()
		return nil, err
	}
	return r, nil
}

func (r *Reader) setupPoll(ringFD int) error {
	var err error
	if r.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return fmt.Errorf("creating epoll: %w", err)
	}
	if r.evfd, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return fmt.Errorf("creating eventfd: %w", err)
	}
	for _, fd := range []int{ringFD, r.evfd} {
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
		if err := unix.EpollCtl(r.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			return fmt.Errorf("adding fd to epoll: %w", err)
		}
	}
	r.events = make([]unix.EpollEvent, 2)
	return nil
}

func (r *Reader) release() {
	if r.data != nil {
		unix.Munmap(r.data)
		r.data = nil
	}
	if r.cons != nil {
		unix.Munmap(r.cons)
		r.cons = nil
	}
	if r.epfd >= 0 {
		unix.Close(r.epfd)
		r.epfd = -1
	}
	if r.evfd >= 0 {
		unix.Close(r.evfd)
		r.evfd = -1
	}
}

// Stats returns the reader's counters. Safe for concurrent use.
func (r *Reader) Stats() ReaderStats {
	return ReaderStats{Read: r.stats.read.Load(), Malformed: r.stats.malformed.Load()}
}

// Close stops a Read in progress and releases the mapping.
func (r *Reader) Close() error {
	if r.closed.Swap(true) {
		return nil
	}
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	unix.Write(r.evfd, one[:])
	r.mu.Lock()
	defer r.mu.Unlock()
	r.release()
	return nil
}

// Read hands every record in the ring to fn, in order. When the ring is
// empty it first waits up to wait for a wakeup (records are submitted
// without one until the ring fills up, so wait is the polling interval).
// It returns the number of records handed over, or ErrClosed after Close.
func (r *Reader) Read(wait time.Duration, fn func(*Record)) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed.Load() {
		return 0, ErrClosed
	}
	if !r.pending() {
		ms := int((wait + time.Millisecond - 1) / time.Millisecond)
		if _, err := unix.EpollWait(r.epfd, r.events, ms); err != nil && !errors.Is(err, unix.EINTR) {
			return 0, fmt.Errorf("waiting for records: %w", err)
		}
		if r.closed.Load() {
			return 0, ErrClosed
		}
	}
	return r.drain(fn), nil
}

func (r *Reader) consPos() *uint64 { return (*uint64)(unsafe.Pointer(&r.cons[0])) }
func (r *Reader) prodPos() *uint64 { return (*uint64)(unsafe.Pointer(&r.data[0])) }

func (r *Reader) pending() bool {
	return atomic.LoadUint64(r.prodPos()) != atomic.LoadUint64(r.consPos())
}

// Ring buffer record header bits (include/uapi/linux/bpf.h).
const (
	ringbufBusyBit    = 1 << 31
	ringbufDiscardBit = 1 << 30
	ringbufHeaderSize = 8
)

func (r *Reader) drain(fn func(*Record)) int {
	var rec Record
	n := 0
	// bpf_ktime_get_ns is CLOCK_MONOTONIC; the offset to wall time is taken
	// once per batch so that clock steps are followed.
	offset := wallOffset()
	cons := atomic.LoadUint64(r.consPos())
	for {
		prod := atomic.LoadUint64(r.prodPos())
		if cons == prod {
			break
		}
		start := cons & r.mask
		hdr := atomic.LoadUint32((*uint32)(unsafe.Pointer(&r.ring[start])))
		if hdr&ringbufBusyBit != 0 {
			break // reserved but not yet committed: later records wait behind it
		}
		size := uint64(hdr &^ (ringbufBusyBit | ringbufDiscardBit))
		if start+ringbufHeaderSize+size > uint64(len(r.ring)) {
			// Impossible from a sane kernel; stop rather than read past the map.
			r.stats.malformed.Add(1)
			break
		}
		body := r.ring[start+ringbufHeaderSize : start+ringbufHeaderSize+size]
		if hdr&ringbufDiscardBit == 0 {
			r.stats.read.Add(1)
			if r.parse(body, offset, &rec) {
				fn(&rec)
				n++
			} else {
				r.stats.malformed.Add(1)
			}
		}
		cons += ringbufHeaderSize + (size+7)&^7
		// Give the space back record by record: the kernel may reuse it at once.
		atomic.StoreUint64(r.consPos(), cons)
	}
	return n
}

func (r *Reader) parse(b []byte, offset int64, rec *Record) bool {
	if len(b) < eventHeaderSize {
		return false
	}
	le := binary.LittleEndian
	capLen := int(le.Uint32(b[12:]))
	if capLen > len(b)-eventHeaderSize {
		return false
	}
	rec.Time = time.Unix(0, int64(le.Uint64(b[0:]))+offset)
	rec.WireLen = int(le.Uint32(b[8:]))
	rec.Ifindex = int(le.Uint32(b[16:]))
	rec.Dir = Direction(b[20])
	rec.Data = b[eventHeaderSize : eventHeaderSize+capLen]
	return true
}

// wallOffset is CLOCK_REALTIME - CLOCK_MONOTONIC in nanoseconds.
func wallOffset() int64 {
	var mono, real unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &mono)
	unix.ClockGettime(unix.CLOCK_REALTIME, &real)
	return real.Nano() - mono.Nano()
}
