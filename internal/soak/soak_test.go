package soak_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/regscribe/regscribe/internal/config"
	"github.com/regscribe/regscribe/internal/feed"
	"github.com/regscribe/regscribe/internal/lease"
	"github.com/regscribe/regscribe/internal/memo"
	"github.com/regscribe/regscribe/internal/modeltest"
	"github.com/regscribe/regscribe/internal/queue"
	"github.com/regscribe/regscribe/internal/stacktest"
	"github.com/regscribe/regscribe/internal/vision"
	"github.com/regscribe/regscribe/notifier"
	"github.com/regscribe/regscribe/worker"
)

// The soak's settings: short waits everywhere, so that faults cost little.
const (
	pools        = 3
	poolSlots    = 3
	maxAttempts  = 6
	ackWait      = 3 * time.Second
	modelTimeout = 1500 * time.Millisecond
	zotSubject   = "zot.events"
	seedEnv      = "REGSCRIBE_SOAK_SEED"
)

// Fault probabilities. Each is small enough that a job meets a handful of
// faults at most and still ends well within maxAttempts.
const (
	pModel500     = 0.04
	pModelReset   = 0.025
	pModelHang    = 0.015
	pBurst        = 0.004 // per registry request: start a 503 burst
	pFallbackFail = 0.12  // per fallback tag: its PUTs fail for fallbackFailFor
	pDuplicate    = 0.10  // per notification: sent twice
	pTagOnly      = 0.4   // per repository (referrers API registry): Quay or Docker Hub format
)

const fallbackFailFor = 5 * time.Second // longer than oras-go's own retries of one request

// TestSoak pushes photos through both registries while faults fire and
// audits the end state. See package doc.
func TestSoak(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv(seedEnv); v != "" {
		var err error
		seed, err = strconv.ParseUint(v, 10, 64)
		require.NoError(t, err, "%s must be an unsigned integer", seedEnv)
	}
	t.Logf("soak seed %d (rerun: %s=%d go test ./internal/soak -run TestSoak -count=1 -v)", seed, seedEnv, seed)
	size := 110
	if testing.Short() {
		size = 30
	}
	t.Run("distribution-referrer", func(t *testing.T) {
		run(t, seed, 1, size, false, worker.ModeReferrer)
	})
	t.Run("referrers-api-auto", func(t *testing.T) {
		run(t, seed, 2, size, true, worker.ModeAuto)
	})
}

// soak is one run against one registry.
type soak struct {
	t      *testing.T
	refAPI bool
	mode   worker.Mode
	stack  *stacktest.Stack
	model  string // the describer's Model(), as written into descriptions

	mu         sync.Mutex
	rng        *rand.Rand
	faults     map[string]int
	calls      map[string]*blobCalls // by image blob digest
	poison     map[string]bool       // image blobs the model always crashes on
	burstUntil time.Time
	fallback   map[string]time.Time // fallback tag → its PUTs fail until then
	formats    map[string]string    // repository → notification format (referrers API registry)
	refused    []string             // notifications the notifier refused that it should have taken
	maxDeliver map[uint64]uint64    // job seq → deliveries, from JetStream's advisories

	notifying sync.WaitGroup
	arts      []*artifact
	zotSeqs   map[uint64]string // job stream seq of each malformed zot event → its body
	results   []queue.Result    // read by the audit
	started   time.Time
	oneOffs   []string // the one-off faults, with when they fired
	pools     []*pool
}

// blobCalls counts the model's answers for one image blob.
type blobCalls struct{ ok, failed int }

// artifact is one thing pushed: a photo, a multi-photo artifact, an album
// (index) or one of an album's children.
type artifact struct {
	kind       string // photo, multi, album, child, corrupt, poison
	repo, tag  string
	desc       ocispec.Descriptor
	layers     []digest.Digest // image layers, in order
	children   []*artifact     // album
	signed     bool            // has a signature referrer (pushed before it)
	superseded bool            // another photo was pushed to its tag after it
}

func (a *artifact) ref() string {
	r := a.repo
	if a.tag != "" {
		r += ":" + a.tag
	}
	return r + "@" + a.desc.Digest.String()
}

