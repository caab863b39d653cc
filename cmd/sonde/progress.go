package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
	corev1 "k8s.io/api/core/v1"
)

// progress shows the steps of an install. On a terminal the step in
// progress is one line with a spinner, rewritten in place; elsewhere (a
// log, a test) a step's status is printed when it changes.
type progress struct {
	w   io.Writer
	tty bool

	mu      sync.Mutex
	frame   int
	current string // the step in progress and its status, on a terminal
	last    map[string]string
}

func newProgress(w io.Writer) *progress {
	f, ok := w.(*os.File)
	return &progress{w: w, tty: ok && term.IsTerminal(int(f.Fd())), last: map[string]string{}}
}

var spinner = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

// spinPeriod is how often a terminal's spinner moves.
const spinPeriod = 120 * time.Millisecond

// status says where a step is.
func (p *progress) status(step, text string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty {
		p.current = fmt.Sprintf("%s: %s", step, text)
		p.draw()
		return
	}
	if p.last[step] != text {
		p.last[step] = text
		fmt.Fprintf(p.w, "… %s: %s\n", step, text)
	}
}

// tick moves the spinner.
func (p *progress) tick() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.current != "" {
		p.frame++
		p.draw()
	}
}

func (p *progress) draw() {
	fmt.Fprintf(p.w, "\r\033[K%s %s", spinner[p.frame%len(spinner)], p.current)
}

// done and fail end a step.
func (p *progress) done(format string, args ...any) { p.end("✓", format, args...) }
func (p *progress) fail(format string, args ...any) { p.end("✗", format, args...) }

func (p *progress) end(mark, format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.current != "" {
		fmt.Fprint(p.w, "\r\033[K")
		p.current = ""
	}
	fmt.Fprintf(p.w, "%s %s\n", mark, fmt.Sprintf(format, args...))
}

// podReason says why a pod is not ready yet, from what the API shows: the
// scheduler's verdict, a container waiting (image pull, crash loop, bad
// configuration) or ended, or a failing readiness probe.
func podReason(p *corev1.Pod) string {
	if p.DeletionTimestamp != nil {
		return "terminating"
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			return strings.TrimSpace(fmt.Sprintf("%s: %s", c.Reason, c.Message))
		}
	}
	if p.Spec.NodeName == "" {
		return "waiting to be scheduled"
	}
	for _, cs := range append(p.Status.InitContainerStatuses, p.Status.ContainerStatuses...) {
		switch {
		case cs.State.Waiting != nil && cs.State.Waiting.Reason != "" &&
			cs.State.Waiting.Reason != "ContainerCreating" && cs.State.Waiting.Reason != "PodInitializing":
			if m := cs.State.Waiting.Message; m != "" {
				return fmt.Sprintf("%s: %s", cs.State.Waiting.Reason, m)
			}
			return cs.State.Waiting.Reason
		case cs.State.Terminated != nil && cs.State.Terminated.ExitCode != 0:
			t := cs.State.Terminated
			return strings.TrimSpace(fmt.Sprintf("container %s exited with %d: %s %s", cs.Name, t.ExitCode, t.Reason, t.Message))
		}
	}
	switch p.Status.Phase {
	case corev1.PodPending:
		return "starting on " + p.Spec.NodeName
	case corev1.PodRunning:
		return "running, not ready yet (readiness probe)"
	}
	return strings.ToLower(string(p.Status.Phase))
}
