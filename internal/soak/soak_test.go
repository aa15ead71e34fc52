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
	"runtime"
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
	"github.com/regscribe/regscribe/internal/index"
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
	// deadLetterKeep is the dead-letter stream's retention (its max
	// count): below the permanent faults injected (3 photos and 6 zot
	// events), so the stream goes past it and drops the oldest.
	deadLetterKeep = 4
	// linkHold bounds how long a tag link is held for the re-push race;
	// tagWait, how long a write-back waits for a link (shorter than
	// regscribe's 30 s, which is longer than the soak's stall bound).
	linkHold = 5 * time.Second
	tagWait  = 8 * time.Second
	// busyFor bounds how long the machine is kept busy.
	busyFor = 8 * time.Second
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
	pGeneric      = 0.2   // per photo artifact: layers pushed as application/vnd.oci.image.layer.v1.tar
	pOtherName    = 0.25  // per repository: pushed to, and reprocessed as, localhost:PORT
	pHeldLink     = 0.3   // per first push (re-push race sub-soak): its tag link held until a worker looks
)

const fallbackFailFor = 5 * time.Second // longer than oras-go's own retries of one request

// TestSoak pushes photos through the registries while faults fire and
// audits the end state. See package doc.
func TestSoak(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv(seedEnv); v != "" {
		var err error
		seed, err = strconv.ParseUint(v, 10, 64)
		require.NoError(t, err, "%s must be an unsigned integer", seedEnv)
	}
	t.Logf("soak seed %d (rerun: %s=%d go test ./internal/soak -run TestSoak -count=1 -v)", seed, seedEnv, seed)
	size, raceSize := 110, 36
	if testing.Short() {
		size, raceSize = 30, 15
	}
	for _, v := range []variant{
		{name: "distribution-referrer", stream: 1, size: size, mode: worker.ModeReferrer, onDisk: true, repushEvery: 10},
		{name: "referrers-api-auto", stream: 2, size: size, refAPI: true, mode: worker.ModeAuto, repushEvery: 10},
		{name: "distribution-annotation-repush-race", stream: 3, size: raceSize, mode: worker.ModeAnnotation, onDisk: true, race: true, repushEvery: 3},
	} {
		t.Run(v.name, func(t *testing.T) { run(t, seed, v) })
	}
}

// variant is one sub-soak: the registry, the write-back mode and what is
// provoked besides the common faults.
type variant struct {
	name   string
	stream uint64 // of the seed's generator
	size   int    // single photos pushed
	refAPI bool   // go-containerregistry's registry with the referrers API, else CNCF Distribution
	mode   worker.Mode
	onDisk bool // Distribution keeps its content on disk, as `regscribe up` does
	// race: the re-push race provoked (tag links held until a worker
	// looks) and the machine kept busy for part of the run.
	race        bool
	repushEvery int // one photo in repushEvery is pushed to its tag again
}

// soak is one run against one registry.
type soak struct {
	t      *testing.T
	v      variant
	refAPI bool
	mode   worker.Mode
	stack  *stacktest.Stack
	model  string // the describer's Model(), as written into descriptions
	gate   *stacktest.TagLinkGate
	index  *index.Index // follows the description stream from the start
	local  string       // the registry's other name: localhost:PORT

	mu            sync.Mutex
	rng           *rand.Rand
	faults        map[string]int
	calls         map[string]*blobCalls    // by image blob digest
	poison        map[string]bool          // image blobs the model always crashes on
	describing    map[string]chan struct{} // image blob → closed when the model is first asked of it
	burstUntil    time.Time
	fallback      map[string]time.Time // fallback tag → its PUTs fail until then
	formats       map[string]string    // repository → notification format (referrers API registry)
	otherName     map[string]bool      // repositories pushed to as localhost:PORT
	pushed        map[string]bool      // repositories whose first push is done
	refused       []string             // notifications the notifier refused that it should have taken
	refusedEvents map[string]int       // repository → refusals on the description stream (audit)
	maxDeliver    map[uint64]uint64    // job seq → deliveries, from JetStream's advisories

	notifying sync.WaitGroup
	arts      []*artifact
	zotSeqs   map[uint64]string // job stream seq of each malformed zot event → its body
	// deadUnacked are the jobs (by job stream seq) whose dead letter's
	// publish failed at least once: it may have been stored all the same.
	deadUnacked map[uint64]bool
	results     []queue.Result // read by the audit
	started     time.Time
	oneOffs     []string // the one-off faults, with when they fired
	pools       []*pool
	busy        chan struct{} // closed to end the busy machine
}

// blobCalls counts the model's answers for one image blob.
type blobCalls struct{ ok, failed int }

// artifact is one thing pushed: a photo, a multi-photo artifact, an album
// (index), one of an album's children, or a text file.
type artifact struct {
	kind       string // photo, multi, album, child, text, corrupt, poison
	repo, tag  string
	desc       ocispec.Descriptor
	raw        []byte          // the manifest's bytes (photo, multi, text, child)
	layerType  string          // the media type its layers were pushed with
	layers     []digest.Digest // image layers, in order
	children   []*artifact     // album
	signed     bool            // has a signature referrer (pushed before it)
	superseded bool            // another photo was pushed to its tag after it
	again      string          // the same manifest was pushed to its tag again: when
}

func (a *artifact) ref() string {
	r := a.repo
	if a.tag != "" {
		r += ":" + a.tag
	}
	return r + "@" + a.desc.Digest.String()
}

