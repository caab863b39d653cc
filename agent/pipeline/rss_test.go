package pipeline_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/sondehq/sonde/agent/pipeline"
	"github.com/sondehq/sonde/protocols"
	"github.com/sondehq/sonde/protocols/all"
)

// rssChildEnv names the capture a re-executed test binary runs, so that its
// peak RSS is the pipeline's alone.
const rssChildEnv = "SONDE_PIPELINE_RSS_FILE"

func TestMain(m *testing.M) {
	if path := os.Getenv(rssChildEnv); path != "" {
		n := 0
		_, err := pipeline.RunFile(path, pipeline.DefaultConfig(all.Dissectors()), func(*protocols.Entry) { n++ })
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(n)
		os.Exit(0)
	}
	code := m.Run()
	synthFiles.Range(func(_, path any) bool {
		os.RemoveAll(filepath.Dir(path.(string)))
		return true
	})
	os.Exit(code)
}

// peakRSS runs the pipeline on path in a child process and returns its peak
// resident set in bytes.
func peakRSS(b *testing.B, path string) int64 {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), rssChildEnv+"="+path)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("child: %v: %s", err, out)
	}
	return cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss << 10
}

// BenchmarkPeakRSS reports the pipeline's peak RSS on 100,000 exchanges and
// on ten times as many: memory must stay flat as the capture grows.
func BenchmarkPeakRSS(b *testing.B) {
	small, large := syntheticFile(b, 100_000), syntheticFile(b, 1_000_000)
	for i := 0; i < b.N; i++ {
		rs, rl := peakRSS(b, small), peakRSS(b, large)
		b.ReportMetric(float64(rs)/(1<<20), "MiB-rss-100k")
		b.ReportMetric(float64(rl)/(1<<20), "MiB-rss-1M")
		b.ReportMetric(float64(rl)/float64(rs), "rss-growth")
	}
}
