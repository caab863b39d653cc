package redis

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/protocolstest"
)

// startServer runs Debian's redis-server on a free loopback port, without
// persistence, for the length of the test, and returns its address.
func startServer(t *testing.T, extra ...string) string {
	t.Helper()
	addr, _ := startStoppable(t, extra...)
	return addr
}

// startStoppable is startServer that also returns a function to stop the
// server before the test ends.
func startStoppable(t *testing.T, extra ...string) (string, func()) {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed: the live Redis tests need Debian's redis-server package (apt-get install -y redis-server)")
	}
	dir := t.TempDir()
	for attempt := 0; attempt < 5; attempt++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
		ln.Close()
		args := append([]string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--dir", dir, "--enable-debug-command", "yes", "--logfile", ""}, extra...)
		cmd := exec.Command(path, args...)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = cmd.Stdout
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting redis-server: %v", err)
		}
		ready := make(chan bool, 1)
		var log strings.Builder
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				log.WriteString(sc.Text() + "\n")
				if strings.Contains(sc.Text(), "Ready to accept connections") {
					ready <- true
					// Keep draining so that the server never blocks on its log.
					for sc.Scan() {
					}
					return
				}
			}
			ready <- false
		}()
		select {
		case ok := <-ready:
			if ok {
				var once sync.Once
				stop := func() {
					once.Do(func() {
						cmd.Process.Kill()
						cmd.Wait()
					})
				}
				t.Cleanup(stop)
				return net.JoinHostPort("127.0.0.1", port), stop
			}
			cmd.Wait()
			t.Logf("redis-server did not start (attempt %d):\n%s", attempt+1, log.String())
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("redis-server not ready after 20s")
		}
	}
	t.Fatal("redis-server did not start on any port")
	return "", nil
}

// issued records, through go-redis hooks, every command a client sent and
// what go-redis made of the reply.
type issued struct {
	mu   sync.Mutex
	cmds []issuedCmd
}

type issuedCmd struct {
	cmd goredis.Cmder
	// inTx: sent between MULTI and EXEC, so answered QUEUED.
	inTx bool
}

func (h *issued) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h *issued) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		err := next(ctx, cmd)
		h.mu.Lock()
		h.cmds = append(h.cmds, issuedCmd{cmd: cmd})
		h.mu.Unlock()
		return err
	}
}

func (h *issued) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		err := next(ctx, cmds)
		h.mu.Lock()
		inTx := false
		for _, c := range cmds {
			switch c.Name() {
			case "multi":
				h.cmds = append(h.cmds, issuedCmd{cmd: c})
				inTx = true
			case "exec":
				h.cmds = append(h.cmds, issuedCmd{cmd: c})
				inTx = false
			default:
				h.cmds = append(h.cmds, issuedCmd{cmd: c, inTx: inTx})
			}
		}
		h.mu.Unlock()
		return err
	}
}

// handshake are the commands go-redis sends on its own when it connects.
var handshake = map[string]bool{"HELLO": true, "CLIENT SETINFO": true, "CLIENT SETNAME": true, "AUTH": true, "SELECT": true}

// entryKey names a command the way the entry shows it: "SET k v".
func entryKey(e *protocols.Entry) string {
	return strings.Join(append([]string{e.Redis.Command}, e.Redis.Args...), " ")
}

