package pipeline_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sondehq/sonde/agent/internal/synth"
	"github.com/sondehq/sonde/agent/pipeline"
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
// entries/s, then times tshark's HTTP dissection of the same files once and
// reports how many times faster the pipeline was.
func runPipeline(b *testing.B, files []string) {
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
			if err != nil {
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
		cmd := exec.Command(tshark, "-r", f, "-Y", "http", "-T", "fields",
			"-e", "http.request.method", "-e", "http.request.uri", "-e", "http.response.code")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("tshark: %v: %s", err, out)
		}
	}
	ts := time.Since(t0)
	b.ReportMetric(ts.Seconds()/perRun.Seconds(), "x-tshark")
	b.Logf("sonde %v per run, tshark %v: %.1fx", perRun, ts, ts.Seconds()/perRun.Seconds())
}

// BenchmarkSyntheticHTTP1 measures the pipeline on 100,000 keep-alive
// exchanges over 64 interleaved connections.
func BenchmarkSyntheticHTTP1(b *testing.B) {
	runPipeline(b, []string{syntheticFile(b, 100_000)})
}

// BenchmarkCorpusHTTP1 measures the pipeline on every HTTP/1 capture of the
// public corpus, one after another.
func BenchmarkCorpusHTTP1(b *testing.B) {
	dir := filepath.Join("..", "..", "..", "shared", "corpus", "pcaps", "http1")
	if d := os.Getenv("SONDE_CORPUS"); d != "" {
		dir = filepath.Join(d, "pcaps", "http1")
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.pcap*"))
	if len(files) == 0 {
		b.Skip("no corpus at ../shared/corpus beside the checkout: corpus benchmark not run")
	}
	runPipeline(b, files)
}
