package conformance

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/sondehq/sonde/agent/pipeline"
	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/all"
)

// corpusDir finds the corpus: $SONDE_CORPUS, or ../shared/corpus beside the
// checkout. It returns "" when there is none.
func corpusDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("SONDE_CORPUS"); d != "" {
		return d
	}
	// The test runs in lab/conformance; the checkout is two levels up.
	d, err := filepath.Abs(filepath.Join("..", "..", "..", "shared", "corpus"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(d, "inventory.tsv")); err != nil {
		return ""
	}
	return d
}

// corpusFile is one capture of the inventory.
type corpusFile struct {
	Protocol string // the inventory's protocol column: http1, http2, grpc, redis, kafka, amqp
	Name     string
	Pcap     string // path of the capture
	Msgs     string // path of tshark's per-message table
}

// inventory lists the corpus files of one protocol. Without a corpus it
// skips the calling test with one line saying conformance was not run.
func inventory(t *testing.T, protocol string) []corpusFile {
	t.Helper()
	dir := corpusDir(t)
	if dir == "" {
		t.Skip("conformance not run: no corpus at ../shared/corpus beside the checkout (set SONDE_CORPUS to its path)")
	}
	rows := readTSV(t, filepath.Join(dir, "inventory.tsv"))
	var out []corpusFile
	for _, r := range rows {
		if r["protocol"] != protocol {
			continue
		}
		out = append(out, corpusFile{
			Protocol: protocol,
			Name:     r["file"],
			Pcap:     filepath.Join(dir, "pcaps", protocol, r["file"]),
			Msgs:     filepath.Join(dir, "expected", protocol, r["file"]+".msgs.tsv"),
		})
	}
	if len(out) == 0 {
		t.Fatalf("the corpus inventory lists no %s captures", protocol)
	}
	return out
}

// readTSV reads a tab-separated table with a header row, skipping '#' lines.
func readTSV(t *testing.T, path string) []map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("reading corpus: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	var header []string
	var rows []map[string]string
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		cols := strings.Split(line, "\t")
		if header == nil {
			header = cols
			continue
		}
		row := make(map[string]string, len(header))
		for i, h := range header {
			if i < len(cols) {
				row[h] = cols[i]
			}
		}
		rows = append(rows, row)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	return rows
}

// dissect runs a capture through the pipeline with every dissector, with
// redaction off so that values compare with tshark's.
func dissect(t *testing.T, f corpusFile) ([]*protocols.Entry, pipeline.FileStats) {
	t.Helper()
	cfg := pipeline.DefaultConfig(all.Dissectors())
	cfg.Options.Redact = false
	entries, st, err := pipeline.ReadFile(f.Pcap, cfg)
	if err != nil {
		// A truncated capture still yields what it could; the comparison decides.
		t.Logf("%s: %v", f.Name, err)
	}
	return entries, st
}

// connKey names a TCP connection by its endpoints in a fixed order, so that
// tshark's rows (either direction) and Sonde's entries (client → server) meet.
func connKey(a, b netip.AddrPort) string {
	if b.Addr().Less(a.Addr()) || (a.Addr() == b.Addr() && b.Port() < a.Port()) {
		a, b = b, a
	}
	return a.String() + "-" + b.String()
}

// rowConn returns the connection key of a tshark row (src, sport, dst, dport).
func rowConn(t *testing.T, r map[string]string) string {
	t.Helper()
	src, err1 := netip.ParseAddr(r["src"])
	dst, err2 := netip.ParseAddr(r["dst"])
	if err1 != nil || err2 != nil {
		t.Fatalf("bad address in tshark row: %v", r)
	}
	var sp, dp uint16
	fmt.Sscan(r["sport"], &sp)
	fmt.Sscan(r["dport"], &dp)
	return connKey(netip.AddrPortFrom(src.Unmap(), sp), netip.AddrPortFrom(dst.Unmap(), dp))
}

// entryConn returns the connection key of an entry.
func entryConn(e *protocols.Entry) string {
	return connKey(netip.AddrPortFrom(e.Src.IP, e.Src.Port), netip.AddrPortFrom(e.Dst.IP, e.Dst.Port))
}

// sequences maps a connection to an ordered list of items.
type sequences map[string][]string

func (s sequences) add(conn, item string) { s[conn] = append(s[conn], item) }

// diff describes how got differs from want, connection by connection, or
// returns "" when they are the same.
func (want sequences) diff(got sequences) string {
	keys := map[string]bool{}
	for k := range want {
		keys[k] = true
	}
	for k := range got {
		keys[k] = true
	}
	var sorted []string
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	var b strings.Builder
	for _, k := range sorted {
		w, g := want[k], got[k]
		if sameItems(w, g) {
			continue
		}
		fmt.Fprintf(&b, "  connection %s:\n    tshark (%d): %s\n    sonde  (%d): %s\n", k, len(w), short(w), len(g), short(g))
	}
	return b.String()
}

func sameItems(want, got []string) bool {
	if len(want) != len(got) {
		return false
	}
	for i := range want {
		if !sameItem(want[i], got[i]) {
			return false
		}
	}
	return true
}

// elided matches the corpus's rendering of a long value: its first
// characters, then "...(N chars)" with the length of the whole value.
var elided = regexp.MustCompile(`^(.*)\.\.\.\((\d+) chars\)$`)

// sameItem compares one item, honouring elided long values: the item's
// prefix before the value is part of the match.
func sameItem(want, got string) bool {
	if want == got {
		return true
	}
	m := elided.FindStringSubmatch(want)
	if m == nil || !strings.HasPrefix(got, m[1]) {
		return false
	}
	n, _ := strconv.Atoi(m[2])
	// N counts the value alone; the item may carry a prefix such as "> GET ".
	return len(got)-strings.LastIndex(m[1], " ")-1 == n
}

func short(items []string) string {
	const most = 12
	if len(items) > most {
		return strings.Join(items[:most], " | ") + fmt.Sprintf(" | ... (%d more)", len(items)-most)
	}
	return strings.Join(items, " | ")
}

// knownDifference is a capture where Sonde and tshark disagree for a reason
// that was looked into.
type knownDifference struct {
	// Who is right: "sonde" or "tshark".
	Right  string
	Reason string
}

// compare checks one file's sequences and applies the list of known
// differences: a listed file must still differ, an unlisted one must match.
func compare(t *testing.T, f corpusFile, want, got sequences, known map[string]knownDifference) {
	t.Helper()
	d := want.diff(got)
	k, listed := known[f.Name]
	switch {
	case d == "" && listed:
		t.Errorf("%s now matches tshark: remove it from the known differences (%s)", f.Name, k.Reason)
	case d != "" && listed:
		t.Logf("%s differs from tshark as known (%s is right: %s):\n%s", f.Name, k.Right, k.Reason, d)
	case d != "":
		t.Errorf("%s differs from tshark:\n%s", f.Name, d)
	}
}