// cmdKey names a go-redis command the same way.
func cmdKey(t *testing.T, c goredis.Cmder) string {
	var args []string
	for _, a := range c.Args() {
		var b []byte
		switch v := a.(type) {
		case string:
			b = []byte(v)
		case []byte:
			b = v
		case int:
			b = strconv.AppendInt(nil, int64(v), 10)
		case int64:
			b = strconv.AppendInt(nil, v, 10)
		case float64:
			b = strconv.AppendFloat(nil, v, 'f', -1, 64)
		case bool:
			b = []byte("0")
			if v {
				b = []byte("1")
			}
		default:
			t.Fatalf("argument %v of %T: the test does not format it", a, a)
		}
		args = append(args, string(b))
	}
	name := strings.ToUpper(args[0])
	first := 1
	if commands[name].container && len(args) > 1 {
		name += " " + strings.ToUpper(args[1])
		first = 2
	}
	rest := make([][]byte, 0, len(args)-first)
	for _, a := range args[first:] {
		rest = append(rest, []byte(a))
	}
	sub := ""
	if first == 2 {
		sub = strings.ToUpper(args[1])
	}
	redactArgs(strings.ToUpper(args[0]), sub, rest, protocols.SecretPolicy{})
	shown := []string{name}
	for _, a := range rest {
		s, _ := display(a, argCap)
		shown = append(shown, s)
	}
	return strings.Join(shown, " ")
}

// checkReply says what is wrong with an entry's reply for what go-redis read.
func checkReply(e *protocols.Entry, c issuedCmd) error {
	r := e.Redis
	err := c.cmd.Err()
	switch {
	case c.inTx:
		// Inside MULTI the wire reply is QUEUED or a queueing error; the
		// result go-redis shows came with EXEC.
		if r.Queued || r.ReplyType == "error" {
			return nil
		}
		return fmt.Errorf("queued command: reply %s %q, want QUEUED", r.ReplyType, r.Reply)
	case c.cmd.Name() == "multi":
		// go-redis gives MULTI the outcome of the whole transaction.
		if r.ReplyType != "simple_string" || r.Reply != "OK" {
			return fmt.Errorf("MULTI reply %s %q", r.ReplyType, r.Reply)
		}
		return nil
	case c.cmd.Name() == "exec":
		if r.ReplyType != "array" && r.ReplyType != "null" && r.ReplyType != "error" {
			return fmt.Errorf("EXEC reply %s", r.ReplyType)
		}
		return nil
	case errors.Is(err, goredis.Nil):
		if r.ReplyType != "null" {
			return fmt.Errorf("reply %s %q, go-redis read nil", r.ReplyType, r.Reply)
		}
		return nil
	case err != nil:
		if r.Error != err.Error() {
			return fmt.Errorf("error %q, go-redis read %q", r.Error, err.Error())
		}
		if want, _, _ := strings.Cut(err.Error(), " "); e.Summary.Status != want {
			return fmt.Errorf("status %q, want %q", e.Summary.Status, want)
		}
		return nil
	}
	if e.Summary.Status != "OK" {
		return fmt.Errorf("status %q for a reply go-redis read as a success", e.Summary.Status)
	}
	want := ""
	switch cmd := c.cmd.(type) {
	case *goredis.StatusCmd:
		want = cmd.Val()
	case *goredis.IntCmd:
		want = strconv.FormatInt(cmd.Val(), 10)
	case *goredis.StringCmd:
		want = strconv.Quote(cmd.Val())
	case *goredis.StringSliceCmd:
		if r.ReplyCount != int64(len(cmd.Val())) {
			return fmt.Errorf("reply of %d elements, go-redis read %d", r.ReplyCount, len(cmd.Val()))
		}
		for _, s := range cmd.Val() {
			if !strings.Contains(r.Reply, strconv.Quote(s)) {
				return fmt.Errorf("reply %s lacks %q", r.Reply, s)
			}
		}
		return nil
	case *goredis.MapStringStringCmd:
		n := int64(len(cmd.Val()))
		if r.ReplyType == "array" {
			n *= 2
		}
		if r.ReplyCount != n {
			return fmt.Errorf("%s reply of %d elements for a map of %d", r.ReplyType, r.ReplyCount, len(cmd.Val()))
		}
		return nil
	case *goredis.FloatCmd:
		f, perr := strconv.ParseFloat(strings.Trim(r.Reply, `"`), 64)
		if perr != nil || f != cmd.Val() {
			return fmt.Errorf("reply %q, go-redis read %v", r.Reply, cmd.Val())
		}
		return nil
	}
	if r.ReplyType == "" {
		return errors.New("no reply")
	}
	if r.ReplyTruncated {
		// The reply is cut to its first bytes and marked with "...".
		if p := strings.TrimSuffix(r.Reply, "..."); !strings.HasPrefix(want, p) || len(p) >= len(want) {
			return fmt.Errorf("cut reply %.40q... does not start %.40q...", r.Reply, want)
		}
		return nil
	}
	if want != "" && r.Reply != want {
		return fmt.Errorf("reply %q, go-redis read %q", r.Reply, want)
	}
	return nil
}

