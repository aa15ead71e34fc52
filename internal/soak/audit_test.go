package soak_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/regscribe/regscribe/internal/feed"
	"github.com/regscribe/regscribe/internal/index"
	"github.com/regscribe/regscribe/internal/queue"
	"github.com/regscribe/regscribe/internal/registry"
	"github.com/regscribe/regscribe/internal/stacktest"
	"github.com/regscribe/regscribe/notifier"
)

// malformedNotifications posts bodies the notifier must refuse with 400.
func (s *soak) malformedNotifications() {
	host := s.stack.RegistryHost
	for _, n := range []notification{
		{notifier.MediaTypeDistributionEvents, []byte(`{"events": [`)},
		{notifier.MediaTypeDistributionEvents, []byte(`{"events":[{"target":{"repository":"soak/x","digest":"sha256:` + strings.Repeat("a", 64) + `"}}]}`)},
		{notifier.MediaTypeDistributionEvents, []byte(`{"events":[{"action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","repository":"Soak/UPPER","digest":"sha256:abc"}}]}`)},
		{"application/json", []byte(`{"docker_url":"` + host + `/soak/x","updated_tags":["latest"]}`)},
		{"application/json", []byte(`{"push_data":{"pusher":"soak"},"repository":{"repo_name":"soak/x"}}`)},
		{"application/json", []byte(`{"hello":"world"}`)},
	} {
		s.fired("malformed notification (refused with 400)")
		s.notify(n, 400)
	}
}

// malformedZotEvents publishes events on the zot subject that cannot be
// read: each must become exactly one dead letter.
func (s *soak) malformedZotEvents(t *testing.T, round int) {
	ctx := context.Background()
	for i, body := range []string{
		fmt.Sprintf(`{"specversion":"1.0","id":"soak-%d-%d","source":"soak","type":"zotregistry.image.updated","data":"not an image"}`, round, 0),
		fmt.Sprintf(`soak %d-%d: not JSON at all`, round, 1),
		fmt.Sprintf(`{"specversion":"1.0","id":"soak-%d-%d","source":"soak","type":"zotregistry.image.updated","data":{"name":"Not A Repository","reference":"latest"}}`, round, 2),
	} {
		ack, err := s.stack.JS.Publish(ctx, zotSubject, []byte(body), jetstream.WithRetryAttempts(60), jetstream.WithRetryWait(250*time.Millisecond))
		if err != nil {
			t.Errorf("publish malformed zot event %d: %v", i, err)
			continue
		}
		s.fired("malformed zot event")
		s.mu.Lock()
		s.zotSeqs[ack.Sequence] = body
		s.mu.Unlock()
	}
}

// descriptions counts the descriptions by the soak's model a user sees for
// a's manifest (at its tag when viaTag): its annotation and its description
// referrers. It also returns the image layers of the manifest seen.
func (s *soak) descriptions(ctx context.Context, repo *remote.Repository, a *artifact, viaTag bool) (int, []string, error) {
	desc := a.desc
	if viaTag {
		var err error
		if desc, err = repo.Resolve(ctx, a.tag); err != nil {
			return 0, nil, err
		}
	}
	n, how, _, err := s.describedAt(ctx, repo, desc)
	return n, how, err
}

// describedAt counts the descriptions by the soak's model of the manifest
// desc, saying how each is seen, and returns its image layers.
func (s *soak) describedAt(ctx context.Context, repo *remote.Repository, desc ocispec.Descriptor) (int, []string, []digest.Digest, error) {
	raw, err := content.FetchAll(ctx, repo, desc)
	if err != nil {
		return 0, nil, nil, err
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return 0, nil, nil, err
	}
	var layers []digest.Digest
	for _, l := range m.Layers {
		if l.MediaType == "image/jpeg" || l.MediaType == generic {
			layers = append(layers, l.Digest)
		}
	}
	var how []string
	if m.Annotations[registry.AnnotationDescription] != "" && m.Annotations[registry.AnnotationModel] == s.model {
		how = append(how, "annotation on "+desc.Digest.String()[:19])
	}
	var refs []ocispec.Descriptor
	err = repo.Referrers(ctx, desc, registry.ArtifactTypeDescription, func(r []ocispec.Descriptor) error {
		refs = append(refs, r...)
		return nil
	})
	if err != nil {
		return 0, nil, nil, fmt.Errorf("referrers of %s: %w", desc.Digest, err)
	}
	for _, r := range refs {
		rraw, err := content.FetchAll(ctx, repo, r)
		if err != nil {
			return 0, nil, nil, fmt.Errorf("referrer %s: %w", r.Digest, err)
		}
		var rm ocispec.Manifest
		if err := json.Unmarshal(rraw, &rm); err != nil {
			return 0, nil, nil, err
		}
		if rm.Annotations[registry.AnnotationModel] == s.model {
			how = append(how, "referrer "+r.Digest.String()[:19])
		}
	}
	return len(how), how, layers, nil
}

