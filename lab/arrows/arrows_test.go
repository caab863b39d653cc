package arrows

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/sondehq/sonde"

// pkg is what `go list -deps` says of one package.
type pkg struct {
	ImportPath string
	Standard   bool
	Module     *struct{ Path string }
	Imports    []string
	Deps       []string
}

// rule forbids, for the packages From selects, any dependency (direct or
// not) that Forbid selects.
type rule struct {
	name   string
	from   func(p string) bool
	forbid func(dep *pkg) bool
}

func under(prefixes ...string) func(string) bool {
	return func(p string) bool {
		for _, pre := range prefixes {
			if p == module+"/"+pre || strings.HasPrefix(p, module+"/"+pre+"/") {
				return true
			}
		}
		return false
	}
}

func exactly(paths ...string) func(string) bool {
	return func(p string) bool { return slices.Contains(paths, strings.TrimPrefix(p, module+"/")) }
}

func depUnder(prefixes ...string) func(*pkg) bool {
	in := under(prefixes...)
	return func(d *pkg) bool { return in(d.ImportPath) }
}

func isLab(p string) bool { return under("lab")(p) }

// demoProgram is the demo's own build: it may import the lab, as a program
// that is never shipped.
const demoProgram = "cmd/sonde-demo"

// shipped says whether p may end up in the image the DaemonSet runs:
// everything but the lab and the demo's program.
func shipped(p string) bool { return !isLab(p) && !exactly(demoProgram)(p) }

// demoOnly are the libraries the demo's servers and clients use and the
// shipped binary must not link.
var demoOnly = []string{
	"github.com/twmb/franz-go/pkg/kfake",
	"github.com/redis/go-redis/v9",
	"github.com/rabbitmq/amqp091-go",
	"google.golang.org/grpc",
}

// rules are DESIGN.md's arrows.
var rules = []rule{
	{"the agent never imports the hub", under("agent"), depUnder("apiserver", "web")},
	{"the agent never links the query engine", under("agent"), func(d *pkg) bool {
		return strings.HasPrefix(d.ImportPath, "github.com/google/cel-go/") || strings.HasPrefix(d.ImportPath, "cel.dev/")
	}},
	{"the hub never imports the agent or the eBPF loader", under("apiserver", "web"), depUnder("agent", "bpf")},
	{"the contract stays on the standard library", exactly("protocols", "protocols/wire"), func(d *pkg) bool {
		return !d.Standard && !exactly("protocols", "protocols/wire")(d.ImportPath)
	}},
	{"dissectors never import capture, cluster or query libraries", under("protocols"), func(d *pkg) bool {
		for _, pre := range []string{"github.com/gopacket/", "github.com/cilium/ebpf", "k8s.io/", "github.com/google/cel-go/", "cel.dev/"} {
			if strings.HasPrefix(d.ImportPath, pre) {
				return true
			}
		}
		return false
	}},
	{"the eBPF loader imports nothing of Sonde's", under("bpf"), func(d *pkg) bool {
		return strings.HasPrefix(d.ImportPath, module+"/")
	}},
	{"nothing shipped imports the lab", shipped, func(d *pkg) bool { return isLab(d.ImportPath) || exactly(demoProgram)(d.ImportPath) }},
	{"the shipped binary links none of the demo's clients and servers", exactly("cmd/sonde"), func(d *pkg) bool {
		for _, pre := range demoOnly {
			if d.ImportPath == pre || strings.HasPrefix(d.ImportPath, pre+"/") {
				return true
			}
		}
		return false
	}},
}

// TestArrows checks every rule against the import graph of the module's
// packages (without their tests: tests may reach further, as the lab does).
func TestArrows(t *testing.T) {
	pkgs := list(t, module+"/...")
	for _, r := range rules {
		t.Run(r.name, func(t *testing.T) {
			checked := 0
			for _, p := range pkgs {
				if !strings.HasPrefix(p.ImportPath, module) || !r.from(p.ImportPath) {
					continue
				}
				checked++
				for _, d := range p.Deps {
					if dep := pkgs[d]; dep != nil && r.forbid(dep) {
						t.Errorf("%s depends on %s (%s)", p.ImportPath, d, via(pkgs, p, d))
					}
				}
			}
			if checked == 0 {
				t.Fatalf("the rule selects no package: the layout changed, so the rule must too")
			}
		})
	}
}

// TestOneProtocolPerPackage: a protocol package never imports another
// protocol's package (gRPC rides inside http2, so it has no package).
func TestOneProtocolPerPackage(t *testing.T) {
	pkgs := list(t, module+"/protocols/...")
	shared := []string{"protocols", "protocols/all", "protocols/wire", "protocols/protocolstest"}
	isProtocol := func(p string) bool {
		if !under("protocols")(p) || strings.Contains(p, "/internal") {
			return false
		}
		return !slices.Contains(shared, strings.TrimPrefix(p, module+"/"))
	}
	for _, p := range pkgs {
		if !isProtocol(p.ImportPath) {
			continue
		}
		for _, imp := range p.Imports {
			if isProtocol(imp) && !strings.HasPrefix(imp, p.ImportPath+"/") {
				t.Errorf("%s imports %s: protocols share only the contract (protocols) and its helpers", p.ImportPath, imp)
			}
		}
	}
}

// list runs `go list -deps` over pattern and returns every package it names,
// Sonde's and their dependencies, by import path.
func list(t *testing.T, pattern string) map[string]*pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-json=ImportPath,Standard,Module,Imports,Deps", pattern)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v: %s", err, stderr.String())
	}
	pkgs := map[string]*pkg{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		p := new(pkg)
		if err := dec.Decode(p); err != nil {
			t.Fatalf("reading go list's output: %v", err)
		}
		pkgs[p.ImportPath] = p
	}
	return pkgs
}

// via names the shortest chain of imports from p to dep, so that a failure
// says which import to remove.
func via(pkgs map[string]*pkg, p *pkg, dep string) string {
	prev := map[string]string{p.ImportPath: ""}
	queue := []string{p.ImportPath}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if cur == dep {
			var chain []string
			for c := cur; c != ""; c = prev[c] {
				chain = append(chain, strings.TrimPrefix(c, module+"/"))
			}
			slices.Reverse(chain)
			return strings.Join(chain, " → ")
		}
		if q := pkgs[cur]; q != nil {
			for _, imp := range q.Imports {
				if _, seen := prev[imp]; !seen {
					prev[imp] = cur
					queue = append(queue, imp)
				}
			}
		}
	}
	return fmt.Sprintf("via %s", dep)
}