// record runs scenario against a fresh server through a recorder and
// returns the entries of every recorded connection, checked for split
// invariance, and the commands go-redis sent.
func record(t *testing.T, serverArgs []string, scenario func(ctx context.Context, addr string, h *issued)) ([][]*protocols.Entry, *issued) {
	t.Helper()
	rec := protocolstest.NewRecorder(t, startServer(t, serverArgs...))
	h := &issued{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	scenario(ctx, rec.Addr, h)
	rec.Close()
	var out [][]*protocols.Entry
	for i, chunks := range rec.Conns() {
		res := replay(t, protocols.ConnInfo{}, chunks)
		if res.Err != nil {
			t.Fatalf("connection %d: %v", i, res.Err)
		}
		out = append(out, res.Entries)
	}
	return out, h
}

// checkIssued checks that every command go-redis sent appears exactly once,
// with the reply go-redis read, and that nothing else appears but the
// handshake, the one-way pushes, and the commands of unhooked (pub/sub)
// connections, counted in unhooked by "COMMAND args".
func checkIssued(t *testing.T, conns [][]*protocols.Entry, h *issued, unhooked map[string]int) {
	t.Helper()
	var all []*protocols.Entry
	for _, es := range conns {
		all = append(all, es...)
	}
	used := make([]bool, len(all))
	for _, c := range h.cmds {
		key := cmdKey(t, c.cmd)
		found := false
		for i, e := range all {
			if used[i] || e.Redis.PushKind != "" || entryKey(e) != key {
				continue
			}
			used[i], found = true, true
			if err := checkReply(e, c); err != nil {
				t.Errorf("%s: %v", key, err)
			}
			break
		}
		if !found {
			t.Errorf("%s: no entry (go-redis: %v)", key, c.cmd)
		}
	}
	for i, e := range all {
		switch {
		case e.Unmatched != "" || e.Gap || len(e.Warnings) > 0:
			t.Errorf("entry %s: unmatched %q gap %v warnings %q", entryKey(e), e.Unmatched, e.Gap, e.Warnings)
		case used[i] || e.Redis.PushKind != "":
		case handshake[e.Redis.Command]:
		case unhooked[entryKey(e)] > 0:
			unhooked[entryKey(e)]--
		default:
			t.Errorf("entry %s -> %s %s: go-redis sent no such command", entryKey(e), e.Redis.ReplyType, e.Redis.Reply)
		}
	}
	for k, n := range unhooked {
		if n != 0 {
			t.Errorf("%s: %d fewer entries than commands", k, n)
		}
	}
}

func newClient(addr string, h *issued, protocol int) *goredis.Client {
	c := goredis.NewClient(&goredis.Options{Addr: addr, Protocol: protocol, PoolSize: 1, MaxRetries: -1})
	c.AddHook(h)
	return c
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil && !errors.Is(err, goredis.Nil) {
		t.Fatal(err)
	}
}

func TestLiveCommands(t *testing.T) {
	for _, protocol := range []int{2, 3} {
		t.Run(fmt.Sprintf("RESP%d", protocol), func(t *testing.T) {
			conns, h := record(t, nil, func(ctx context.Context, addr string, h *issued) {
				c := newClient(addr, h, protocol)
				defer c.Close()
				c.Set(ctx, "s", "value", 0)
				c.Get(ctx, "s")
				c.Get(ctx, "missing")
				c.Incr(ctx, "n")
				c.IncrByFloat(ctx, "f", 1.5)
				c.Set(ctx, "bin", "\x00\x01\xff", 0)
				c.Get(ctx, "bin")
				c.Set(ctx, "large", strings.Repeat("L", 100<<10), 0)
				c.Get(ctx, "large")
				c.LPush(ctx, "l", "a", "b", "c")
				c.LRange(ctx, "l", 0, -1)
				c.LLen(ctx, "s")
				c.HSet(ctx, "h", "f1", "v1", "f2", "v2")
				c.HGetAll(ctx, "h")
				c.SAdd(ctx, "set", "x", "y")
				c.SMembers(ctx, "set")
				c.ZAdd(ctx, "z", goredis.Z{Score: 1.5, Member: "m"})
				c.ZScore(ctx, "z", "m")
				c.ZRangeWithScores(ctx, "z", 0, -1)
				c.Expire(ctx, "s", time.Hour)
				c.TTL(ctx, "s")
				c.XAdd(ctx, &goredis.XAddArgs{Stream: "st", ID: "1-1", Values: []string{"k", "v"}})
				c.XRange(ctx, "st", "-", "+")
				c.Do(ctx, "NOSUCHCOMMAND", "x")
				c.Eval(ctx, "return redis.call('GET', KEYS[1])", []string{"s"})
				c.ObjectEncoding(ctx, "l")
				c.Del(ctx, "s", "n")
				for _, typ := range []string{"string", "integer", "double", "bignum", "null", "array", "set", "map", "attrib", "push", "verbatim", "true", "false"} {
					c.Do(ctx, "DEBUG", "PROTOCOL", typ)
				}
			})
			checkIssued(t, conns, h, nil)
			// DEBUG PROTOCOL shows every reply type the server has.
			want := map[string]string{
				"string": "bulk_string", "integer": "integer", "double": "double", "bignum": "big_number",
				"null": "null", "array": "array", "set": "set", "map": "map", "attrib": "bulk_string",
				"push": "bulk_string", "verbatim": "verbatim_string", "true": "boolean", "false": "boolean",
			}
			if protocol == 2 {
				want = map[string]string{
					"string": "bulk_string", "integer": "integer", "double": "bulk_string", "bignum": "bulk_string",
					"null": "null", "array": "array", "set": "array", "map": "array", "attrib": "bulk_string",
					"push": "error", "verbatim": "bulk_string", "true": "integer", "false": "integer",
				}
			}
			pushes := 0
			for _, e := range conns[0] {
				if e.Redis.PushKind != "" {
					pushes++
					if e.Redis.PushKind != "server-cpu-usage" || e.Redis.Reply != `["server-cpu-usage", 42]` {
						t.Errorf("push %s %s, want server-cpu-usage", e.Redis.PushKind, e.Redis.Reply)
					}
				}
				if e.Redis.Command != "DEBUG" || len(e.Redis.Args) != 2 {
					continue
				}
				if got := e.Redis.ReplyType; got != want[e.Redis.Args[1]] {
					t.Errorf("DEBUG PROTOCOL %s: reply type %s, want %s", e.Redis.Args[1], got, want[e.Redis.Args[1]])
				}
				if e.Redis.Args[1] == "attrib" && (protocol == 3) != (e.Redis.Attributes != "") {
					t.Errorf("DEBUG PROTOCOL attrib: attributes %q", e.Redis.Attributes)
				}
			}
			if want := protocol - 2; pushes != want {
				t.Errorf("%d pushes, want %d", pushes, want)
			}
		})
	}
}

func TestLivePipelineAndTransaction(t *testing.T) {
	conns, h := record(t, nil, func(ctx context.Context, addr string, h *issued) {
		c := newClient(addr, h, 3)
		defer c.Close()
		_, err := c.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for i := range 300 {
				k := "p" + strconv.Itoa(i%7)
				switch i % 3 {
				case 0:
					p.Incr(ctx, k)
				case 1:
					p.Set(ctx, k+"s", strings.Repeat("v", i), 0)
				default:
					p.Get(ctx, k+"s")
				}
			}
			return nil
		})
		must(t, err)
		_, err = c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			p.Incr(ctx, "tx")
			p.Set(ctx, "txs", "x", 0)
			p.Get(ctx, "txs")
			p.LPush(ctx, "txs", "wrong type at EXEC")
			return nil
		})
		if err == nil || !strings.HasPrefix(err.Error(), "WRONGTYPE") {
			t.Errorf("transaction: %v, want WRONGTYPE", err)
		}
		_, err = c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			p.Incr(ctx, "tx")
			p.Do(ctx, "SET", "only-a-key")
			return nil
		})
		if err == nil || !strings.HasPrefix(err.Error(), "ERR") && !strings.HasPrefix(err.Error(), "EXECABORT") {
			t.Errorf("aborted transaction: %v", err)
		}
	})
	checkIssued(t, conns, h, nil)
	queued, execs := 0, 0
	for _, es := range conns {
		for _, e := range es {
			if e.Redis.Queued {
				queued++
			}
			if e.Redis.Command == "EXEC" {
				execs++
			}
		}
	}
	if queued != 5 || execs != 2 {
		t.Errorf("%d queued commands and %d EXEC, want 5 and 2", queued, execs)
	}
}