// readResults reads every result in the result stream.
func readResults(ctx context.Context, js jetstream.JetStream) ([]queue.Result, error) {
	st, err := js.Stream(ctx, queue.ResultStream)
	if err != nil {
		return nil, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, err
	}
	var out []queue.Result
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var r queue.Result
		if err := json.Unmarshal(m.Data, &r); err != nil {
			return nil, fmt.Errorf("result %d: %w", seq, err)
		}
		out = append(out, r)
	}
	return out, nil
}

func (s *soak) describeResult(r queue.Result) string {
	out := fmt.Sprintf("%s at attempt %d (+%s)", r.Outcome, r.Attempts, r.At.Sub(s.started).Round(100*time.Millisecond))
	if r.Reason != "" {
		out += " (" + trim(r.Reason) + ")"
	}
	return out
}

func trim(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}

// audit checks the invariants from outside: the registry, the result and
// dead-letter streams and the job stream.
func (s *soak) audit(t *testing.T, idle bool, took time.Duration) {
	ctx := context.Background()
	js := s.stack.JS
	results, err := readResults(ctx, js)
	if err != nil {
		t.Fatalf("read results: %v", err)
	}
	dead, err := queue.DeadLetters(ctx, js)
	if err != nil {
		t.Fatalf("read dead letters: %v", err)
	}
	st, err := js.Stream(ctx, queue.Stream)
	if err != nil {
		t.Fatalf("job stream: %v", err)
	}
	si, err := st.Info(ctx)
	if err != nil {
		t.Fatalf("job stream: %v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()

	s.summary(t, results, dead, si.State.LastSeq, took)

	// 1. Every job message ended exactly once.
	bySeq := map[uint64][]queue.Result{}
	for _, r := range results {
		if r.JobSeq == 0 || r.JobSeq > si.State.LastSeq {
			t.Errorf("invariant 1 (each job ends once): result for %s has job seq %d, outside the job stream's 1..%d", r.Job.Ref(), r.JobSeq, si.State.LastSeq)
			continue
		}
		bySeq[r.JobSeq] = append(bySeq[r.JobSeq], r)
	}
	remaining := map[uint64]bool{}
	for seq := si.State.FirstSeq; si.State.Msgs > 0 && seq <= si.State.LastSeq; seq++ {
		if m, err := st.GetMsg(ctx, seq); err == nil {
			remaining[seq] = true
			if len(bySeq[seq]) == 0 {
				why := "delivered, never settled (still in flight when the wait ended)"
				if n, ok := s.maxDeliver[seq]; ok {
					why = fmt.Sprintf("JetStream stopped delivering it after %d deliveries (MaxDeliver): stranded, no worker will get it again", n)
				}
				t.Errorf("invariant 2 (job stream empty): job seq %d on %s is still in the stream with no result: %s; job: %s", seq, m.Subject, why, truncate(m.Data))
			}
		}
	}
	for seq := uint64(1); seq <= si.State.LastSeq; seq++ {
		rs := bySeq[seq]
		switch {
		case len(rs) == 0 && !remaining[seq]:
			why := "acknowledged or terminated, but its result was never stored"
			if body, ok := s.zotSeqs[seq]; ok {
				why += fmt.Sprintf(" (malformed zot event %q)", trim(body))
			}
			t.Errorf("invariant 1 (each job ends once): job seq %d left the job stream without a result: %s", seq, why)
		case len(rs) > 1:
			var ends []string
			for _, r := range rs {
				ends = append(ends, s.describeResult(r))
			}
			t.Errorf("invariant 1 (each job ends once): job seq %d (%s) ended %d times: %s; one-off faults: %s", seq, rs[0].Job.Ref(), len(rs), strings.Join(ends, "; "), strings.Join(s.oneOffs, ", "))
		}
	}

	// 4. Failed jobs are exactly the permanent faults injected, one each;
	// each stored one dead letter, and the dead-letter stream, past its
	// retention, holds the newest deadLetterKeep of them.
	failedSeqs := map[uint64]bool{}
	for _, r := range results {
		if r.Outcome == queue.Failed {
			failedSeqs[r.JobSeq] = true
		}
	}
	faultArts := map[string]*artifact{}
	for _, a := range s.arts {
		if a.permanentFault() {
			faultArts[a.repo] = a
		}
	}
	perZot, perArt := map[uint64]int{}, map[string]int{}
	for seq := range failedSeqs {
		r := bySeq[seq][0]
		if _, ok := s.zotSeqs[seq]; ok {
			perZot[seq]++
			continue
		}
		if a, ok := faultArts[r.Job.Repository]; ok {
			perArt[a.repo]++
			continue
		}
		t.Errorf("invariant 4 (dead letters): job seq %d (%s) failed and is not an injected fault: %s%s", seq, r.Job.Ref(), s.describeResult(r), s.history(r.Job.Repository))
	}
	for seq, body := range s.zotSeqs {
		if perZot[seq] != 1 {
			t.Errorf("invariant 4 (dead letters): malformed zot event (job seq %d, %q) has %d failed results, want 1", seq, trim(body), perZot[seq])
		}
	}
	for repo, a := range faultArts {
		if perArt[repo] != 1 {
			t.Errorf("invariant 4 (dead letters): %s photo %s has %d failed jobs, want 1%s", a.kind, a.ref(), perArt[repo], s.jobsOf(results, repo))
		}
	}
	s.auditDeadLetters(ctx, t, dead, failedSeqs)

	// 3 and 6. Every photo has exactly one description; photos with
	// referrers (signed) are never replaced.
	s.results = results
	for _, a := range s.arts {
		s.auditArtifact(ctx, t, a)
	}

	// 5. Model calls: none counted that did not happen, and none missed.
	s.auditModelCalls(t, results)

	// 7. Every description written is on the description stream (search
	// learns of it), and every event there is a job's that ended.
	s.auditFeed(ctx, t, results, bySeq)

	// 8. Text files pushed as generic layers end refused, visibly; nothing
	// else does.
	s.auditRefused(t, results)

	// 9 and 10. The search index has one entry per photo, under the
	// registry's one name; an index rebuilt from the stream equals it.
	s.auditIndex(ctx, t)

	for _, r := range s.refused {
		t.Errorf("notifier: %s", r)
	}
	for _, p := range s.stack.Model.Problems() {
		t.Errorf("model fake saw a protocol problem: %s", p)
	}
	if !idle {
		t.Logf("the system never went idle; the invariants above were checked on the state at the end of the wait")
	}
}

// history says how a repository was announced and how its jobs ended.
func (s *soak) history(repo string) string {
	h := ""
	if f := s.formats[repo]; f != "" {
		h = "; notified in " + f + " format"
	}
	if s.otherName[repo] {
		h += "; pushed to and reprocessed as " + s.local
	}
	for _, a := range s.arts {
		if a.repo != repo {
			continue
		}
		if a.superseded {
			h += "; its tag was pushed again (another photo)"
		}
		if a.again != "" {
			h += "; the same manifest was pushed to its tag again " + a.again
		}
		if a.layerType == generic {
			h += "; its layers were pushed as " + generic
		}
	}
	for path, until := range s.fallback {
		if strings.HasPrefix(path, "/v2/"+repo+"/manifests/") && !until.IsZero() {
			h += "; the PUTs of one of its fallback index tags were failed on purpose for " + fallbackFailFor.String()
			break
		}
	}
	return h + s.jobsOf(s.results, repo)
}

// jobsOf lists the results of a repository's jobs, for failure messages.
func (s *soak) jobsOf(results []queue.Result, repo string) string {
	var out []string
	for _, r := range results {
		if r.Job.Repository == repo {
			out = append(out, fmt.Sprintf("seq %d %s", r.JobSeq, s.describeResult(r)))
		}
	}
	if len(out) == 0 {
		return "; no job of it has a result"
	}
	return "; its jobs: " + strings.Join(out, "; ")
}

func (s *soak) auditArtifact(ctx context.Context, t *testing.T, a *artifact) {
	repo, err := s.repository(a.repo)
	if err != nil {
		t.Errorf("%s: %v", a.repo, err)
		return
	}
	want := func(what string, desc ocispec.Descriptor, layers []digest.Digest) {
		n, how, got, err := s.describedAt(ctx, repo, desc)
		switch {
		case err != nil:
			t.Errorf("invariant 3 (one description per photo): %s %s: %v", what, desc.Digest, err)
		case layers != nil && !slices.Equal(got, layers):
			t.Errorf("invariant 3 (one description per photo): %s: the manifest %s shows photos %v, the user pushed %v", what, desc.Digest, short(got), short(layers))
		case n != 1:
			t.Errorf("invariant 3 (one description per photo): %s has %d descriptions by %s, want 1: %v%s", what, n, s.model, how, s.history(a.repo))
		}
	}
	if a.permanentFault() {
		if n, how, _, err := s.describedAt(ctx, repo, a.desc); err == nil && n > 0 {
			t.Errorf("invariant 3: %s photo %s has descriptions: %v", a.kind, a.ref(), how)
		}
		return
	}
	if a.kind == "text" {
		if n, how, _, err := s.describedAt(ctx, repo, a.desc); err != nil || n > 0 {
			t.Errorf("invariant 8 (text files are refused): text file %s has descriptions %v (%v)%s", a.ref(), how, err, s.history(a.repo))
		}
		if d, err := repo.Resolve(ctx, a.tag); err != nil || d.Digest != a.desc.Digest {
			t.Errorf("invariant 8 (text files are refused): a refused manifest is left as it is, but the tag of %s is at %v (%v)", a.ref(), d.Digest, err)
		}
		return
	}
	if s.mode == "referrer" {
		if a.tag != "" && !a.superseded && a.kind != "album" {
			// The tag ends on the last push (a re-push of the same
			// manifest, or another photo, audited as its own artifact).
			if d, err := repo.Resolve(ctx, a.tag); err != nil || d.Digest != a.desc.Digest {
				t.Errorf("invariant 3 (the tag ends on the last push, described): %s %s: tag now at %v (%v)%s", a.kind, a.ref(), d.Digest, err, s.history(a.repo))
			}
		}
		// Nothing is re-pushed: each manifest is described where it is.
		if a.kind == "album" {
			if d, err := repo.Resolve(ctx, a.tag); err != nil || d.Digest != a.desc.Digest {
				t.Errorf("invariant 6 (referrer mode leaves photos alone): album %s: tag now at %v (%v)", a.ref(), d.Digest, err)
			}
			for i, c := range a.children {
				want(fmt.Sprintf("album %s child %d", a.ref(), i), c.desc, c.layers)
			}
			return
		}
		want(fmt.Sprintf("%s %s", a.kind, a.ref()), a.desc, a.layers)
		return
	}
	if a.superseded {
		return // the tag shows a newer photo, audited on its own
	}
	top, err := repo.Resolve(ctx, a.tag)
	if err != nil {
		t.Errorf("invariant 3 (one description per photo): %s %s: resolve tag: %v", a.kind, a.ref(), err)
		return
	}
	if a.kind != "album" {
		if a.signed && top.Digest != a.desc.Digest {
			t.Errorf("invariant 6 (signed photos are not replaced): %s: the tag moved to %s, so the signature refers to a manifest the tag no longer shows", a.ref(), top.Digest)
		}
		want(fmt.Sprintf("%s %s (at its tag: %s)", a.kind, a.ref(), top.Digest.String()[:19]), top, a.layers)
		return
	}
	raw, err := content.FetchAll(ctx, repo, top)
	var idx ocispec.Index
	if err == nil {
		err = json.Unmarshal(raw, &idx)
	}
	if err != nil || len(idx.Manifests) != len(a.children) {
		t.Errorf("invariant 3 (one description per photo): album %s: index at its tag %s: %v, %d children, want %d", a.ref(), top.Digest, err, len(idx.Manifests), len(a.children))
		return
	}
	for i, c := range a.children {
		got := idx.Manifests[i]
		if c.signed && got.Digest != c.desc.Digest {
			t.Errorf("invariant 6 (signed photos are not replaced): album %s child %d was signed as %s; the index at the tag now points at %s, which its signature does not name", a.ref(), i, c.desc.Digest.String()[:19], got.Digest.String()[:19])
		}
		want(fmt.Sprintf("album %s child %d (%s)", a.ref(), i, got.Digest.String()[:19]), got, c.layers)
	}
}

func short(ds []digest.Digest) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.String()[:19]
	}
	return out
}