func (a *artifact) permanentFault() bool { return a.kind == "corrupt" || a.kind == "poison" }

func run(t *testing.T, seed, stream uint64, size int, refAPI bool, mode worker.Mode) {
	started := time.Now()
	s := &soak{
		t: t, refAPI: refAPI, mode: mode,
		rng:    rand.New(rand.NewPCG(seed, stream)),
		faults: map[string]int{}, calls: map[string]*blobCalls{}, poison: map[string]bool{},
		fallback: map[string]time.Time{}, formats: map[string]string{}, zotSeqs: map[uint64]string{},
		maxDeliver: map[uint64]uint64{},
	}
	opts := stacktest.Options{Workers: -1, MaxAttempts: maxAttempts, RegistryProxy: s.registryFaults}
	if refAPI {
		opts.ReferrersAPI, opts.RegistryHook = true, s.announcing
	} else {
		opts.NotifierProxy = s.duplicating
	}
	s.started = time.Now()
	s.stack = stacktest.Start(t, opts)
	s.stack.Model.Answer = s.answer
	ctx := context.Background()
	_, err := queue.EnsureStream(ctx, s.stack.JS, queue.StreamOptions{ExtraSubjects: []string{zotSubject}})
	require.NoError(t, err)
	_, err = queue.EnsureConsumer(ctx, s.stack.JS, queue.ConsumerOptions{AckWait: ackWait, ExtraSubjects: []string{zotSubject}})
	require.NoError(t, err)
	sub, err := s.stack.Conn.Subscribe("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES."+queue.Stream+"."+queue.Consumer, s.maxDelivered)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	for i := range pools {
		s.pools = append(s.pools, s.startPool(t, i))
	}
	t.Cleanup(s.stopPools)

	s.push(t, size)
	idle := s.waitIdle(t)
	s.audit(t, idle, time.Since(started))
}

// rand returns a float in [0, 1) from the run's generator.
func (s *soak) chance(p float64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rng.Float64() < p
}

func (s *soak) intN(n int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rng.IntN(n)
}

func (s *soak) fired(kind string) {
	s.mu.Lock()
	s.faults[kind]++
	s.mu.Unlock()
}

// answer is the model: it describes each photo by its digest, except when
// a fault fires, and always crashes on a poison photo.
func (s *soak) answer(c modeltest.Call) modeltest.Reply {
	blob := modeltest.Digest(c.Images[0])
	s.mu.Lock()
	defer s.mu.Unlock()
	bc := s.calls[blob]
	if bc == nil {
		bc = &blobCalls{}
		s.calls[blob] = bc
	}
	var rep modeltest.Reply
	switch r := s.rng.Float64(); {
	case s.poison[blob]:
		s.faults["model reset (poison photo)"]++
		rep = modeltest.Reset()
	case r < pModel500:
		s.faults["model 500"]++
		rep = modeltest.ServerError("soak: model failed")
	case r < pModel500+pModelReset:
		s.faults["model connection reset"]++
		rep = modeltest.Reset()
	case r < pModel500+pModelReset+pModelHang:
		s.faults["model hang past timeout"]++
		rep = modeltest.Hang()
	default:
		bc.ok++
		return modeltest.DescribeByDigest(c)
	}
	bc.failed++
	return rep
}

var fallbackPut = regexp.MustCompile(`^/v2/.+/manifests/sha256-[a-f0-9]{64}$`)

