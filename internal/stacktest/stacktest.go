// Package stacktest starts regscribe's real parts in process for tests and
// benchmarks: an embedded NATS server with JetStream (file storage), an
// embedded CNCF Distribution registry whose notifications go to the real
// notifier, a fake Ollama server that speaks Ollama's API, and workers.
//
// Only tests and benchmarks import it.
package stacktest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"log"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	ggcr "github.com/google/go-containerregistry/pkg/registry"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
	"oras.land/oras-go/v2/registry/remote/retry"

	"github.com/regscribe/regscribe/internal/config"
	"github.com/regscribe/regscribe/internal/embedded"
	"github.com/regscribe/regscribe/internal/feed"
	"github.com/regscribe/regscribe/internal/lease"
	"github.com/regscribe/regscribe/internal/memo"
	"github.com/regscribe/regscribe/internal/modeltest"
	"github.com/regscribe/regscribe/internal/outage"
	"github.com/regscribe/regscribe/internal/queue"
	"github.com/regscribe/regscribe/internal/registry"
	"github.com/regscribe/regscribe/internal/vision"
	"github.com/regscribe/regscribe/notifier"
	"github.com/regscribe/regscribe/worker"
)

// Model is the model name the stack's fake serves and the workers ask for.
const Model = "qwen2.5vl:3b"

// Options configure [Start].
type Options struct {
	// Workers is the number of worker pools. If zero, 1; negative: none.
	Workers int
	// Worker options (Logger and AckWait defaults are set for tests).
	Worker worker.Options
	// OllamaURL, if set, is where workers find the model instead of the
	// stack's own fake (for tests of an unreachable model).
	OllamaURL string
	// MaxAttempts of the workers. If zero, 3.
	MaxAttempts int
	// Nodes of the NATS cluster. If zero, 1 (no cluster). With more, every
	// stream and bucket has that many replicas.
	Nodes int
	// RegistryProxy, if set, wraps the registry as the workers see it (to
	// inject failures); pushes and notifications bypass it.
	RegistryProxy func(backend http.Handler) http.Handler
	// RegistryOnDisk keeps the Distribution registry's content on disk
	// (as `regscribe up` does) instead of in memory.
	RegistryOnDisk bool
	// RegistryStorage, if set, wraps the Distribution registry's storage
	// driver (slow storage).
	RegistryStorage func(storagedriver.StorageDriver) storagedriver.StorageDriver
	// ReferrersAPI runs go-containerregistry's registry with the OCI
	// referrers API instead of Distribution (which has none). It sends no
	// notifications: wrap it with RegistryHook to send them.
	ReferrersAPI bool
	// RegistryHook, if set, wraps go-containerregistry's registry itself
	// (ReferrersAPI only): every client, pushes included, goes through it.
	RegistryHook func(registry http.Handler) http.Handler
	// NotifierProxy, if set, wraps the notifier as registries reach it (to
	// repeat or reorder notifications).
	NotifierProxy func(notifier http.Handler) http.Handler
	// ExtraSubjects are captured in the job stream and taken by the
	// workers besides regscribe's own (zot's events on NATS: set
	// Worker.Translate).
	ExtraSubjects []string
	// TagWait is how long a write-back waits for the registry to link a
	// tag to the push it describes (registry.Options.TagWait). If zero,
	// the registry package's default.
	TagWait time.Duration
}

// Stack is a running set of regscribe parts.
type Stack struct {
	// NATS is the first node; Nodes are all of them.
	NATS     *embedded.NATS
	Nodes    []*embedded.NATS
	nodeOpts []embedded.NATSOptions
	Conn     *nats.Conn
	JS       jetstream.JetStream
	// Registry is the Distribution registry (nil with ReferrersAPI).
	Registry     *embedded.Registry
	RegistryHost string
	NotifierURL  string
	Token        string
	Model        *modeltest.Ollama
	Client       *registry.Client
	Memory       *memo.Store
	Consumer     jetstream.Consumer
	Workers      []*worker.Worker
	Describer    *vision.Ollama
	Leases       *lease.Leases
	Ledger       *queue.Ledger
	// Tags are the tag records the notifier writes and the workers read.
	Tags *queue.Tags
	// Outages is where the workers report the model unreachable (nil when
	// Options.Worker set its own).
	Outages *outage.Board
}

