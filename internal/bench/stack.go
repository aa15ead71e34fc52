package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"oras.land/oras-go/v2/registry/remote/credentials"

	"github.com/regscribe/regscribe/internal/embedded"
	"github.com/regscribe/regscribe/internal/feed"
	"github.com/regscribe/regscribe/internal/imageprep"
	"github.com/regscribe/regscribe/internal/index"
	"github.com/regscribe/regscribe/internal/metrics"
	"github.com/regscribe/regscribe/internal/queue"
	"github.com/regscribe/regscribe/internal/registry"
	"github.com/regscribe/regscribe/internal/vision"
	"github.com/regscribe/regscribe/notifier"
	"github.com/regscribe/regscribe/worker"
)

// stack is regscribe as `regscribe up` runs it, in this process: NATS with
// JetStream on file storage (an in-process connection), a CNCF Distribution
// registry whose notifications reach the notifier over HTTP, the notifier,
// one worker pool with `up`'s defaults and the parts `up` gives it
// ([worker.OpenShared]: the description memory, the attempts ledger, the
// description feed, leases, results and dead letters; mode auto, metrics,
// JSON logs at info level, here into io.Discard), and the gallery's search
// index following the description stream. Not started: the gallery's web
// server (idle here), the reconcile sweep `up` makes of its registry once
// at start (empty here) and the minutely look for stranded jobs. Only the
// model is a fake.
type stack struct {
	js       jetstream.JetStream
	nc       *nats.Conn
	registry *embedded.Registry
	consumer jetstream.Consumer
	results  *results
	worker   *worker.Worker
	metrics  *prometheus.Registry
	// index is the search index following the description stream.
	index *index.Index

	stopWorkers func()
	closers     []func()
}

// stackOptions configure startStack.
type stackOptions struct {
	// modelURL is the (fake) Ollama server.
	modelURL string
	// workers is the worker pool's Concurrency: jobs in flight.
	workers int
	// storage of the registry.
	storage Storage
}

// discardLogger formats every record as `regscribe up` would, then drops it.
func discardLogger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// startStack starts a stack whose workers wait for startWorkers.
func startStack(ctx context.Context, o stackOptions) (s *stack, err error) {
	s = &stack{stopWorkers: func() {}}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	dir, err := os.MkdirTemp("", "regscribe-bench-")
	if err != nil {
		return s, err
	}
	s.closers = append(s.closers, func() { _ = os.RemoveAll(dir) })
	log := discardLogger()

	ns, err := embedded.StartNATS(embedded.NATSOptions{StoreDir: filepath.Join(dir, "nats"), Listen: "off", ServerName: "bench"})
	if err != nil {
		return s, err
	}
	s.closers = append(s.closers, ns.Stop)
	if s.nc, err = nats.Connect("", nats.InProcessServer(ns), nats.Name("regscribe bench")); err != nil {
		return s, fmt.Errorf("connect to embedded nats: %w", err)
	}
	s.closers = append(s.closers, s.nc.Close)
	if s.js, err = jetstream.New(s.nc); err != nil {
		return s, err
	}
	if _, err = queue.EnsureStream(ctx, s.js, queue.StreamOptions{}); err != nil {
		return s, err
	}
	if s.consumer, err = queue.EnsureConsumer(ctx, s.js, queue.ConsumerOptions{}); err != nil {
		return s, err
	}
	shared, err := worker.OpenShared(ctx, s.js, 1)
	if err != nil {
		return s, err
	}
	// `regscribe up` serves the gallery: its search index follows the
	// description stream in the same process.
	vectors, err := index.VectorBucket(ctx, s.js, 1)
	if err != nil {
		return s, err
	}
	var stopIndex func()
	s.index, stopIndex, err = followIndex(ctx, s.js, index.Options{Dir: filepath.Join(dir, "index"), Vectors: vectors, Log: log})
	if err != nil {
		return s, err
	}
	s.closers = append(s.closers, stopIndex)
	if s.results, err = watchResults(s.nc); err != nil {
		return s, err
	}
	s.closers = append(s.closers, s.results.stop)

	// The notifier listens before the registry that notifies it starts.
	token := randomToken()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return s, err
	}
	root := filepath.Join(dir, "registry")
	if o.storage == InMemory {
		root = ""
	}
	s.registry, err = embedded.StartRegistry(ctx, embedded.RegistryOptions{
		RootDir:     root,
		Listen:      "127.0.0.1:0",
		NotifyURL:   "http://" + ln.Addr().String() + "/v1/events",
		NotifyToken: token,
	})
	if err != nil {
		ln.Close()
		return s, err
	}
	// The registry stops first: it notifies until it is gone.
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second}
	s.closers = append(s.closers, func() {
		closeIdleDefault()
		stopWithin(5*time.Second, s.registry.Stop)
		_ = srv.Close()
		_ = ln.Close()
	})
	// The notifier records each announced tag and the workers read the
	// record, as in `regscribe up`.
	tags, err := queue.OpenTags(ctx, s.js, 1)
	if err != nil {
		return s, err
	}
	if srv.Handler, err = notifier.New(queue.NewPublisher(s.js), notifier.Options{Token: token, Registry: s.registry.Addr(), Tags: tags, Announce: feed.NewPublisher(s.js), Logger: log}); err != nil {
		return s, err
	}
	go func() { _ = srv.Serve(ln) }()

	client, err := registry.New([]registry.Endpoint{{Host: s.registry.Addr(), PlainHTTP: true}},
		registry.Options{Credentials: credentials.NewMemoryStore(), UserAgent: "regscribe/bench", Tags: tags})
	if err != nil {
		return s, err
	}
	describer, err := newDescriber(o.modelURL)
	if err != nil {
		return s, err
	}
	s.metrics = prometheus.NewRegistry()
	opts := worker.Options{
		Concurrency: o.workers,
		Image:       imageprep.Limits{},
		Metrics:     metrics.New(s.metrics),
		Logger:      log,
	}
	shared.Use(&opts)
	s.worker = worker.New(client, describer, shared.Memory, opts)
	return s, nil
}

