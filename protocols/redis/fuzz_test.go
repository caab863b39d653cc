package redis

import (
	"math/rand/v2"
	"testing"

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

// checkBounds checks the bounds a Conn keeps whatever it is fed.
func checkBounds(t testing.TB, pc protocols.Conn, maxPending int) {
	c := pc.(*conn)
	for _, d := range c.dec {
		if len(d.stack) > maxDepth {
			t.Fatalf("nesting %d past the cap", len(d.stack))
		}
	}
	if len(c.queue) > maxPending {
		t.Fatalf("%d commands waiting, cap %d", len(c.queue), maxPending)
	}
}

// checkDisplay checks an entry against the display caps.
func checkDisplay(t testing.TB, e *protocols.Entry) {
	r := e.Redis
	if len(r.Reply) > replyCap+16 || len(r.Error) > replyCap+16 || len(r.Attributes) > replyCap+16 || len(r.Args) > maxArgs {
		t.Fatalf("entry past the display caps: reply %d, error %d, attributes %d bytes, %d args", len(r.Reply), len(r.Error), len(r.Attributes), len(r.Args))
	}
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
		info := protocols.ConnInfo{Options: protocols.DefaultOptions()}
		info.Options.MaxPending = 16
		protocolstest.CheckSplit(t, New(), conversation(client, server, seed), protocolstest.SplitOptions{
			Info:        info,
			Seeds:       []uint64{seed},
			Entry:       checkDisplay,
			AfterFeed:   func(t testing.TB, c protocols.Conn) { checkBounds(t, c, info.Options.MaxPending) },
			MaxLeftover: maxLine + 2,
			Strict:      true,
		})
	})
}