// Start starts a stack and stops it when the test ends.
func Start(t testing.TB, opts Options) *Stack {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &Stack{Token: "test-token-" + t.Name()}
	var err error
	s.startNATS(t, max(opts.Nodes, 1))
	s.Conn, err = nats.Connect(s.ClientURLs(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	require.NoError(t, err)
	s.JS, err = jetstream.New(s.Conn)
	require.NoError(t, err)
	replicas := max(opts.Nodes, 1)
	require.Eventually(t, func() bool {
		_, err = queue.EnsureStream(ctx, s.JS, queue.StreamOptions{Replicas: replicas, ExtraSubjects: opts.ExtraSubjects})
		return err == nil
	}, 30*time.Second, 100*time.Millisecond, "JetStream never became ready")
	if opts.MaxAttempts == 0 {
		opts.MaxAttempts = 3
	}
	s.Consumer, err = queue.EnsureConsumer(ctx, s.JS, queue.ConsumerOptions{AckWait: 5 * time.Second, ExtraSubjects: opts.ExtraSubjects})
	require.NoError(t, err)
	s.Memory, err = memo.Open(ctx, s.JS, queue.DescriptionBucket, replicas)
	require.NoError(t, err)
	s.Ledger, err = queue.OpenLedger(ctx, s.JS, replicas)
	require.NoError(t, err)
	_, err = feed.EnsureStream(ctx, s.JS, replicas)
	require.NoError(t, err)
	s.Tags, err = queue.OpenTags(ctx, s.JS, replicas)
	require.NoError(t, err)

	// The notifier's address must exist before the registry that notifies it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s.NotifierURL = "http://" + ln.Addr().String() + "/v1/events"
	if opts.ReferrersAPI {
		var h http.Handler = ggcr.New(ggcr.WithReferrersSupport(true), ggcr.Logger(log.New(io.Discard, "", 0)))
		if opts.RegistryHook != nil {
			h = opts.RegistryHook(h)
		}
		reg := httptest.NewServer(h)
		t.Cleanup(reg.Close)
		s.RegistryHost = strings.TrimPrefix(reg.URL, "http://")
	} else {
		ro := embedded.RegistryOptions{Listen: "127.0.0.1:0", NotifyURL: s.NotifierURL, NotifyToken: s.Token, Storage: opts.RegistryStorage}
		if opts.RegistryOnDisk {
			ro.RootDir = t.TempDir()
		}
		s.Registry, err = embedded.StartRegistry(ctx, ro)
		require.NoError(t, err)
		s.RegistryHost = s.Registry.Addr()
	}
	n, err := notifier.New(queue.NewPublisher(s.JS), notifier.Options{Token: s.Token, Registry: s.RegistryHost, Tags: s.Tags, Announce: feed.NewPublisher(s.JS), Logger: Logger(t)})
	require.NoError(t, err)
	var notify http.Handler = n
	if opts.NotifierProxy != nil {
		notify = opts.NotifierProxy(n)
	}
	srv := &http.Server{Handler: notify, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()

	s.Model = modeltest.NewOllama(Model)
	ollamaURL := s.Model.URL
	if opts.OllamaURL != "" {
		ollamaURL = opts.OllamaURL
	}
	base, err := config.OllamaURL(ollamaURL)
	require.NoError(t, err)
	s.Describer = vision.NewOllama(vision.OllamaOptions{BaseURL: base, Model: Model, Timeout: 10 * time.Second})
	workerHost := s.RegistryHost
	if opts.RegistryProxy != nil {
		backend := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: s.RegistryHost})
		proxy := httptest.NewServer(opts.RegistryProxy(backend))
		t.Cleanup(proxy.Close)
		workerHost = strings.TrimPrefix(proxy.URL, "http://")
	}
	if opts.Worker.Logger == nil {
		opts.Worker.Logger = Logger(t)
	}
	s.Client, err = registry.New([]registry.Endpoint{{Host: s.RegistryHost, PlainHTTP: true}, {Host: workerHost, PlainHTTP: true}},
		registry.Options{Credentials: credentials.NewMemoryStore(), HTTPClient: &http.Client{Transport: redirectHost(s.RegistryHost, workerHost)}, Tags: s.Tags, TagWait: opts.TagWait, Logger: opts.Worker.Logger})
	require.NoError(t, err)

	if opts.Workers == 0 {
		opts.Workers = 1
	}
	wopts := opts.Worker
	if wopts.AckWait == 0 {
		wopts.AckWait = 5 * time.Second
	}
	if wopts.MaxAttempts == 0 {
		wopts.MaxAttempts = opts.MaxAttempts
	}
	if wopts.Reporter == nil {
		wopts.Reporter = queue.NewReporter(s.JS)
	}
	if wopts.Ledger == nil {
		wopts.Ledger = s.Ledger
	}
	if wopts.Feed == nil {
		wopts.Feed = feed.NewPublisher(s.JS)
	}
	if wopts.Locker == nil {
		s.Leases, err = lease.Open(ctx, s.JS, replicas, 0)
		require.NoError(t, err)
		wopts.Locker = s.Leases
	}
	if wopts.Backoff == nil {
		wopts.Backoff = []time.Duration{200 * time.Millisecond}
	}
	if wopts.Outages == nil {
		s.Outages, err = outage.Open(ctx, s.JS, replicas)
		require.NoError(t, err)
		wopts.Outages = s.Outages
	}
	done := make(chan struct{})
	running := 0
	for range max(opts.Workers, 0) {
		w := worker.New(s.Client, s.Describer, s.Memory, wopts)
		s.Workers = append(s.Workers, w)
		running++
		go func() {
			_ = w.Run(ctx, s.Consumer)
			done <- struct{}{}
		}()
	}
	t.Cleanup(func() {
		cancel()
		for range running {
			<-done
		}
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = srv.Shutdown(sctx)
		if s.Registry != nil {
			_ = s.Registry.Stop(sctx)
		}
		s.Model.Close()
		s.Conn.Close()
		for _, n := range s.Nodes {
			if n != nil {
				n.Stop()
			}
		}
	})
	return s
}

// startNATS starts n NATS nodes (a cluster when n > 1) on fixed loopback
// ports, so a node can be restarted where it was.
func (s *Stack) startNATS(t testing.TB, n int) {
	t.Helper()
	var routes []string
	for i := range n {
		o := embedded.NATSOptions{StoreDir: t.TempDir(), Listen: freeAddr(t), ServerName: fmt.Sprintf("n%d", i)}
		if n > 1 {
			o.Cluster, o.ClusterListen = "regscribe-test", freeAddr(t)
			routes = append(routes, "nats-route://"+o.ClusterListen)
		}
		s.nodeOpts = append(s.nodeOpts, o)
	}
	s.Nodes = make([]*embedded.NATS, n)
	var wg sync.WaitGroup
	for i := range n {
		s.nodeOpts[i].Routes = routes
		wg.Add(1)
		go func() {
			defer wg.Done()
			node, err := embedded.StartNATS(s.nodeOpts[i])
			if err == nil {
				s.Nodes[i] = node
			}
		}()
	}
	wg.Wait()
	for i := range n {
		require.NotNil(t, s.Nodes[i], "NATS node %d did not start", i)
	}
	s.NATS = s.Nodes[0]
}

// ClientURLs lists every node's client URL, comma-separated.
func (s *Stack) ClientURLs() string {
	var urls []string
	for _, o := range s.nodeOpts {
		urls = append(urls, "nats://"+o.Listen)
	}
	return strings.Join(urls, ",")
}

// StopNode stops NATS node i.
func (s *Stack) StopNode(i int) {
	s.Nodes[i].Stop()
}

// StartNode starts NATS node i again, on its address and store.
func (s *Stack) StartNode(t testing.TB, i int) {
	t.Helper()
	node, err := embedded.StartNATS(s.nodeOpts[i])
	require.NoError(t, err)
	s.Nodes[i] = node
	if i == 0 {
		s.NATS = node
	}
}

// DeadAddress is a loopback address nothing listens on (any more): a model
// or registry that is down.
func DeadAddress(t testing.TB) string {
	t.Helper()
	return freeAddr(t)
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// redirectHost sends requests for the registry to the failure-injecting
// proxy in front of it (the job names the registry; the proxy is how the
// workers reach it).
func redirectHost(from, to string) http.RoundTripper {
	base := retry.NewTransport(http.DefaultTransport)
	if from == to {
		return base
	}
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if req.URL.Host != from {
			return base.RoundTrip(req)
		}
		out := req.Clone(req.Context())
		out.URL.Host = to
		out.Host = to
		resp, err := base.RoundTrip(out)
		if resp == nil {
			return resp, err
		}
		// The client asked the registry: a Location (blob uploads) names it
		// too, or oras-go refuses to send the upload to another host.
		resp.Request = req
		if loc, lerr := url.Parse(resp.Header.Get("Location")); lerr == nil && loc.Host == to {
			loc.Host = from
			resp.Header.Set("Location", loc.String())
		}
		return resp, err
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Logger logs to the test's log when -v is given, and nowhere otherwise.
func Logger(t testing.TB) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// LogBuffer collects a log written from several goroutines, for a test
// to read (slog.NewTextHandler(&buf, nil)).
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// String returns what was written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Lines returns the lines written so far at level ("INFO", "WARN", …) by
// a text handler.
func (l *LogBuffer) Lines(level string) []string {
	var out []string
	for _, line := range strings.Split(l.String(), "\n") {
		if strings.Contains(line, "level="+level) {
			out = append(out, line)
		}
	}
	return out
}

// Repository returns a fresh oras-go handle on a repository of the stack's
// registry, as a user's client would have.
func (s *Stack) Repository(t testing.TB, name string) *remote.Repository {
	t.Helper()
	r, err := remote.NewRepository(s.RegistryHost + "/" + name)
	require.NoError(t, err)
	r.PlainHTTP = true
	r.Client = UserClient
	return r
}

// UserClient carries the pushes and reads a test makes as a user would
// (oras push, oras manifest fetch), on a transport of its own: the embedded
// registry closes the idle connections of http.DefaultTransport after each
// notification it sends, which can break a request just put on one of them.
var UserClient = &auth.Client{
	Client: &http.Client{Transport: retry.NewTransport(http.DefaultTransport.(*http.Transport).Clone())},
	Cache:  auth.NewCache(),
}

// File is one layer of a pushed artifact.
type File struct {
	Name      string
	MediaType string
	Data      []byte
}

// Push pushes an artifact the way `oras push` does (OCI 1.1 image manifest,
// a title on each layer, a created annotation) and tags it unless tag is "".
func (s *Stack) Push(t testing.TB, repoName, tag string, files ...File) ocispec.Descriptor {
	t.Helper()
	ctx := context.Background()
	repo := s.Repository(t, repoName)
	var layers []ocispec.Descriptor
	for _, f := range files {
		d := content.NewDescriptorFromBytes(f.MediaType, f.Data)
		d.Annotations = map[string]string{ocispec.AnnotationTitle: f.Name}
		require.NoError(t, pushIfMissing(ctx, repo, d, f.Data))
		layers = append(layers, d)
	}
	desc, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, "application/vnd.unknown.artifact.v1", oras.PackManifestOptions{
		Layers:              layers,
		ManifestAnnotations: map[string]string{ocispec.AnnotationCreated: time.Now().UTC().Format(time.RFC3339Nano)},
	})
	require.NoError(t, err)
	if tag != "" {
		require.NoError(t, repo.Tag(ctx, desc, tag))
	}
	return desc
}

func pushIfMissing(ctx context.Context, repo *remote.Repository, d ocispec.Descriptor, data []byte) error {
	ok, err := repo.Exists(ctx, d)
	if err != nil || ok {
		return err
	}
	return repo.Push(ctx, d, bytes.NewReader(data))
}

// Manifest fetches and decodes the manifest at reference.
func (s *Stack) Manifest(t testing.TB, repoName, reference string) (ocispec.Descriptor, ocispec.Manifest) {
	t.Helper()
	desc, raw, err := oras.FetchBytes(context.Background(), s.Repository(t, repoName), reference, oras.DefaultFetchBytesOptions)
	require.NoError(t, err)
	var m ocispec.Manifest
	require.NoError(t, json.Unmarshal(raw, &m))
	return desc, m
}

// WaitDescribed waits until the manifest at reference has a description.
func (s *Stack) WaitDescribed(t testing.TB, repoName, reference string) (ocispec.Descriptor, ocispec.Manifest) {
	t.Helper()
	var desc ocispec.Descriptor
	var m ocispec.Manifest
	require.Eventually(t, func() bool {
		desc, m = s.Manifest(t, repoName, reference)
		return m.Annotations[registry.AnnotationDescription] != ""
	}, 20*time.Second, 20*time.Millisecond, "no description on %s:%s", repoName, reference)
	return desc, m
}

// Jobs reads every job message the job stream holds, oldest first.
func Jobs(t testing.TB, js jetstream.JetStream) []queue.Job {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, queue.Stream)
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	var jobs []queue.Job
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		require.NoError(t, err)
		j, err := queue.ParseJob(m.Data)
		require.NoError(t, err)
		jobs = append(jobs, j)
	}
	return jobs
}