func TestLivePubSub(t *testing.T) {
	for _, protocol := range []int{2, 3} {
		t.Run(fmt.Sprintf("RESP%d", protocol), func(t *testing.T) {
			const perChannel = 5
			conns, h := record(t, nil, func(ctx context.Context, addr string, h *issued) {
				sub := newClient(addr, h, protocol)
				defer sub.Close()
				pub := newClient(addr, h, protocol)
				defer pub.Close()
				ps := sub.Subscribe(ctx, "ch1", "ch2")
				defer ps.Close()
				for range 2 {
					if _, err := ps.Receive(ctx); err != nil {
						t.Fatal(err)
					}
				}
				must(t, ps.PSubscribe(ctx, "p*"))
				if _, err := ps.Receive(ctx); err != nil {
					t.Fatal(err)
				}
				for i := range perChannel {
					pub.Publish(ctx, "ch1", "one "+strconv.Itoa(i))
					pub.Publish(ctx, "ch2", "two "+strconv.Itoa(i))
					pub.Publish(ctx, "pat", "pat "+strconv.Itoa(i))
				}
				for range 3 * perChannel {
					if _, err := ps.ReceiveMessage(ctx); err != nil {
						t.Fatal(err)
					}
				}
				must(t, ps.Ping(ctx))
				if _, err := ps.Receive(ctx); err != nil {
					t.Fatal(err)
				}
				must(t, ps.Unsubscribe(ctx))
				must(t, ps.PUnsubscribe(ctx))
				for range 3 {
					if _, err := ps.Receive(ctx); err != nil {
						t.Fatal(err)
					}
				}
			})
			checkIssued(t, conns, h, map[string]int{"SUBSCRIBE ch1 ch2": 1, "PSUBSCRIBE p*": 1, "PING": 1, "UNSUBSCRIBE": 1, "PUNSUBSCRIBE": 1})
			got := map[string]int{}
			for _, es := range conns {
				for _, e := range es {
					r := e.Redis
					if r.PushKind != "" {
						got[r.PushKind+" "+r.Pattern+" "+r.Channel]++
						continue
					}
					switch r.Command {
					case "SUBSCRIBE", "UNSUBSCRIBE":
						if n := strings.Count(r.Reply, "subscribe"); n != 2 {
							t.Errorf("%s: %d confirmations in %s, want 2", r.Command, n, r.Reply)
						}
						got[r.Command]++
					case "PSUBSCRIBE", "PUNSUBSCRIBE", "PING":
						got[r.Command]++
					}
				}
			}
			want := map[string]int{
				"message  ch1": perChannel, "message  ch2": perChannel, "pmessage p* pat": perChannel,
				"SUBSCRIBE": 1, "PSUBSCRIBE": 1, "PING": 1, "UNSUBSCRIBE": 1, "PUNSUBSCRIBE": 1,
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("pub/sub entries %v, want %v", got, want)
			}
		})
	}
}

