package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"time"

	"github.com/regscribe/regscribe/internal/modeltest"
)

// ModelName is the model the fake serves and regscribe asks for.
const ModelName = "qwen2.5vl:3b"

// statsPath is where a benchmark's fake model reports what it served.
const statsPath = "/bench/stats"

// modelStats is what the fake model served so far.
type modelStats struct {
	// Calls are the chat requests received.
	Calls int `json:"calls"`
	// MaxServed is the most served at once (at most the limit C).
	MaxServed int `json:"maxServed"`
	// MaxInFlight is the most in flight at once, served or waiting in line.
	MaxInFlight int `json:"maxInFlight"`
	// ChatSeconds is the time spent answering chat requests, from the
	// request's arrival to the end of its answer (decoding the request,
	// waiting in line, the latency, encoding the answer).
	ChatSeconds float64 `json:"chatSeconds"`
	// Problems are protocol violations the fake saw.
	Problems []string `json:"problems,omitempty"`
}

// newFakeModel returns an unstarted fake Ollama that answers after latency
// and serves at most limit requests at once, with the stats endpoint.
func newFakeModel(latency time.Duration, limit int) *modeltest.Ollama {
	f := modeltest.NewUnstartedOllama(ModelName)
	f.Latency, f.Limit, f.ForgetImages = latency, limit, true
	api := f.Config.Handler
	var chatNanos atomic.Int64
	mux := http.NewServeMux()
	mux.Handle("/", api)
	mux.HandleFunc("POST /api/chat", func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		api.ServeHTTP(w, r)
		chatNanos.Add(int64(time.Since(start)))
	})
	mux.HandleFunc("GET "+statsPath, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(modelStats{
			Calls: len(f.Calls()), MaxServed: f.MaxServed(), MaxInFlight: f.MaxConcurrent(),
			ChatSeconds: time.Duration(chatNanos.Load()).Seconds(), Problems: f.Problems(),
		})
	})
	f.Config.Handler = mux
	return f
}

// ServeModel serves the benchmark's fake model until ctx ends or stdin is
// closed (the parent benchmark exited), after writing "model <URL>" to out.
// The benchmark runs it in a process of its own, so that what the model
// server spends (decoding requests, keeping every call) is not counted as
// regscribe's.
func ServeModel(ctx context.Context, latency time.Duration, limit int, stdin io.Reader, out io.Writer) error {
	f := newFakeModel(latency, limit)
	f.Start()
	defer f.Close()
	if _, err := fmt.Fprintf(out, "model %s\n", f.URL); err != nil {
		return err
	}
	closed := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, stdin)
		close(closed)
	}()
	select {
	case <-ctx.Done():
	case <-closed:
	}
	return nil
}

// model is the fake model a run uses.
type model struct {
	url   string
	where string
	pid   int // of its process, when it has one of its own
	close func()
}

// startModel starts the fake model: in a child process when self is set
// (the command that runs this benchmark binary), else in this process.
func startModel(ctx context.Context, self []string, latency time.Duration, limit int) (*model, error) {
	if len(self) == 0 {
		f := newFakeModel(latency, limit)
		f.Start()
		return &model{url: f.URL, where: "in this process (its CPU and memory count in the figures)", close: f.Close}, nil
	}
	args := append(append([]string(nil), self[1:]...), "-serve-model", "-latency", latency.String(), "-concurrency", fmt.Sprint(limit))
	cmd := exec.CommandContext(ctx, self[0], args...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the fake model: %w", err)
	}
	stop := func() {
		_ = stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "model ")
	if err != nil || !ok {
		stop()
		return nil, fmt.Errorf("start the fake model: it said %q (%v)", line, err)
	}
	return &model{url: url, where: "in a process of its own, not counted", pid: cmd.Process.Pid, close: stop}, nil
}

// stats asks the fake model at url what it served.
func stats(ctx context.Context, url string) (modelStats, error) {
	var s modelStats
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+statsPath, nil)
	if err != nil {
		return s, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return s, fmt.Errorf("fake model stats: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s, errors.New("fake model stats: " + resp.Status + " (is -model-url a benchmark's fake model?)")
	}
	return s, json.NewDecoder(resp.Body).Decode(&s)
}
