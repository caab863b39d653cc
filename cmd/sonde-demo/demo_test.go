package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"

	"github.com/sondehq/sonde/lab/demo"
	"github.com/sondehq/sonde/lab/netlab"
	"github.com/sondehq/sonde/lab/rabbit"
	"github.com/sondehq/sonde/protocols"
)

const (
	// demoEntries is how many entries between named pods each protocol
	// must show.
	demoEntries = 3
	// demoWait bounds the wait for them; rabbitmq-server alone takes 10
	// to 20 seconds to start.
	demoWait = 90 * time.Second
	// demoStopWait bounds the clean-up after Ctrl-C.
	demoStopWait = 60 * time.Second
)

var demoScreenshot = flag.String("demo-screenshot", "", "TestDemo saves a screenshot of the demo's UI to this file (for the README)")

// demoChild makes the test binary run main with the arguments after "--"
// (the os/exec tests' helper-process pattern): the demo runs in a process
// of its own, as `make demo` runs it, without building the command again.
const demoChild = "SONDE_TEST_RUN_MAIN"

// TestDemo runs sonde-demo as a user would, in a process of its own, as
// root. Through the hub's API, every protocol whose server is installed
// must show entries between the lab's named pods, and Chromium must show
// them. After Ctrl-C nothing of the demo may remain: no network namespace,
// veth, eBPF program (so no TCX link or clsact filter) or process.
func TestDemo(t *testing.T) {
	if os.Getenv(demoChild) == "1" {
		args := os.Args[slices.Index(os.Args, "--")+1:]
		os.Args = append([]string{"sonde-demo"}, args...)
		main() // exits non-zero on failure
		os.Exit(0)
	}
	if os.Geteuid() != 0 {
		t.Skip("sonde-demo needs root (network namespaces, eBPF, TC): run the privileged tests as root")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestDemo$", "--",
		"--no-browser", "--listen", "127.0.0.1:0", "--duration", "5m")
	cmd.Env = append(os.Environ(), demoChild+"=1")
	// If this test dies, the demo cleans up as after Ctrl-C.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGINT}
	out := startDemo(t, cmd)
	stopped := false
	t.Cleanup(func() {
		if !stopped { // a failed check: still clean up, and show what it said
			cmd.Process.Signal(os.Interrupt)
			cmd.Wait()
		}
		t.Logf("sonde-demo said:\n%s", out.text())
	})

	prefix := out.match(t, regexp.MustCompile(`network namespaces (\S+)-\*`))
	session := out.match(t, regexp.MustCompile(`serving Sonde on (http://\S+)`))
	hub, token, ok := strings.Cut(session, "/?token=")
	if !ok || len(token) < 32 {
		t.Fatalf("the demo printed %s: want its address with the session's token", session)
	}
	names := map[string]bool{}
	for _, p := range demo.Pods() {
		names[p.Name] = true
	}

	want := []string{"http1", "http2", "grpc", "kafka"}
	if _, err := exec.LookPath("redis-server"); err == nil {
		want = append(want, "redis")
	} else {
		t.Log("redis-server is not installed (apt-get install -y redis-server): Redis is not checked")
	}
	if rabbit.Installed() {
		want = append(want, "amqp")
	} else {
		t.Log("rabbitmq-server is not installed (apt-get install -y rabbitmq-server): AMQP is not checked")
	}
	start := time.Now()
	counts := waitForEntries(t, hub, token, want, names)
	t.Logf("after %v: entries between named pods: %v", time.Since(start).Round(time.Second), counts)

	// While the demo runs: what it made, to look for after it stopped.
	nsInodes := labNamespaces(t, prefix)
	progs := attachedPrograms(t, prefix+"-node")
	if len(progs) == 0 {
		t.Error("no eBPF program is attached to the lab's interfaces")
	}

	t.Run("ui", func(t *testing.T) { checkDemoUI(t, session, hub, slices.Collect(maps.Keys(names))) })

	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Errorf("sonde-demo after Ctrl-C: %v", err)
		}
	case <-time.After(demoStopWait):
		t.Fatalf("sonde-demo still running %v after Ctrl-C", demoStopWait)
	}
	if !strings.Contains(out.text(), "stopped: network namespaces "+prefix) {
		t.Error("sonde-demo did not say it removed the lab")
	}

	for name := range nsInodes {
		if _, err := os.Stat(filepath.Join("/run/netns", name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("network namespace %s remains", name)
		}
	}
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if strings.HasPrefix(l.Attrs().Name, prefix) {
			t.Errorf("interface %s remains", l.Attrs().Name)
		}
	}
	for _, id := range progs {
		if p, err := ebpf.NewProgramFromID(id); !errors.Is(err, os.ErrNotExist) {
			if p != nil {
				p.Close()
			}
			t.Errorf("eBPF program %d is still loaded (err %v): something still attaches it", id, err)
		}
	}
	if pids := processesIn(nsInodes); len(pids) > 0 {
		t.Errorf("processes %v still run in the lab's namespaces", pids)
	}
}