// registryFaults stands between the workers and the registry: 503 bursts,
// and fallback-index tags whose PUTs keep failing for a while.
func (s *soak) registryFaults(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		s.mu.Lock()
		burst := now.Before(s.burstUntil)
		if !burst && s.rng.Float64() < pBurst {
			s.burstUntil = now.Add(100*time.Millisecond + time.Duration(s.rng.IntN(1100))*time.Millisecond)
			s.faults["registry 503 burst"]++
			burst = true
		}
		failPut := false
		if !burst && r.Method == http.MethodPut && fallbackPut.MatchString(r.URL.Path) {
			until, seen := s.fallback[r.URL.Path]
			if !seen {
				if s.rng.Float64() < pFallbackFail {
					until = now.Add(fallbackFailFor)
					s.faults["fallback tag PUT failing"]++
				}
				s.fallback[r.URL.Path] = until
			}
			failPut = now.Before(until)
		}
		s.mu.Unlock()
		switch {
		case burst:
			http.Error(w, "soak: registry overloaded", http.StatusServiceUnavailable)
		case failPut:
			http.Error(w, "soak: tag write failed", http.StatusInternalServerError)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// duplicating delivers some of Distribution's notifications twice.
func (s *soak) duplicating(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.chance(pDuplicate) {
			body, err := io.ReadAll(r.Body)
			if err == nil {
				s.fired("duplicate notification")
				first := r.Clone(r.Context())
				first.Body = io.NopCloser(bytes.NewReader(body))
				next.ServeHTTP(httptest.NewRecorder(), first)
				r.Body = io.NopCloser(bytes.NewReader(body))
			}
		}
		next.ServeHTTP(w, r)
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

var manifestPath = regexp.MustCompile(`^/v2/(.+)/manifests/([^/]+)$`)

// announcing makes the referrers-API registry notify as a real one does:
// after every manifest PUT (the user's and regscribe's own), in the format
// of the repository — Distribution's, or Quay's or Docker Hub's, which name
// a tag and no digest (a push by digest makes no Quay or Docker Hub event).
func (s *soak) announcing(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m := manifestPath.FindStringSubmatch(r.URL.Path)
		if r.Method != http.MethodPut || m == nil {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		if sw.status != http.StatusCreated {
			return
		}
		repo, ref := m[1], m[2]
		tag := ref
		if strings.Contains(ref, ":") {
			tag = ""
		}
		s.mu.Lock()
		format := s.formats[repo]
		s.mu.Unlock()
		n := s.event(format, repo, tag, digest.FromBytes(body), r.Header.Get("Content-Type"), len(body))
		if n.body == nil {
			return
		}
		times := 1
		if s.chance(pDuplicate) {
			s.fired("duplicate notification")
			times = 2
		}
		if format != notifier.FormatDistribution {
			s.fired("tag-only notification (" + format + ")")
		}
		for range times {
			s.notifying.Add(1)
			go func() {
				defer s.notifying.Done()
				s.notify(n, http.StatusOK)
			}()
		}
	})
}

// notification is one request to the notifier.
type notification struct {
	contentType string
	body        []byte
}

// event builds the notification of one manifest push in format.
func (s *soak) event(format, repo, tag string, dgst digest.Digest, mediaType string, size int) notification {
	ns, name, _ := strings.Cut(repo, "/")
	var v any
	ct := "application/json"
	switch format {
	case notifier.FormatQuay:
		if tag == "" {
			return notification{}
		}
		v = map[string]any{"name": name, "repository": repo, "namespace": ns,
			"docker_url": s.stack.RegistryHost + "/" + repo, "updated_tags": []string{tag}}
	case notifier.FormatDockerHub:
		if tag == "" {
			return notification{}
		}
		v = map[string]any{"callback_url": "http://127.0.0.1:1/unused",
			"push_data":  map[string]any{"pushed_at": time.Now().Unix(), "pusher": "soak", "tag": tag},
			"repository": map[string]any{"repo_name": repo, "namespace": ns, "name": name}}
	default:
		ct = notifier.MediaTypeDistributionEvents
		target := map[string]any{"mediaType": mediaType, "digest": dgst.String(), "size": size, "repository": repo}
		if tag != "" {
			target["tag"] = tag
		}
		v = map[string]any{"events": []any{map[string]any{
			"id": fmt.Sprintf("soak-%d", s.intN(1<<30)), "timestamp": time.Now().UTC(), "action": "push", "target": target,
			"request": map[string]any{"host": s.stack.RegistryHost, "method": "PUT"},
		}}}
	}
	b, _ := json.Marshal(v)
	return notification{contentType: ct, body: b}
}

// notify posts n until the notifier answers want, retrying while it is
// unavailable (NATS restarting), as registries retry.
func (s *soak) notify(n notification, want int) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodPost, s.stack.NotifierURL, bytes.NewReader(n.body))
		req.Header.Set("Content-Type", n.contentType)
		req.Header.Set("Authorization", "Bearer "+s.stack.Token)
		resp, err := http.DefaultClient.Do(req)
		status := 0
		if err == nil {
			status = resp.StatusCode
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		if status == want {
			return
		}
		if (err == nil && status < 500) || time.Now().After(deadline) {
			s.mu.Lock()
			s.refused = append(s.refused, fmt.Sprintf("status %d (want %d, err %v) for %s", status, want, err, truncate(n.body)))
			s.mu.Unlock()
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// maxDelivered records JetStream's advisory that a job reached MaxDeliver.
func (s *soak) maxDelivered(m *nats.Msg) {
	var a struct {
		StreamSeq  uint64 `json:"stream_seq"`
		Deliveries uint64 `json:"deliveries"`
	}
	if json.Unmarshal(m.Data, &a) == nil {
		s.mu.Lock()
		s.maxDeliver[a.StreamSeq] = a.Deliveries
		s.mu.Unlock()
	}
}

// pool is one worker process: its own NATS connection, consumer handle,
// memory, leases and model client.
type pool struct {
	id     int
	nc     *nats.Conn
	cancel context.CancelFunc
	done   chan struct{}
	killed bool
}

func (s *soak) startPool(t *testing.T, id int) *pool {
	ctx := context.Background()
	nc, err := nats.Connect(s.stack.ClientURLs(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond),
		nats.Name(fmt.Sprintf("soak-pool-%d", id)))
	require.NoError(t, err)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	consumer, err := js.Consumer(ctx, queue.Stream, queue.Consumer)
	require.NoError(t, err)
	mem, err := memo.Open(ctx, js, queue.DescriptionBucket, 1)
	require.NoError(t, err)
	leases, err := lease.Open(ctx, js, 1, 0)
	require.NoError(t, err)
	ledger, err := queue.OpenLedger(ctx, js, 1)
	require.NoError(t, err)
	base, err := config.OllamaURL(s.stack.Model.URL)
	require.NoError(t, err)
	describer := vision.NewOllama(vision.OllamaOptions{BaseURL: base, Model: stacktest.Model, Timeout: modelTimeout})
	s.model = describer.Model()
	zot := notifier.Source{Name: "zot", Format: notifier.FormatZot, Registry: s.stack.RegistryHost}
	w := worker.New(s.stack.Client, describer, mem, worker.Options{
		Concurrency: poolSlots, AckWait: ackWait, MaxAttempts: maxAttempts,
		Backoff:         []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond},
		ShutdownTimeout: time.Millisecond, // a killed pool stops at once, like a crashed process
		Mode:            s.mode,
		Translate: func(_ string, data []byte) ([]queue.Job, error) {
			return notifier.JobsFromZotEvent(data, zot, time.Now())
		},
		Locker: leases, Reporter: queue.NewReporter(js), Ledger: ledger, Feed: feed.NewPublisher(js),
		Logger: stacktest.Logger(t).With("pool", id),
	})
	pctx, cancel := context.WithCancel(ctx)
	p := &pool{id: id, nc: nc, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		_ = w.Run(pctx, consumer)
	}()
	return p
}

// kill ends a pool as a crash would: its connection goes first, so nothing
// it holds is handed back; JetStream redelivers after the ack wait.
func (p *pool) kill() {
	p.killed = true
	p.nc.Close()
	p.cancel()
}

func (s *soak) stopPools() {
	for _, p := range s.pools {
		p.cancel()
	}
	for _, p := range s.pools {
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			s.t.Errorf("worker pool %d did not stop within 15 s", p.id)
		}
		p.nc.Close()
	}
}

// waitIdle waits until the job stream is empty and nothing is pending or in
// flight for 2 s. Injected faults (503 bursts met by oras-go's retries, a
// dead worker's lease, backoffs) slow the drain down, so it waits as long as
// the queue moves, up to a bound; a queue that does not move for
// stallBound, or jobs left in the stream that nobody will deliver, fail.
func (s *soak) waitIdle(t *testing.T) bool {
	ctx := context.Background()
	bound, stallBound := 75*time.Second, 20*time.Second
	if testing.Short() {
		bound = 45 * time.Second
	}
	deadline := time.Now().Add(bound)
	var quiet, stuck time.Time
	moved := time.Now()
	var last, lastState string
	for time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		st, err := s.stack.JS.Stream(ctx, queue.Stream)
		if err != nil {
			continue
		}
		si, err := st.Info(ctx)
		if err != nil {
			continue
		}
		c, err := s.stack.JS.Consumer(ctx, queue.Stream, queue.Consumer)
		if err != nil {
			continue
		}
		ci := c.CachedInfo()
		last = fmt.Sprintf("%d jobs in the stream, %d pending, %d in flight or waiting to be redelivered", si.State.Msgs, ci.NumPending, ci.NumAckPending)
		now := time.Now()
		if state := fmt.Sprintf("%s; delivered %d", last, ci.Delivered.Consumer); state != lastState {
			lastState, moved = state, now
		}
		switch {
		case si.State.Msgs == 0 && ci.NumPending == 0 && ci.NumAckPending == 0:
			stuck = time.Time{}
			if quiet.IsZero() {
				quiet = now
			}
			if now.Sub(quiet) >= 2*time.Second {
				return true
			}
		case si.State.Msgs > 0 && ci.NumPending == 0 && ci.NumAckPending == 0:
			quiet = time.Time{}
			if stuck.IsZero() {
				stuck = now
			}
			if now.Sub(stuck) >= 2*ackWait {
				t.Errorf("invariant 2 (job stream empty): %d jobs stranded in the stream: neither pending nor in flight for %s, so no worker will ever get them", si.State.Msgs, now.Sub(stuck).Round(time.Second))
				return false
			}
		default:
			quiet, stuck = time.Time{}, time.Time{}
			if now.Sub(moved) >= stallBound {
				t.Errorf("invariant 2 (job stream empty): the queue has not moved for %s: %s", stallBound, last)
				dumpStacks(t)
				return false
			}
		}
	}
	t.Errorf("invariant 2 (job stream empty): not idle after waiting %s: %s", bound, last)
	dumpStacks(t)
	return false
}