// auditModelCalls checks the model-call counts of the results against the
// calls the model answered: never more counted than answered, and for a
// photo whose jobs all ended at their first delivery (no attempt failed, so
// every answer belongs to an attempt that reported), exactly as many.
//
// It does not ask for at most one call per photo: jobs for one photo in
// different worker processes may each call the model before either has
// remembered a description (first writer wins, both count their call).
func (s *soak) auditModelCalls(t *testing.T, results []queue.Result) {
	counted, answered := 0, 0
	for _, r := range results {
		counted += r.ModelCalls
	}
	for _, c := range s.calls {
		answered += c.ok
	}
	if counted > answered {
		t.Errorf("invariant 5 (model calls): results count %d model calls, the model answered %d", counted, answered)
	}
	byRepo := map[string][]*artifact{}
	for _, a := range s.arts {
		byRepo[a.repo] = append(byRepo[a.repo], a)
	}
	for repo, arts := range byRepo {
		a := arts[0]
		if len(arts) != 1 || a.kind != "photo" {
			continue
		}
		var rs []queue.Result
		clean := true
		sum := 0
		for _, r := range results {
			if r.Job.Repository != repo {
				continue
			}
			rs = append(rs, r)
			sum += r.ModelCalls
			clean = clean && r.Attempts == 1 && r.Outcome != queue.Failed
		}
		c := s.calls[a.layers[0].String()]
		if !clean || c == nil || len(rs) == 0 {
			continue
		}
		if sum != c.ok {
			var ends []string
			for _, r := range rs {
				ends = append(ends, fmt.Sprintf("seq %d %s, %d model calls", r.JobSeq, r.Outcome, r.ModelCalls))
			}
			t.Errorf("invariant 5 (model calls): photo %s: the model answered %d times for its blob, its jobs' results count %d (every job ended at its first delivery): %s",
				a.ref(), c.ok, sum, strings.Join(ends, "; "))
		}
	}
}

