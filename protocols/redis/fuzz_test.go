package redis

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/protocolstest"
)

// conversation cuts the client's and the server's bytes into pieces chosen
// by seed and interleaves them; odd seeds lose some server bytes on the way.
func conversation(client, server []byte, seed uint64) []protocolstest.Chunk {
	r := rand.New(rand.NewPCG(seed, 7))
	cut := func(b []byte) [][]byte {
		var out [][]byte
		for len(b) > 0 {
			n := 1 + r.IntN(len(b))
			out = append(out, b[:n])
			b = b[n:]
		}
		return out
	}
	cs, ss := cut(client), cut(server)
	var out []protocolstest.Chunk
	for i := 0; i < max(len(cs), len(ss)); i++ {
		if i < len(cs) {
			out = append(out, protocolstest.Chunk{Dir: protocols.ClientToServer, Data: cs[i]})
		}
		if i < len(ss) {
			out = append(out, protocolstest.Chunk{Dir: protocols.ServerToClient, Data: ss[i]})
		}
		if i == 0 && seed%2 == 1 {
			out = append(out, protocolstest.Chunk{Dir: protocols.ServerToClient, Gap: int(seed%64) - 1})
		}
	}
	return out
}

// fuzzRun feeds chunks like the pipeline does and checks the invariants a
// Conn must keep whatever it is fed.
func fuzzRun(t *testing.T, chunks []protocolstest.Chunk) ([]string, error) {
	var entries []*protocols.Entry
	failed := false
	info := protocols.ConnInfo{Options: protocols.DefaultOptions()}
	info.Options.MaxPending = 16
	c := newConn(info, func(e *protocols.Entry) {
		if failed {
			t.Fatalf("entry emitted after the error: %s", describeEntry(e))
		}
		entries = append(entries, e)
	})
	var pending [2][]byte
	var err error
	ts := time.Unix(0, 0)
	for _, ch := range chunks {
		if ch.Gap != 0 {
			pending[ch.Dir] = nil
			c.Gap(ch.Dir, ch.Gap, ts)
			continue
		}
		buf := append(pending[ch.Dir], ch.Data...)
		var n int
		n, err = c.Feed(ch.Dir, buf, ts)
		if n < 0 || n > len(buf) {
			t.Fatalf("Feed consumed %d of %d bytes", n, len(buf))
		}
		for _, d := range c.dec {
			if len(d.stack) > maxDepth {
				t.Fatalf("nesting %d past the cap", len(d.stack))
			}
		}
		if len(c.queue) > info.Options.MaxPending {
			t.Fatalf("%d commands waiting, cap %d", len(c.queue), info.Options.MaxPending)
		}
		if err != nil {
			failed = true
			if n2, err2 := c.Feed(ch.Dir, buf[n:], ts); n2 != 0 || err2 == nil {
				t.Fatalf("Feed after an error consumed %d, error %v", n2, err2)
			}
			break
		}
		if len(buf)-n > maxLine+2 {
			t.Fatalf("%d bytes left unconsumed: more than a line", len(buf)-n)
		}
		pending[ch.Dir] = append([]byte(nil), buf[n:]...)
	}
	c.Close(protocols.ClosedFIN, ts)
	for _, e := range entries {
		r := e.Redis
		if len(r.Reply) > replyCap+16 || len(r.Error) > replyCap+16 || len(r.Attributes) > replyCap+16 || len(r.Args) > maxArgs {
			t.Fatalf("entry past the display caps: reply %d, error %d, attributes %d bytes, %d args", len(r.Reply), len(r.Error), len(r.Attributes), len(r.Args))
		}
	}
	return describeAll(entries), err
}

var fuzzSeeds = [][2]string{
	{"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", "+OK\r\n$1\r\nv\r\n"},
	{"PING\r\nset a \"b\\x41\" 'c'\r\nCLIENT REPLY SKIP\r\nPING\r\nPING\r\n", "+PONG\r\n-ERR x\r\n+PONG\r\n"},
	{"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n*1\r\n$4\r\nPING\r\n", "%1\r\n$5\r\nproto\r\n:3\r\n>2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n|1\r\n+ttl\r\n:1\r\n+PONG\r\n"},
	{"*1\r\n$4\r\nPING\r\n", "*7\r\n_\r\n#t\r\n,1.5\r\n(123\r\n=7\r\ntxt:abc\r\n!3\r\nERR\r\n~1\r\n%1\r\n:1\r\n*-1\r\n"},
	{"*2\r\n$9\r\nSUBSCRIBE\r\n$1\r\na\r\n*1\r\n$11\r\nUNSUBSCRIBE\r\n", "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$1\r\nm\r\n*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:0\r\n"},
	{"MULTI\r\nINCR x\r\nEXEC\r\nMONITOR\r\n", "+OK\r\n+QUEUED\r\n*1\r\n:1\r\n+OK\r\n+1700000000.1 [0 1.2.3.4:5] \"GET\"\r\n"},
	{"AUTH a b\r\n*6\r\n$5\r\nHELLO\r\n$1\r\n3\r\n$4\r\nAUTH\r\n$1\r\nu\r\n$1\r\np\r\n$1\r\nx\r\n", "-WRONGPASS no\r\n-ERR syntax\r\n"},
	{"*3\r\n$5\r\nPSYNC\r\n$1\r\n?\r\n$2\r\n-1\r\n*3\r\n$8\r\nREPLCONF\r\n$3\r\nACK\r\n$1\r\n0\r\n", "+FULLRESYNC a 0\r\n\n$EOF:0123456789abcdef0123456789abcdef01234567\r\nRDB0123456789abcdef0123456789abcdef01234567*1\r\n$4\r\nPING\r\n"},
	{"*3\r\n$5\r\nPSYNC\r\n$1\r\n?\r\n$2\r\n-1\r\n", "+FULLRESYNC a 0\r\n$3\r\nRDB*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n"},
	{"*1\r\n$4\r\nPING\r\n", "*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n"},
}

func FuzzConn(f *testing.F) {
	for i, s := range fuzzSeeds {
		f.Add([]byte(s[0]), []byte(s[1]), uint64(i))
	}
	f.Fuzz(func(t *testing.T, client, server []byte, seed uint64) {
		for _, p := range [][]byte{client, server} {
			d := New().Detect(p, protocols.Ports{Src: 40000, Dst: 6379})
			if d.Verdict > protocols.NoMatch {
				t.Fatalf("verdict %d", d.Verdict)
			}
		}
		chunks := conversation(client, server, seed)
		want, wantErr := fuzzRun(t, chunks)
		got, gotErr := fuzzRun(t, protocolstest.Split(chunks, seed))
		if !slices.Equal(got, want) {
			t.Fatalf("split entries\n%q\nwhole\n%q", got, want)
		}
		var a, b *protocols.ParseError
		if errors.As(gotErr, &a) != errors.As(wantErr, &b) || a != nil && a.Code != b.Code {
			t.Fatalf("split error %v, whole %v", gotErr, wantErr)
		}
	})
}
