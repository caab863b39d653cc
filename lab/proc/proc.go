package proc

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// tailBytes is how much of a log an error quotes.
const tailBytes = 4000

// Process is one running daemon.
type Process struct {
	Name string
	// Log is the file its output goes to.
	Log string

	cmd  *exec.Cmd
	done chan struct{} // closed when it exited
	err  error         // why, once done is closed
}

// Start runs bin with args, its output in dir/name.log.
func Start(dir, name, bin string, args ...string) (*Process, error) {
	log := filepath.Join(dir, name+".log")
	f, err := os.Create(log)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	// Die with the test binary even when it is killed before cleanup.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &Process{Name: name, Log: log, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// Done is closed once the process exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited describes a process that stopped early, with the end of its log.
func (p *Process) Exited() error {
	return fmt.Errorf("%s exited (%v); the end of its log:\n%s", p.Name, p.err, Tail(p.Log))
}

// Stop sends SIGTERM and, after grace, SIGKILL, and waits for the exit.
func (p *Process) Stop(grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// Tail returns the end of a log file.
func Tail(file string) string {
	b, _ := os.ReadFile(file)
	if len(b) > tailBytes {
		b = b[len(b)-tailBytes:]
	}
	return string(b)
}