// summary logs what the run did.
func (s *soak) summary(t *testing.T, results []queue.Result, dead []queue.DeadLetter, jobs uint64, took time.Duration) {
	kinds := map[string]int{}
	images := 0
	for _, a := range s.arts {
		kinds[a.kind]++
		images += len(a.layers)
		for _, c := range a.children {
			images += len(c.layers)
		}
	}
	outcomes := map[queue.Outcome]int{}
	for _, r := range results {
		outcomes[r.Outcome]++
	}
	ok, failed, twice := 0, 0, 0
	for _, c := range s.calls {
		ok += c.ok
		failed += c.failed
		if c.ok > 1 {
			twice++
		}
	}
	var fs []string
	for _, k := range sortedKeys(s.faults) {
		fs = append(fs, fmt.Sprintf("%s %d", k, s.faults[k]))
	}
	var ks []string
	for _, k := range sortedKeys(kinds) {
		ks = append(ks, fmt.Sprintf("%s %d", k, kinds[k]))
	}
	t.Logf("soak %s (%s mode, %s): %d artifacts (%s), %d images; %d job messages; results: %d described, %d skipped, %d refused, %d failed; %d dead letters kept; model: %d answers, %d failed calls, %d blobs answered more than once; took %s",
		s.v.name, s.mode, map[bool]string{true: "registry with the referrers API", false: "CNCF Distribution"}[s.refAPI],
		len(s.arts), strings.Join(ks, ", "), images, jobs, outcomes[queue.Described], outcomes[queue.Skipped], outcomes[queue.Refused], outcomes[queue.Failed],
		len(dead), ok, failed, twice, took.Round(100*time.Millisecond))
	t.Logf("faults fired: %s (%s)", strings.Join(fs, ", "), strings.Join(s.oneOffs, ", "))
}