func TestLiveTrackingInvalidation(t *testing.T) {
	conns, h := record(t, nil, func(ctx context.Context, addr string, h *issued) {
		c := newClient(addr, h, 3)
		defer c.Close()
		other := newClient(addr, h, 3)
		defer other.Close()
		conn := c.Conn()
		defer conn.Close()
		must(t, conn.Do(ctx, "CLIENT", "TRACKING", "ON").Err())
		for i := range 3 {
			must(t, conn.Get(ctx, "tracked").Err())
			must(t, other.Set(ctx, "tracked", strconv.Itoa(i), 0).Err())
		}
		// The last invalidation is read before this reply.
		must(t, conn.Ping(ctx).Err())
	})
	checkIssued(t, conns, h, nil)
	invalidations := 0
	for _, es := range conns {
		for _, e := range es {
			if e.Redis.PushKind == "invalidate" {
				invalidations++
				if e.Redis.Key != "tracked" {
					t.Errorf("invalidation of %q, want tracked", e.Redis.Key)
				}
			}
		}
	}
	if invalidations != 3 {
		t.Errorf("%d invalidation pushes, want 3", invalidations)
	}
}

func TestLiveAuth(t *testing.T) {
	const password = "s3cr3t-pa55"
	for _, protocol := range []int{2, 3} {
		t.Run(fmt.Sprintf("RESP%d", protocol), func(t *testing.T) {
			conns, h := record(t, []string{"--requirepass", password}, func(ctx context.Context, addr string, h *issued) {
				c := goredis.NewClient(&goredis.Options{Addr: addr, Protocol: protocol, Password: password, PoolSize: 1})
				c.AddHook(h)
				defer c.Close()
				must(t, c.Set(ctx, "k", "v", 0).Err())
				if err := c.Do(ctx, "AUTH", "wrong").Err(); err == nil {
					t.Error("AUTH with a wrong password succeeded")
				}
				must(t, c.Do(ctx, "AUTH", password).Err())
			})
			checkIssued(t, conns, h, nil)
			auth := 0
			for _, es := range conns {
				for _, e := range es {
					js, err := json.Marshal(e)
					if err != nil {
						t.Fatal(err)
					}
					if strings.Contains(string(js), password) {
						t.Errorf("entry shows the password: %s", js)
					}
					if c := e.Redis.Command; c == "AUTH" || c == "HELLO" && len(e.Redis.Args) > 1 {
						auth++
						if !e.Redacted || !strings.Contains(string(js), protocols.Redacted) {
							t.Errorf("%s not marked redacted: %s", c, js)
						}
					}
				}
			}
			if auth < 3 {
				t.Errorf("%d authenticating commands, want at least 3", auth)
			}
		})
	}
}