// newDescriber is the Ollama provider with `regscribe up`'s defaults.
func newDescriber(modelURL string) (*vision.Ollama, error) {
	base, err := url.Parse(modelURL)
	if err != nil {
		return nil, err
	}
	prompt, err := vision.LoadPrompt("", "", "")
	if err != nil {
		return nil, err
	}
	return vision.NewOllama(vision.OllamaOptions{
		BaseURL: base, Model: ModelName, Prompt: prompt,
		KeepAlive: 10 * time.Minute, MaxTokens: 300, Temperature: 0.2,
	}), nil
}

// startWorkers starts the worker pool on the shared consumer.
func (s *stack) startWorkers() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.worker.Run(ctx, s.consumer)
	}()
	s.stopWorkers = func() {
		cancel()
		<-done
	}
}

// queued is the number of jobs waiting for a worker.
func (s *stack) queued(ctx context.Context) (uint64, error) {
	info, err := s.consumer.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.NumPending, nil
}

// stageMeans are the mean latencies of the worker's stages (fetch, prepare,
// model, write), from its metrics.
func (s *stack) stageMeans() map[string]time.Duration {
	out := map[string]time.Duration{}
	families, err := s.metrics.Gather()
	if err != nil {
		return out
	}
	for _, f := range families {
		if f.GetName() != "regscribe_stage_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			h := m.GetHistogram()
			if h.GetSampleCount() == 0 {
				continue
			}
			for _, l := range m.GetLabel() {
				if l.GetName() == "stage" {
					out[l.GetValue()] = time.Duration(h.GetSampleSum() / float64(h.GetSampleCount()) * float64(time.Second))
				}
			}
		}
	}
	return out
}

// close stops the workers (jobs in flight finish), then everything else.
func (s *stack) close() {
	s.stopWorkers()
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
}

// closeIdleDefault closes the idle connections of http.DefaultTransport,
// which the worker's registry and model clients use (as in `regscribe up`),
// so that the servers they talk to stop at once.
func closeIdleDefault() { http.DefaultTransport.(*http.Transport).CloseIdleConnections() }

func stopWithin(d time.Duration, stop func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	_ = stop(ctx)
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