// TestDemoRefusesBadFlags: bad flags are refused in one sentence, before
// any namespace is made.
func TestDemoRefusesBadFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"negative duration", []string{"--duration", "-1s"}, "--duration must not be negative"},
		{"rate too high", []string{"--rate", "1000"}, "--rate 1000: the request rate must be between"},
		{"negative rate", []string{"--rate", "-2"}, "--rate -2: the request rate must be between"},
		{"argument", []string{"now"}, `unknown command "now"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := run(t, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is more than one line: %q", err)
			}
		})
	}
}

// demoOutput collects what the demo prints and lets the test wait for a
// line.
type demoOutput struct {
	mu    sync.Mutex
	lines []string
	more  chan struct{} // closed and replaced on every line; closed for good at EOF
	eof   bool
}

func startDemo(t *testing.T, cmd *exec.Cmd) *demoOutput {
	t.Helper()
	r, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	o := &demoOutput{more: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			o.mu.Lock()
			o.lines = append(o.lines, sc.Text())
			close(o.more)
			o.more = make(chan struct{})
			o.mu.Unlock()
		}
		o.mu.Lock()
		o.eof = true
		close(o.more)
		o.mu.Unlock()
	}()
	return o
}

func (o *demoOutput) text() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return strings.Join(o.lines, "\n")
}

// match waits for a line that matches re and returns its first group.
func (o *demoOutput) match(t *testing.T, re *regexp.Regexp) string {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		o.mu.Lock()
		for _, l := range o.lines {
			if m := re.FindStringSubmatch(l); m != nil {
				o.mu.Unlock()
				return m[1]
			}
		}
		more, eof := o.more, o.eof
		o.mu.Unlock()
		if eof {
			t.Fatalf("sonde-demo ended without printing a line matching %q", re)
		}
		select {
		case <-more:
		case <-deadline:
			t.Fatalf("sonde-demo printed no line matching %q in 30 s", re)
		}
	}
}

// waitForEntries polls the hub until each protocol flag in want matches
// demoEntries entries from a lab pod to a lab pod in the demo's namespace,
// and returns how many each had.
func waitForEntries(t *testing.T, hub, token string, want []string, pods map[string]bool) map[string]int {
	t.Helper()
	counts := map[string]int{}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(demoWait)
	for {
		missing := []string{}
		for _, q := range want {
			if counts[q] >= demoEntries {
				continue
			}
			n, err := namedEntries(hub, token, q, pods)
			if err != nil {
				t.Fatal(err)
			}
			counts[q] = n
			if n < demoEntries {
				missing = append(missing, fmt.Sprintf("%s (%d)", q, n))
			}
		}
		if len(missing) == 0 {
			return counts
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("after %v, too few entries between the lab's pods for: %s", demoWait, strings.Join(missing, ", "))
		}
	}
}

// namedEntries counts the newest entries matching q whose both ends are
// lab pods of the demo's namespace.
func namedEntries(hub, token, q string, pods map[string]bool) (int, error) {
	resp, err := http.Get(hub + "/api/v1/entries?limit=200&token=" + token + "&q=" + url.QueryEscape(q))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return 0, fmt.Errorf("entries?q=%s: %s: %s", q, resp.Status, b)
	}
	var page struct {
		Entries []protocols.Entry `json:"entries"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		return 0, err
	}
	n := 0
	for _, e := range page.Entries {
		if pods[e.Src.Pod] && pods[e.Dst.Pod] && e.Src.Namespace == demo.Namespace && e.Dst.Namespace == demo.Namespace {
			n++
		}
	}
	return n, nil
}