// auditFeed checks invariant 7: each described job's write is named by an
// event on the description stream (the annotated manifest's digest, or the
// referrer in a photo's Stored), and each event's message id names a job
// message that ended described or skipped (a zot event's message carries
// several jobs). The stream keeps the newest event per manifest and
// describer, so a write is found through any job that wrote the same.
func (s *soak) auditFeed(ctx context.Context, t *testing.T, results []queue.Result, bySeq map[uint64][]queue.Result) {
	st, err := s.stack.JS.Stream(ctx, feed.Stream)
	if err != nil {
		t.Fatalf("description stream: %v", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatalf("description stream: %v", err)
	}
	written := map[string]bool{}
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("description event %d: %v", seq, err)
		}
		e, err := feed.Parse(m.Data)
		if err != nil {
			t.Errorf("invariant 7 (description stream): event %d: %v", seq, err)
			continue
		}
		// Whoever published it, the event names what it describes: a
		// job's write can reach the stream as the reprocess's found event
		// (the reprocess read it in the registry first, and the job's own
		// event, published later, found the stream holding it).
		written[e.Digest] = true
		for _, p := range e.Photos {
			written[strings.TrimPrefix(p.Stored, "referrer ")] = true
		}
		id := m.Header.Get(jetstream.MsgIDHeader)
		if strings.HasPrefix(id, "queued-") {
			// The notifier's announcement of a push (the gallery shows it
			// from then on); a description of the manifest purges it.
			if e.Kind != feed.Queued || e.Registry != s.stack.RegistryHost {
				t.Errorf("invariant 7 (description stream): announcement %d for %s is a %s event naming the registry %s", seq, e.Ref(), e.Kind, e.Registry)
			}
			continue
		}
		if strings.HasPrefix(id, "found-") || strings.HasPrefix(id, "refused-") {
			// The reprocess's (run under another name of the registry): a
			// description found in the registry, or a manifest refused;
			// under the registry's configured name all the same.
			if e.Registry != s.stack.RegistryHost {
				t.Errorf("invariant 10 (one registry, one name): the reprocess's event %d for %s names the registry %s, not its configured name %s", seq, e.Ref(), e.Registry, s.stack.RegistryHost)
			}
			if e.Kind == feed.Refused {
				s.refusedEvents[e.Repository]++
			}
			continue
		}
		if e.Registry != s.stack.RegistryHost {
			t.Errorf("invariant 10 (one registry, one name): a worker's event %d for %s names the registry %s, not its configured name %s", seq, e.Ref(), e.Registry, s.stack.RegistryHost)
		}
		if e.Kind == feed.Refused {
			s.refusedEvents[e.Repository]++
		}
		var jobSeq uint64
		var n int
		if _, err := fmt.Sscanf(id, "desc-%d-%d", &jobSeq, &n); err != nil {
			t.Errorf("invariant 7 (description stream): event %d for %s has message id %q, not a job message's", seq, e.Ref(), id)
			continue
		}
		rs := bySeq[jobSeq]
		switch {
		case e.Kind == feed.Failed:
			// A job given up says so, with why, for the gallery.
			if len(rs) == 0 || rs[0].Outcome != queue.Failed {
				t.Errorf("invariant 7 (description stream): failure %d for %s comes from job seq %d, which did not fail: %v", seq, e.Ref(), jobSeq, rs)
			}
		case len(rs) == 0 || rs[0].Outcome == queue.Failed:
			t.Errorf("invariant 7 (description stream): event %d for %s comes from job seq %d, which did not end described: %v", seq, e.Ref(), jobSeq, rs)
		}
	}
	checked := 0
	for _, r := range results {
		if r.Outcome == queue.Described && r.Written != "" {
			checked++
			if !written[r.Written] {
				t.Errorf("invariant 7 (description stream): job seq %d (%s) wrote %s in %s mode, and no event names it", r.JobSeq, r.Job.Ref(), r.Written, r.Mode)
			}
		}
	}
	t.Logf("description stream: %d events name the %d writes of described jobs", info.State.Msgs, checked)
}