func TestLiveBenchmark(t *testing.T) {
	path, err := exec.LookPath("redis-benchmark")
	if err != nil {
		t.Skip("redis-benchmark is not installed: it comes with Debian's redis-tools package (apt-get install -y redis-tools)")
	}
	const n = 480 // a multiple of clients × pipeline, so that no client sends more
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"RESP2 pipelined", []string{"-P", "16"}},
		{"RESP3 pipelined", []string{"-P", "16", "-3"}},
		{"RESP2 one by one", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := protocolstest.NewRecorder(t, startServer(t))
			host, port, _ := net.SplitHostPort(rec.Addr)
			args := append([]string{"-h", host, "-p", port, "-n", strconv.Itoa(n), "-c", "2", "-q",
				"-t", "ping,set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,zpopmin,lrange_100,mset"}, tc.args...)
			out, err := exec.Command(path, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("redis-benchmark: %v\n%s", err, out)
			}
			rec.Close()
			counts := map[string]int{}
			for i, chunks := range rec.Conns() {
				res := replay(t, protocols.ConnInfo{}, chunks)
				if res.Err != nil {
					t.Fatalf("connection %d: %v", i, res.Err)
				}
				for _, e := range res.Entries {
					r := e.Redis
					if e.Unmatched != "" || e.Gap || len(e.Warnings) > 0 || r.PushKind != "" {
						t.Fatalf("connection %d: entry %s unmatched %q gap %v warnings %q push %q", i, entryKey(e), e.Unmatched, e.Gap, e.Warnings, r.PushKind)
					}
					key := r.Command
					if r.Inline {
						key += " inline"
					}
					counts[key]++
					if err := benchmarkReply(e); err != nil {
						t.Errorf("connection %d: %s: %v", i, entryKey(e), err)
					}
				}
			}
			want := map[string]int{
				"PING inline": n, "PING": n, "SET": n, "GET": n, "INCR": n, "LPUSH": 2 * n, "RPUSH": n,
				"LPOP": n, "RPOP": n, "SADD": n, "HSET": n, "SPOP": n, "ZADD": n, "ZPOPMIN": n, "LRANGE": n, "MSET": n,
			}
			for k, v := range want {
				if counts[k] != v {
					t.Errorf("%d %s commands, want %d", counts[k], k, v)
				}
			}
			for k := range counts {
				if _, ok := want[k]; !ok && k != "CONFIG GET" && k != "HELLO" {
					t.Errorf("%d unexpected %s commands", counts[k], k)
				}
			}
		})
	}
}