// WaitIdle waits until every queued job (including the ones regscribe's own
// write-backs caused) is settled.
func (s *Stack) WaitIdle(t testing.TB) {
	t.Helper()
	quiet := 0
	require.Eventually(t, func() bool {
		info, err := s.Consumer.Info(context.Background())
		if err != nil {
			return false
		}
		if info.NumPending == 0 && info.NumAckPending == 0 && info.NumRedelivered == 0 {
			quiet++
		} else {
			quiet = 0
		}
		// Notifications travel asynchronously: stay quiet for a while.
		return quiet >= 10
	}, 30*time.Second, 50*time.Millisecond, "queue never went idle")
}

// JPEG returns a w×h JPEG of noise over a gradient (noise keeps it from
// compressing to nothing, like a real photo), different for each seed.
func JPEG(t testing.TB, w, h int, seed uint64) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, jpeg.Encode(&buf, Picture(w, h, seed), &jpeg.Options{Quality: 90}))
	return buf.Bytes()
}

// PNG returns a w×h PNG like [JPEG].
func PNG(t testing.TB, w, h int, seed uint64) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, Picture(w, h, seed)))
	return buf.Bytes()
}

// Picture is the image [JPEG] and [PNG] encode.
func Picture(w, h int, seed uint64) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for y := range h {
		for x := range w {
			n := uint8(r.IntN(48))
			img.SetRGBA(x, y, color.RGBA{R: uint8(x*255/max(w, 1))/2 + n, G: uint8(y*255/max(h, 1))/2 + n, B: uint8(seed*40) + n, A: 255})
		}
	}
	return img
}

// JetStream starts an in-process NATS server with JetStream (file storage,
// no listener) for a test of one package, and returns a JetStream handle
// on a connection of its own. Both stop when the test ends.
func JetStream(t testing.TB) jetstream.JetStream {
	t.Helper()
	ns, err := embedded.StartNATS(embedded.NATSOptions{StoreDir: t.TempDir(), Listen: "off"})
	require.NoError(t, err)
	t.Cleanup(ns.Stop)
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	return js
}

// FetchOne takes one message from c as a worker would, and neither acks nor
// naks it (a worker that dies with it), waiting up to 10 s for one.
func FetchOne(t testing.TB, c jetstream.Consumer) jetstream.Msg {
	t.Helper()
	var msg jetstream.Msg
	require.Eventually(t, func() bool {
		b, err := c.Fetch(1, jetstream.FetchMaxWait(500*time.Millisecond))
		if err != nil {
			return false
		}
		for m := range b.Messages() {
			msg = m
		}
		return msg != nil
	}, 10*time.Second, 10*time.Millisecond)
	return msg
}
