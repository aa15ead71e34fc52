package stacktest

import (
	"bufio"
	"bytes"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Process is a running command (`regscribe up`, or the same in its container
// image) whose log a test can wait on.
type Process struct {
	cmd *exec.Cmd
	mu  sync.Mutex
	log bytes.Buffer
	out chan string
}

// StartProcess starts cmd and collects the lines it writes to stderr. When
// the test ends the process is killed; if the test failed, it first gets
// SIGQUIT (a Go program then dumps every goroutine's stack) and the log is
// printed.
func StartProcess(t testing.TB, cmd *exec.Cmd) *Process {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	if cmd.Stdout == nil {
		cmd.Stdout = io.Discard
	}
	require.NoError(t, cmd.Start())
	p := &Process{cmd: cmd, out: make(chan string, 1000)}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.log.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			select {
			case p.out <- sc.Text():
			default:
			}
		}
		close(p.out)
	}()
	t.Cleanup(func() {
		if t.Failed() && cmd.ProcessState == nil {
			// A stack dump of every goroutine shows where it was stuck.
			_ = cmd.Process.Signal(syscall.SIGQUIT)
			time.Sleep(500 * time.Millisecond)
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("%s log:\n%s", cmd.Args, p.Log())
		}
	})
	return p
}

// Log is what the process wrote to stderr so far.
func (p *Process) Log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// WaitLog waits for a log line containing s.
func (p *Process) WaitLog(t testing.TB, s string) string {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case line, ok := <-p.out:
			if !ok {
				t.Fatalf("%s exited before logging %q", p.cmd.Args, s)
			}
			if strings.Contains(line, s) {
				return line
			}
		case <-timeout:
			t.Fatalf("no log line with %q", s)
		}
	}
}

// Stop sends SIGTERM and waits for a clean exit.
func (p *Process) Stop(t testing.TB) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		require.NoError(t, err, "%s must exit 0 on SIGTERM", p.cmd.Args)
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not stop within 20s of SIGTERM", p.cmd.Args)
	}
}