// auditDeadLetters checks the dead-letter stream past its retention: every
// failed job stored one dead letter (the stream's last sequence counts
// them, those dropped included), and the stream holds exactly the newest
// deadLetterKeep, each of a failed job, once.
func (s *soak) auditDeadLetters(ctx context.Context, t *testing.T, dead []queue.DeadLetter, failedSeqs map[uint64]bool) {
	st, err := s.stack.JS.Stream(ctx, queue.DeadStream)
	if err != nil {
		t.Fatalf("dead-letter stream: %v", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatalf("dead-letter stream: %v", err)
	}
	// A failed job stores one dead letter; one whose publish failed (see
	// deadCounter) may have stored two, when NATS restarted. (The audit
	// holds s.mu.)
	unacked := 0
	for seq := range s.deadUnacked {
		if failedSeqs[seq] {
			unacked++
		}
	}
	restarted := s.faults["NATS restarted"] > 0
	if !restarted {
		unacked = 0
	}
	if stored := info.State.LastSeq; stored < uint64(len(failedSeqs)) || stored > uint64(len(failedSeqs)+unacked) {
		t.Errorf("invariant 4 (dead letters): %d dead letters were stored, %d jobs failed: one each (%d publishes of them failed, NATS restarted: %v)",
			stored, len(failedSeqs), unacked, restarted)
	}
	keep := min(len(failedSeqs), deadLetterKeep)
	if len(dead) != keep {
		t.Errorf("invariant 4 (dead letters): the stream holds %d dead letters, its retention keeps the newest %d of %d", len(dead), keep, len(failedSeqs))
	}
	seen := map[uint64]bool{}
	for _, d := range dead {
		switch {
		case !failedSeqs[d.JobSeq]:
			t.Errorf("invariant 4 (dead letters): dead letter %d (job seq %d, %s) has no failed result for its job", d.Seq, d.JobSeq, d.Job.Ref())
		case seen[d.JobSeq]:
			t.Errorf("invariant 4 (dead letters): job seq %d (%s) has two dead letters", d.JobSeq, d.Job.Ref())
		case d.Seq+uint64(keep) <= info.State.LastSeq:
			t.Errorf("invariant 4 (dead letters): dead letter %d (job seq %d) is older than the newest %d the retention keeps (last %d)", d.Seq, d.JobSeq, keep, info.State.LastSeq)
		}
		seen[d.JobSeq] = true
	}
	t.Logf("dead letters: %d jobs failed, the stream keeps the newest %d, dropped %d", len(failedSeqs), len(dead), len(failedSeqs)-len(dead))
}

// auditRefused checks invariant 8: the text files pushed with a generic
// media type and the jobs that ended refused are one to one (by
// repository: each text file has its own), none of their jobs ended
// otherwise than refused or skipped, and each has one refusal on the
// description stream.
func (s *soak) auditRefused(t *testing.T, results []queue.Result) {
	texts := map[string]*artifact{}
	for _, a := range s.arts {
		if a.kind == "text" {
			texts[a.repo] = a
		}
	}
	refused := map[string]int{}
	for _, r := range results {
		a := texts[r.Job.Repository]
		switch {
		case r.Outcome == queue.Refused && a == nil:
			t.Errorf("invariant 8 (text files are refused): job seq %d (%s) ended refused, and no text file was pushed there: %s%s", r.JobSeq, r.Job.Ref(), s.describeResult(r), s.history(r.Job.Repository))
		case r.Outcome == queue.Refused:
			refused[a.repo]++
		case a != nil && r.Outcome != queue.Skipped:
			t.Errorf("invariant 8 (text files are refused): job seq %d of text file %s ended %s", r.JobSeq, a.ref(), s.describeResult(r))
		}
	}
	for repo, a := range texts {
		if refused[repo] == 0 {
			t.Errorf("invariant 8 (text files are refused): text file %s has no refused job%s", a.ref(), s.history(repo))
		}
		if n := s.refusedEvents[repo]; n != 1 {
			t.Errorf("invariant 8 (text files are refused): text file %s has %d refusals on the description stream, want 1", a.ref(), n)
		}
	}
	for repo, n := range s.refusedEvents {
		if texts[repo] == nil {
			t.Errorf("invariant 8 (text files are refused): %s has %d refusals on the description stream and no text file%s", repo, n, s.history(repo))
		}
	}
}

// auditIndex checks invariants 9 and 10 on the index that followed the
// description stream through the run: one current entry, by the soak's
// model, per photo pushed (each layer of each manifest, a replaced one's
// too, and each album child's) and nothing else; every repository under
// the registry's configured name, none under the name the reprocess used;
// each text file counted as refused. Then an index built from the stream
// anew must show the same.
func (s *soak) auditIndex(ctx context.Context, t *testing.T) {
	js, reg := s.stack.JS, s.stack.RegistryHost
	if err := s.index.Wait(ctx, js); err != nil {
		t.Fatalf("index: %v", err)
	}
	want := map[string]*artifact{} // repository@layer → its artifact
	child := map[string]bool{}     // the layers of album children
	texts, repoSet := map[string]int{}, map[string]bool{}
	var pages [][2]string
	for _, a := range s.arts {
		repoSet[a.repo] = true
		pages = append(pages, [2]string{a.repo, a.desc.Digest.String()})
		switch {
		case a.kind == "text":
			texts[a.repo]++
			continue
		case a.permanentFault():
			continue
		}
		for _, l := range a.layers {
			want[a.repo+"@"+l.String()] = a
		}
		for _, c := range a.children {
			for _, l := range c.layers {
				want[a.repo+"@"+l.String()] = a
				child[a.repo+"@"+l.String()] = true
				pages = append(pages, [2]string{a.repo, l.String()})
			}
		}
	}
	repos, err := s.index.Repositories(ctx)
	if err != nil {
		t.Fatalf("index: %v", err)
	}
	for _, r := range repos {
		if r.Registry != reg {
			t.Errorf("invariant 10 (one registry, one name): the index lists %s/%s (%d photos); the registry's name is %s", r.Registry, r.Repository, r.Photos, reg)
			continue
		}
		if r.Refused != texts[r.Repository] {
			t.Errorf("invariant 8 (text files are refused): the index counts %d manifests of %s that are not images, want %d", r.Refused, r.Repository, texts[r.Repository])
		}
	}
	q, err := index.ParseQuery("repo:soak/**")
	if err != nil {
		t.Fatalf("query: %v", err)
	}
	q.Limit = 10_000
	hits, _, err := s.index.Search(ctx, q)
	if err != nil {
		t.Fatalf("index: %v", err)
	}
	got, inAlbum := map[string][]string{}, map[string]int{}
	for _, h := range hits {
		if h.Registry != reg {
			t.Errorf("invariant 10 (one registry, one name): an entry of %s/%s@%s names the registry %s, not %s", h.Registry, h.Repository, h.Digest, h.Registry, reg)
		}
		key := h.Repository + "@" + h.Layer
		got[key] = append(got[key], fmt.Sprintf("%s by %s in %s", h.Digest[:19], h.Model, h.Stored))
		if h.Manifest != "" && h.Manifest != h.Digest {
			inAlbum[key]++
		}
		if want[key] == nil {
			t.Errorf("invariant 9 (one entry per photo): the index has an entry of %s/%s@%s (layer %s) by %s, which is no photo pushed%s", h.Registry, h.Repository, h.Digest, h.Layer, h.Model, s.history(h.Repository))
		}
	}
	for key, a := range want {
		es := got[key]
		if child[key] && len(es) == 2 && inAlbum[key] == 1 {
			// An album's child is pushed (by digest) before its album, and
			// its own job describes it as the manifest it is: the index
			// keys entries by the manifest that carries them, so search
			// lists it under its own manifest and under its album.
			continue
		}
		if len(es) != 1 || !strings.HasSuffix(strings.SplitN(es[0], " in ", 2)[0], " by "+s.model) {
			t.Errorf("invariant 9 (one entry per photo): photo %s of %s %s has %d entries in the index, want 1 by %s: %v%s", key, a.kind, a.ref(), len(es), s.model, es, s.history(a.repo))
		}
	}
	t.Logf("index: %d entries for the %d photos pushed, in %d repositories", len(hits), len(want), len(repos))

	// 9. An index built from the stream anew shows what the running one
	// shows.
	rebuilt, _ := stacktest.FollowIndex(t, js, index.Options{Registry: s.stack.Client.Canonical})
	if err := rebuilt.Wait(ctx, js); err != nil {
		t.Fatalf("rebuilt index: %v", err)
	}
	queries := []string{"repo:soak/**", "model:" + s.model, "tag:latest"}
	names := sortedKeys(repoSet)
	running, anew := stacktest.ViewIndex(t, s.index, reg, queries, pages, names), stacktest.ViewIndex(t, rebuilt, reg, queries, pages, names)
	for _, q := range queries {
		if d := diff(running.Hits[q], anew.Hits[q]); d != "" {
			t.Errorf("invariant 9 (a rebuilt index equals the running one): search %q: %s", q, d)
		}
	}
	for _, k := range sortedKeys(running.Pages) {
		if d := diff(running.Pages[k], anew.Pages[k]); d != "" {
			t.Errorf("invariant 9 (a rebuilt index equals the running one): photo page %s: %s", k, d)
		}
	}
	for _, k := range sortedKeys(running.Photos) {
		if d := diff(running.Photos[k], anew.Photos[k]); d != "" {
			t.Errorf("invariant 9 (a rebuilt index equals the running one): photos of %s: %s", k, d)
		}
	}
	if running.Count != anew.Count {
		t.Errorf("invariant 9 (a rebuilt index equals the running one): %d entries, rebuilt %d", running.Count, anew.Count)
	}
	again, err := rebuilt.Repositories(ctx)
	if err != nil {
		t.Fatalf("rebuilt index: %v", err)
	}
	if d := diff(repoLines(repos), repoLines(again)); d != "" {
		t.Errorf("invariant 9 (a rebuilt index equals the running one): repositories: %s", d)
	}
}

func repoLines(repos []index.Repository) []string {
	var out []string
	for _, r := range repos {
		out = append(out, fmt.Sprintf("%s/%s: %d photos, %d refused, latest %s", r.Registry, r.Repository, r.Photos, r.Refused, r.Latest.UTC().Format(time.RFC3339Nano)))
	}
	return out
}

// diff says what one list of lines has that the other lacks, in any
// order; "" when they hold the same lines.
func diff(running, rebuilt []string) string {
	count := map[string]int{}
	for _, l := range running {
		count[l]++
	}
	for _, l := range rebuilt {
		count[l]--
	}
	var only, extra []string
	for _, l := range sortedKeys(count) {
		switch n := count[l]; {
		case n > 0:
			only = append(only, l)
		case n < 0:
			extra = append(extra, l)
		}
	}
	if len(only) == 0 && len(extra) == 0 {
		return ""
	}
	return fmt.Sprintf("only in the running index: %q; only in the rebuilt one: %q", only, extra)
}
