package pipeline_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sondehq/sonde/agent/capture/pcapfile"
	"github.com/sondehq/sonde/agent/pipeline"
	"github.com/sondehq/sonde/lab/synth"
	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/all"
)

// syntheticFile writes (once per process) a capture of n HTTP/1.1 exchanges.
var synthFiles sync.Map

func syntheticFile(b *testing.B, n int) string {
	b.Helper()
	if p, ok := synthFiles.Load(n); ok {
		return p.(string)
	}
	dir, err := os.MkdirTemp("", "sonde-bench")
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(dir, "http1.pcap")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := synth.WriteHTTP1(f, synth.Config{Exchanges: n, PerConn: 100, Concurrency: 64}); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	synthFiles.Store(n, path)
	return path
}

// runPipeline runs files through the pipeline b.N times and reports MB/s and
// entries/s, then times tshark's dissection of the same files (display
// filter filter, with the decode-as rules the files need) once and reports
// how many times faster the pipeline was.
func runPipeline(b *testing.B, files []string, filter string, decodeAs map[string][]string) {
	var size int64
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			b.Fatal(err)
		}
		size += st.Size()
	}
	b.SetBytes(size)
	b.ReportAllocs()
	var entries int
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		for _, f := range files {
			_, err := pipeline.RunFile(f, pipeline.DefaultConfig(all.Dissectors()), func(*protocols.Entry) { entries++ })
			if err != nil && !errors.Is(err, pcapfile.ErrTruncated) {
				b.Fatal(err)
			}
		}
	}
	perRun := time.Since(start) / time.Duration(b.N)
	b.StopTimer()
	b.ReportMetric(float64(entries)/float64(b.N)/perRun.Seconds(), "entries/s")
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		b.Log("tshark is not installed (apt-get install tshark): no ratio")
		return
	}
	t0 := time.Now()
	for _, f := range files {
		args := []string{"-r", f, "-Y", filter, "-T", "fields", "-e", "frame.number"}
		for _, d := range decodeAs[filepath.Base(f)] {
			args = append(args, "-d", d)
		}
		// tshark exits non-zero on a truncated capture after printing what it read.
		exec.Command(tshark, args...).Run()
	}
	ts := time.Since(t0)
	b.ReportMetric(ts.Seconds()/perRun.Seconds(), "x-tshark")
	b.Logf("sonde %v per run, tshark %v: %.1fx", perRun, ts, ts.Seconds()/perRun.Seconds())
}

// BenchmarkSyntheticHTTP1 measures the pipeline on 100,000 keep-alive
// exchanges over 64 interleaved connections.
func BenchmarkSyntheticHTTP1(b *testing.B) {
	runPipeline(b, []string{syntheticFile(b, 100_000)}, "http", nil)
}

// BenchmarkCorpus measures the pipeline on every capture of each
// protocol in the public corpus, one after another, beside tshark with that
// protocol's display filter.
func BenchmarkCorpus(b *testing.B) {
	dir := filepath.Join("..", "..", "..", "shared", "corpus")
	if d := os.Getenv("SONDE_CORPUS"); d != "" {
		dir = d
	}
	inv, err := os.ReadFile(filepath.Join(dir, "inventory.tsv"))
	if err != nil {
		b.Skip("no corpus at ../shared/corpus beside the checkout: corpus benchmarks not run")
	}
	files := map[string][]string{}
	decodeAs := map[string][]string{}
	for _, line := range strings.Split(string(inv), "\n")[1:] {
		cols := strings.Split(line, "\t")
		if len(cols) < 9 {
			continue
		}
		proto, name := cols[0], cols[1]
		files[proto] = append(files[proto], filepath.Join(dir, "pcaps", proto, name))
		if d := strings.TrimSpace(cols[8]); d != "" {
			decodeAs[name] = strings.Fields(d)
		}
	}
	filters := map[string]string{"http1": "http", "http2": "http2", "grpc": "grpc", "redis": "resp", "kafka": "kafka", "amqp": "amqp"}
	for _, proto := range []string{"http1", "http2", "grpc", "redis", "kafka", "amqp"} {
		b.Run(proto, func(b *testing.B) { runPipeline(b, files[proto], filters[proto], decodeAs) })
	}
}