// labNamespaces lists the lab's network namespaces with their inodes.
func labNamespaces(t *testing.T, prefix string) map[string]uint64 {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("/run/netns", prefix+"-*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatalf("no network namespace %s-* while the demo runs", prefix)
	}
	m := map[string]uint64{}
	for _, p := range paths {
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		m[filepath.Base(p)] = st.Ino
	}
	return m
}

// attachedPrograms lists the eBPF programs attached to the interfaces of a
// namespace, by TCX or as clsact filters.
func attachedPrograms(t *testing.T, nsName string) []ebpf.ProgramID {
	t.Helper()
	m, err := netlab.Programs(nsName)
	if err != nil {
		t.Fatal(err)
	}
	var ids []ebpf.ProgramID
	for _, progs := range m {
		ids = append(ids, progs...)
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// processesIn lists the processes whose network namespace is one of these.
func processesIn(inodes map[string]uint64) []int {
	want := map[string]bool{}
	for _, ino := range inodes {
		want[fmt.Sprintf("net:[%d]", ino)] = true
	}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var pids []int
	for _, d := range dirs {
		ns, err := os.Readlink(filepath.Join(d, "ns", "net"))
		if err != nil || !want[ns] {
			continue
		}
		var pid int
		fmt.Sscan(filepath.Base(d), &pid)
		pids = append(pids, pid)
	}
	return pids
}

// checkDemoUI checks that the UI is the session's alone, then opens it in
// Chromium (web/e2e's launcher) at the address the demo printed and checks
// that the list shows entries naming lab pods.
func checkDemoUI(t *testing.T, session, hub string, pods []string) {
	for _, path := range []string{"/", "/api/v1/entries"} {
		resp, err := http.Get(hub + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s without the session's token = %s, want 401", path, resp.Status)
		}
	}
	resp, err := http.Get(session)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "<html") {
		t.Fatalf("GET %s = %s, want the UI's page", session, resp.Status)
	}
	chromium := "/usr/bin/chromium"
	if v := os.Getenv("SONDE_CHROMIUM"); v != "" {
		chromium = v
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Skipf("Chromium is missing: %s not found (Debian: apt-get install -y chromium)", chromium)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("Node.js is missing: no node in PATH (Debian: apt-get install -y nodejs npm)")
	}
	if _, err := os.Stat("../../web/node_modules/playwright-core/package.json"); err != nil {
		t.Skip("web/node_modules lacks playwright-core: run 'npm ci' in web/ (the web tests do)")
	}
	ui := exec.Command(node, append([]string{"testdata/demo_ui.mjs", session}, pods...)...)
	if *demoScreenshot != "" {
		path, err := filepath.Abs(*demoScreenshot)
		if err != nil {
			t.Fatal(err)
		}
		ui.Env = append(os.Environ(), "SONDE_DEMO_SCREENSHOT="+path)
	}
	out, err := ui.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Errorf("the UI check failed: %v", err)
	}
}

// run executes the command in process with args, as the shell would pass
// them.
func run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := newDemoCmd()
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	err := cmd.Execute()
	return out.String(), errOut.String(), err
}