// dumpStacks writes every goroutine's stack to a file (the test's temporary
// directory is removed with it), to show what a stuck job waits for.
func dumpStacks(t *testing.T) {
	f, err := os.CreateTemp("", "regscribe-soak-stacks-*.txt")
	if err != nil {
		t.Logf("could not write the goroutine stacks: %v", err)
		return
	}
	defer f.Close()
	if err := pprof.Lookup("goroutine").WriteTo(f, 2); err != nil {
		t.Logf("could not write the goroutine stacks: %v", err)
		return
	}
	t.Logf("goroutine stacks of the stuck run: %s", f.Name())
}

func truncate(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// emptyConfig is the config blob of every artifact pushed.
var emptyConfig = ocispec.DescriptorEmptyJSON

// manifestOf builds an OCI image manifest of layers (and subject).
func manifestOf(artifactType string, layers []ocispec.Descriptor, subject *ocispec.Descriptor) ([]byte, ocispec.Descriptor) {
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		ArtifactType: artifactType, Config: emptyConfig, Layers: layers, Subject: subject,
		Annotations: map[string]string{ocispec.AnnotationCreated: time.Now().UTC().Format(time.RFC3339Nano)},
	}
	raw, _ := json.Marshal(m)
	return raw, content.NewDescriptorFromBytes(ocispec.MediaTypeImageManifest, raw)
}

// repository is a user's handle on a repository of the registry (not
// through the workers' fault proxy).
func (s *soak) repository(name string) (*remote.Repository, error) {
	r, err := remote.NewRepository(s.stack.RegistryHost + "/" + name)
	if err != nil {
		return nil, err
	}
	r.PlainHTTP = true
	r.Client = stacktest.UserClient
	return r, nil
}