// benchmarkReply checks a redis-benchmark reply against what its command returns.
func benchmarkReply(e *protocols.Entry) error {
	r := e.Redis
	want := map[string]string{
		"PING": "simple_string", "SET": "simple_string", "MSET": "simple_string", "GET": "bulk_string",
		"INCR": "integer", "LPUSH": "integer", "RPUSH": "integer", "SADD": "integer", "HSET": "integer", "ZADD": "integer",
		"LPOP": "bulk_string", "RPOP": "bulk_string", "SPOP": "bulk_string", "LRANGE": "array",
		"CONFIG GET": "array", "HELLO": "map",
	}[r.Command]
	switch {
	case r.Command == "ZPOPMIN" && (r.ReplyType == "array" || r.ReplyType == "map"):
	case r.ReplyType == "null" && want == "bulk_string":
		// The benchmark pops from one key: it is soon empty.
	case r.Command == "CONFIG GET" && r.ReplyType == "map":
	case r.ReplyType != want:
		return fmt.Errorf("reply %s %s, want %s", r.ReplyType, r.Reply, want)
	case r.Command == "PING" && r.Reply != "PONG", (r.Command == "SET" || r.Command == "MSET") && r.Reply != "OK":
		return fmt.Errorf("reply %s", r.Reply)
	case r.Command == "LRANGE" && (r.ReplyCount < 1 || r.ReplyCount > 100):
		return fmt.Errorf("LRANGE of %d elements", r.ReplyCount)
	}
	return nil
}