func (a *artifact) permanentFault() bool { return a.kind == "corrupt" || a.kind == "poison" }

func run(t *testing.T, seed uint64, v variant) {
	started := time.Now()
	s := &soak{
		t: t, v: v, refAPI: v.refAPI, mode: v.mode,
		rng:    rand.New(rand.NewPCG(seed, v.stream)),
		faults: map[string]int{}, calls: map[string]*blobCalls{}, poison: map[string]bool{}, describing: map[string]chan struct{}{},
		fallback: map[string]time.Time{}, formats: map[string]string{}, zotSeqs: map[uint64]string{}, deadUnacked: map[uint64]bool{},
		otherName: map[string]bool{}, pushed: map[string]bool{}, maxDeliver: map[uint64]uint64{}, refusedEvents: map[string]int{},
	}
	opts := stacktest.Options{Workers: -1, MaxAttempts: maxAttempts, RegistryProxy: s.registryFaults, RegistryOnDisk: v.onDisk, TagWait: tagWait}
	if v.race {
		s.gate = &stacktest.TagLinkGate{Timeout: linkHold}
		opts.RegistryStorage = s.gate.Storage
		opts.RegistryProxy = func(next http.Handler) http.Handler { return s.registryFaults(s.gate.Watch(next)) }
	}
	if v.refAPI {
		opts.ReferrersAPI, opts.RegistryHook = true, s.announcing
	} else {
		opts.NotifierProxy = s.duplicating
	}
	s.started = time.Now()
	s.stack = stacktest.Start(t, opts)
	s.stack.Model.Answer = s.answer
	_, port, _ := strings.Cut(s.stack.RegistryHost, ":")
	s.local = "localhost:" + port
	ctx := context.Background()
	_, err := queue.EnsureStream(ctx, s.stack.JS, queue.StreamOptions{ExtraSubjects: []string{zotSubject}, DeadLetterMaxCount: deadLetterKeep})
	require.NoError(t, err)
	_, err = queue.EnsureConsumer(ctx, s.stack.JS, queue.ConsumerOptions{AckWait: ackWait, ExtraSubjects: []string{zotSubject}})
	require.NoError(t, err)
	s.index, _ = stacktest.FollowIndex(t, s.stack.JS, index.Options{Registry: s.stack.Client.Canonical})
	sub, err := s.stack.Conn.Subscribe("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES."+queue.Stream+"."+queue.Consumer, s.maxDelivered)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	for i := range pools {
		s.pools = append(s.pools, s.startPool(t, i))
	}
	t.Cleanup(s.stopPools)

	s.push(t, v.size)
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
	if ch := s.describing[blob]; ch != nil {
		close(ch)
		delete(s.describing, blob)
	}
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
		n := s.event(format, r.Host, repo, tag, digest.FromBytes(body), r.Header.Get("Content-Type"), len(body))
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

// event builds the notification of one manifest push in format; host is
// the name the pusher reached the registry by (Distribution's request.host).
func (s *soak) event(format, host, repo, tag string, dgst digest.Digest, mediaType string, size int) notification {
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
			"request": map[string]any{"host": host, "method": "PUT"},
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
		Locker: leases, Reporter: deadCounter{queue.NewReporter(js), s}, Ledger: ledger, Feed: feed.NewPublisher(js),
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
// through the workers' fault proxy), by the name the user pushes to it
// with: localhost:PORT for some repositories.
func (s *soak) repository(name string) (*remote.Repository, error) {
	host := s.stack.RegistryHost
	if s.otherName[name] { // written by the plan only, before any push
		host = s.local
	}
	r, err := remote.NewRepository(host + "/" + name)
	if err != nil {
		return nil, err
	}
	r.PlainHTTP = true
	r.Client = stacktest.UserClient
	return r, nil
}

// busyMachine keeps every processor busy with spinning goroutines until
// s.busy is closed or busyFor has passed, whichever is first: the
// machine regscribe runs on is busy (the re-push race is likeliest then).
func (s *soak) busyMachine() {
	s.busy = make(chan struct{})
	deadline := time.Now().Add(busyFor)
	for range runtime.GOMAXPROCS(0) {
		go func(stop <-chan struct{}) {
			for n := uint64(1); time.Now().Before(deadline); n++ {
				if n%(1<<16) == 0 {
					select {
					case <-stop:
						return
					default:
					}
				}
			}
		}(s.busy)
	}
	s.fired("machine busy (a spinning goroutine per processor)")
	s.oneOff("machine busy")
}

func (s *soak) idleMachine() {
	if s.busy != nil {
		close(s.busy)
		s.oneOff("machine idle again")
	}
}

// deadCounter is the pools' Reporter: it notes the dead letters whose
// publish failed. A publish cut off by a killed connection may have been
// stored without its acknowledgement arriving; the job's next delivery
// stores it again under the same message id, which JetStream drops as a
// duplicate, unless NATS restarted after the stream's retention dropped
// the first (a restarted server knows the ids of the messages it holds).
type deadCounter struct {
	*queue.Reporter
	s *soak
}

func (d deadCounter) Dead(ctx context.Context, l queue.DeadLetter) error {
	err := d.Reporter.Dead(ctx, l)
	if err != nil {
		d.s.mu.Lock()
		d.s.deadUnacked[l.JobSeq] = true
		d.s.mu.Unlock()
	}
	return err
}