func TestLiveMonitor(t *testing.T) {
	lines := 0
	conns, h := record(t, nil, func(ctx context.Context, addr string, h *issued) {
		mon, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer mon.Close()
		rd := bufio.NewReader(mon)
		readLine := func() string {
			mon.SetReadDeadline(time.Now().Add(10 * time.Second))
			l, err := rd.ReadString('\n')
			if err != nil {
				t.Fatalf("reading MONITOR: %v", err)
			}
			return l
		}
		fmt.Fprint(mon, "*1\r\n$7\r\nMONITOR\r\n")
		if l := readLine(); l != "+OK\r\n" {
			t.Fatalf("MONITOR: %q", l)
		}
		c := newClient(addr, h, 3)
		defer c.Close()
		for i := range 3 {
			must(t, c.Set(ctx, "watched", i, 0).Err())
		}
		// The server reports every command, the client's handshake too.
		for seen := 0; seen < 3; lines++ {
			if strings.Contains(readLine(), `"set" "watched"`) {
				seen++
			}
		}
		fmt.Fprint(mon, "RESET\r\n")
		if l := readLine(); l != "+RESET\r\n" {
			t.Fatalf("RESET: %q", l)
		}
	})
	checkIssued(t, conns, h, map[string]int{"MONITOR": 1, "RESET": 1})
	got := 0
	for _, e := range conns[0] {
		if e.Redis.PushKind == "monitor" {
			got++
		}
	}
	if got != lines {
		t.Errorf("%d monitor pushes, want %d", got, lines)
	}
}

func TestLiveReplication(t *testing.T) {
	for _, diskless := range []string{"yes", "no"} {
		t.Run("diskless sync "+diskless, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			master := startServer(t, "--repl-diskless-sync", diskless, "--repl-diskless-sync-delay", "0")
			rec := protocolstest.NewRecorder(t, master)
			c := goredis.NewClient(&goredis.Options{Addr: master, Protocol: 2})
			defer c.Close()
			must(t, c.Set(ctx, "before", "the snapshot", 0).Err())
			host, port, _ := net.SplitHostPort(rec.Addr)
			_, stopReplica := startStoppable(t, "--replicaof", host, port)
			// WAIT returns once the replica has acknowledged every write.
			if n, err := c.Do(ctx, "WAIT", 1, 20000).Int(); err != nil || n != 1 {
				t.Fatalf("WAIT for the replica: %d, %v", n, err)
			}
			for i := range 5 {
				must(t, c.Set(ctx, "after", i, 0).Err())
			}
			if n, err := c.Do(ctx, "WAIT", 1, 20000).Int(); err != nil || n != 1 {
				t.Fatalf("WAIT for the replica: %d, %v", n, err)
			}
			stopReplica()
			rec.Close()
			conns := rec.Conns()
			if len(conns) != 1 {
				t.Fatalf("%d connections recorded, want the replica's", len(conns))
			}
			res := replay(t, protocols.ConnInfo{}, conns[0])
			if res.Err != nil {
				t.Fatal(res.Err)
			}
			got := map[string]int{}
			for _, e := range res.Entries {
				r := e.Redis
				if e.Unmatched != "" || e.Gap || len(e.Warnings) > 0 {
					t.Errorf("entry %s: unmatched %q gap %v warnings %q", line(e), e.Unmatched, e.Gap, e.Warnings)
				}
				switch {
				case r.PushKind == "rdb":
					got["rdb"]++
				case r.PushKind == "replication" && r.Command == "SET":
					got["replicated SET "+r.Key]++
				case r.PushKind == "replication":
					got["replicated"]++
				case r.Command == "PSYNC":
					if !strings.HasPrefix(r.Reply, "FULLRESYNC") {
						t.Errorf("PSYNC reply %q", r.Reply)
					}
					got["PSYNC"]++
				case r.Command == "REPLCONF" && r.NoReply:
					got["acknowledgements"]++
				}
			}
			if got["rdb"] != 1 || got["PSYNC"] != 1 || got["replicated SET after"] != 5 || got["replicated SET before"] != 0 || got["acknowledgements"] < 1 {
				t.Errorf("replication entries %v, want one snapshot, one PSYNC, 5 SETs of after and acknowledgements", got)
			}
		})
	}
}
