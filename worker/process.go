package worker

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/regscribe/regscribe/internal/fault"
	"github.com/regscribe/regscribe/internal/feed"
	"github.com/regscribe/regscribe/internal/imageprep"
	"github.com/regscribe/regscribe/internal/lease"
	"github.com/regscribe/regscribe/internal/memo"
	"github.com/regscribe/regscribe/internal/metrics"
	"github.com/regscribe/regscribe/internal/photo"
	"github.com/regscribe/regscribe/internal/queue"
	"github.com/regscribe/regscribe/internal/registry"
	"github.com/regscribe/regscribe/internal/vision"
)

// Mode is how descriptions are written back.
type Mode string

// The write-back modes.
const (
	// ModeAnnotation re-pushes the manifest with annotations (new digest)
	// and moves the tag.
	ModeAnnotation Mode = "annotation"
	// ModeReferrer attaches a referrer artifact; the photo is untouched.
	ModeReferrer Mode = "referrer"
	// ModeAuto annotates plain photos and attaches a referrer to photos that
	// already have referrers or whose tag cannot move.
	ModeAuto Mode = "auto"
)

// Result says what processing one job did.
type Result struct {
	// Manifest is the descriptor of the manifest that was described.
	Manifest ocispec.Descriptor
	// Mode the description was written in.
	Mode Mode
	// Descriptions per image layer, in layer order (for an index: of all
	// children, in order).
	Descriptions []vision.Description
	// ModelCalls is how many descriptions came from the model (the rest
	// were remembered).
	ModelCalls int
	// Written is what the write-back did.
	Written registry.Written
	// Pruned lists older regscribe referrers removed.
	Pruned []ocispec.Descriptor
	// Removed is set when a deletion job found the manifest gone.
	Removed bool
	// Events are the description events of what the job wrote (or, for a
	// deletion, of the manifest gone), published when the job ends.
	Events []feed.Event
}

// Process describes the photo(s) of one job and writes the description back
// (a correction job writes the person's description instead, with no model
// call; a deletion job checks that the manifest is gone). It needs no
// queue: `regscribe describe` and tests call it directly; the events in its
// Result are published by [Worker.Run] when the job ends. Its error is
// classified with package fault; a job with nothing to do returns an error
// of kind skip.
func (w *Worker) Process(ctx context.Context, job queue.Job) (res Result, err error) {
	defer func() {
		// Search knows the registry by its configured name, whichever name
		// the job used.
		now, reg := time.Now().UTC(), w.registry.Canonical(job.Registry)
		for i := range res.Events {
			res.Events[i].Registry, res.Events[i].Repository, res.Events[i].At = reg, job.Repository, now
		}
	}()
	if job.Deleted {
		return w.processDeletion(ctx, job)
	}
	if ok, why := w.opts.Select.repository(job.Repository); !ok {
		return Result{}, fault.Skip("%s", why)
	}
	repo, err := w.registry.Repository(job.Registry, job.Repository)
	if err != nil {
		return Result{}, err
	}
	ref := job.Digest
	if ref == "" {
		ref = job.Tag
	}
	fetched := time.Now()
	m, err := w.registry.FetchManifest(ctx, repo, ref)
	w.metrics.Stage(metrics.StageFetch, fetched)
	if err != nil {
		return Result{}, err
	}
	t := task{tag: job.Tag, event: job.Event, policy: policyOf(job, w.opts.Force), correction: job.Correction}
	switch m.Descriptor.MediaType {
	case ocispec.MediaTypeImageManifest:
		return w.processManifest(ctx, repo, m, w.opts.Mode, t)
	case ocispec.MediaTypeImageIndex:
		return w.processIndex(ctx, repo, m, t)
	}
	return Result{Manifest: m.Descriptor}, fault.Skip("%s is %s, not an OCI image manifest or index", m.Descriptor.Digest, m.Descriptor.MediaType)
}

// task is what a job asks of a manifest.
type task struct {
	// tag moves to an annotated manifest when it still points at the original.
	tag string
	// event is the push's announcement (the job's Event).
	event  string
	policy photo.Policy
	// correction, when set, is written instead of asking the model.
	correction *queue.Correction
}

// policyOf is how far a job goes with a photo described already: a job
// forced by a person (reprocess --force, describe --force) replaces any
// description; REGSCRIBE_FORCE describes anew but stops at its own
// write-back and at a person's description; a replacing job (reprocess
// --missing) replaces another model's; a notification keeps what is there.
func policyOf(job queue.Job, forceAll bool) photo.Policy {
	switch {
	case job.Force, job.Correction != nil: // a correction replaces any description
		return photo.Forced
	case forceAll:
		return photo.Again
	case job.Replace:
		return photo.Replace
	}
	return photo.Keep
}

// candidate is a photo manifest a job may describe, with what decides it.
type candidate struct {
	m      registry.Manifest
	im     ocispec.Manifest
	photos []int
	// refs are all the manifest's referrers (a signature, an SBOM, a description).
	refs    []ocispec.Descriptor
	policy  photo.Policy
	verdict photo.Verdict
}

// inspect decides whether m is a photo to describe (package photo), after
// the selection. Its error is of kind skip when there is nothing to do; the
// candidate carries the referrers found even then.
func (w *Worker) inspect(ctx context.Context, repo *remote.Repository, m registry.Manifest, p photo.Policy) (candidate, error) {
	c := candidate{m: m, policy: p}
	im, err := registry.ParseImageManifest(m)
	if err != nil {
		return c, fault.Permanent(err)
	}
	c.im = im
	photos, why := photo.Layers(im)
	if photos == nil && photo.ToSniff(im) == nil {
		return c, fault.Skip("%s: %s", m.Descriptor.Digest, why)
	}
	if ok, why := w.opts.Select.manifest(im); !ok {
		return c, fault.Skip("%s: %s", m.Descriptor.Digest, why)
	}
	if photos == nil {
		if photos, err = w.sniff(ctx, repo, m, im); err != nil {
			return c, err
		}
	}
	c.photos = photos
	if c.refs, err = w.registry.Referrers(ctx, repo, m.Descriptor, ""); err != nil {
		return c, err
	}
	c.verdict = photo.Described(im.Annotations, c.refs, w.model.Model(), p)
	switch c.verdict.Action {
	case photo.Skip:
		if c.verdict.Who == w.model.Model() {
			return c, fault.Skip("%s: %s: %w", m.Descriptor.Digest, c.verdict.Reason, errSaidHere)
		}
		return c, fault.Skip("%s: %s", m.Descriptor.Digest, c.verdict.Reason)
	case photo.DescribeUnlessOwn:
		// The write-back's own notification must not start another round.
		if w.isOwnWrite(ctx, im, photos) {
			return c, fault.Skip("%s: already described by %s: its own write-back (%w)", m.Descriptor.Digest, c.verdict.Who, errSaidHere)
		}
	}
	return c, nil
}

// errSaidHere is why a job is skipped whose manifest its describer has
// described already (its own write-back, or an earlier job's).
var errSaidHere = errors.New("described by this describer already")

// sniff reads the first bytes of im's layers whose media types say
// nothing of what they hold, and returns those that are photos (package
// photo decides). When none is, the error is a skip that carries the
// refusal, why m is not an image.
func (w *Worker) sniff(ctx context.Context, repo *remote.Repository, m registry.Manifest, im ocispec.Manifest) ([]int, error) {
	photos, why, err := photo.Find(im, func(l ocispec.Descriptor) ([]byte, error) {
		return w.registry.FetchHead(ctx, repo, l, imageprep.SniffLen)
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", m.Descriptor.Digest, err)
	}
	if photos == nil {
		return nil, fault.Skip("%s: %w", m.Descriptor.Digest, &Refusal{Manifest: m.Descriptor, Reason: why})
	}
	return photos, nil
}

// Refusal is why a manifest whose layers say nothing of their content
// holds no photo, found by reading them: a job that ends with it is
// refused, visibly (a refused event on the description stream, a result
// of outcome refused, one log line), never silently skipped.
type Refusal struct {
	// Manifest is the manifest refused (an index, for an album none of
	// whose children holds a photo).
	Manifest ocispec.Descriptor
	// Reason says why, for the person who pushed it ("not an image: …").
	Reason string
}

func (r *Refusal) Error() string { return r.Reason }

// said is what is written for a candidate: descriptions of photo layers
// (indexes into im.Layers, in layer order) and who wrote them, the
// io.regscribe.model of the write.
type said struct {
	photos []int
	ds     []vision.Description
	by     string
	// several: the manifest holds more than one photo (each layer then
	// gets its own description).
	several bool
}

// descriptions returns what to write for c: the person's correction (with
// the other photos' descriptions kept), or the model's descriptions of each
// photo layer (remembered unless fresh), with the model calls made (also
// when it fails part way).
func (w *Worker) descriptions(ctx context.Context, repo *remote.Repository, c candidate, t task) (said, int, error) {
	if t.correction != nil {
		s, err := w.corrected(ctx, repo, c, *t.correction)
		return s, 0, err
	}
	s := said{photos: c.photos, by: w.model.Model(), several: len(c.photos) > 1}
	calls := 0
	for _, i := range c.photos {
		d, fromModel, err := w.describeLayer(ctx, repo, c.im.Layers[i], c.verdict.Fresh)
		if fromModel {
			calls++
		}
		if err != nil {
			return s, calls, err
		}
		s.ds = append(s.ds, d)
	}
	s.by = s.ds[0].Model
	return s, calls, nil
}

// processManifest describes one image manifest and writes the description
// in mode, moving t.tag (annotation mode) when it still points at m.
func (w *Worker) processManifest(ctx context.Context, repo *remote.Repository, m registry.Manifest, mode Mode, t task) (Result, error) {
	res := Result{Manifest: m.Descriptor}
	c, err := w.inspect(ctx, repo, m, t.policy)
	if err != nil {
		res.Events = refusedEvents(err, t.tag)
		if errors.Is(err, errSaidHere) {
			events, rerr := w.saidHere(ctx, repo, c, t.tag)
			if rerr != nil {
				return res, rerr
			}
			res.Events = events
		}
		return res, err
	}
	if mode == ModeAuto && len(c.refs) > 0 {
		mode = ModeReferrer
	}
	s, calls, err := w.descriptions(ctx, repo, c, t)
	res.Descriptions, res.ModelCalls = s.ds, calls
	if err != nil {
		return res, err
	}
	if mode != ModeReferrer {
		res.Mode = ModeAnnotation
		res.Written, err = w.writeAnnotation(ctx, repo, c, s, t)
		if err == nil {
			res.Events = []feed.Event{annotationEvent(m.Descriptor, res.Written, t.tag, s.by, photosOf(c, s, res.Written.Descriptor, "annotation"))}
		}
		if !(mode == ModeAuto && errors.Is(err, registry.ErrTagRefused)) {
			return res, err
		}
		w.log.Info("tag is immutable; attaching the description as a referrer instead", "repository", repo.Reference.Repository, "tag", t.tag)
	}
	res.Mode = ModeReferrer
	res.Written, res.Pruned, err = w.writeReferrer(ctx, repo, c, s, t)
	if err == nil {
		res.Events = []feed.Event{referrerEvent(m.Descriptor, w.tagOf(ctx, repo, t.tag, m.Descriptor), s.by, photosOf(c, s, m.Descriptor, "referrer "+res.Written.Descriptor.Digest.String()))}
	}
	return res, err
}

// writeAnnotation pushes c's manifest with the descriptions as annotations
// and moves tag to it when tag still points at c's manifest.
func (w *Worker) writeAnnotation(ctx context.Context, repo *remote.Repository, c candidate, s said, t task) (registry.Written, error) {
	edit := annotationEdit(c.im, s, !w.opts.NoImageDescription)
	if w.opts.Select.OptIn {
		k, _ := w.opts.Select.optIn()
		edit.Remove = append(edit.Remove, k)
	}
	started := time.Now()
	written, err := w.registry.WriteAnnotationOf(ctx, repo, c.m, edit, t.tag, t.event)
	w.metrics.Stage(metrics.StageWrite, started)
	return written, err
}

// writeReferrer attaches the descriptions to c's manifest as a referrer.
// A job that replaces descriptions (any policy but a notification's)
// removes the older regscribe referrers of models when Prune is set; a
// person's description is never pruned, and a correction prunes nothing
// (the models' descriptions stay beside it).
func (w *Worker) writeReferrer(ctx context.Context, repo *remote.Repository, c candidate, s said, t task) (registry.Written, []ocispec.Descriptor, error) {
	if w.opts.Locker != nil {
		held, unlock, err := w.opts.Locker.Lock(ctx, repo.Reference.Registry+"/"+repo.Reference.Repository+"@"+c.m.Descriptor.Digest.String())
		if err != nil {
			return registry.Written{}, nil, fault.Retry(err)
		}
		defer unlock()
		ctx = held
	}
	rec, ann := w.record(c.im, c.m.Descriptor, s)
	started := time.Now()
	written, err := w.registry.WriteReferrer(ctx, repo, c.m.Descriptor, rec, ann)
	w.metrics.Stage(metrics.StageWrite, started)
	if cause := context.Cause(ctx); errors.Is(cause, lease.ErrLost) {
		// Another worker may hold the photo's referrers now: try again
		// later rather than treat it as a shutdown.
		return written, nil, fault.Retry(cause)
	}
	if err != nil || !w.opts.Prune || c.policy == photo.Keep || t.correction != nil {
		return written, nil, err
	}
	var pruned []ocispec.Descriptor
	for _, old := range c.refs {
		if old.ArtifactType != registry.ArtifactTypeDescription || old.Digest == written.Descriptor.Digest ||
			photo.IsPerson(old.Annotations[registry.AnnotationModel]) {
			continue
		}
		if err := w.registry.Delete(ctx, repo, old); err != nil {
			w.log.Warn("could not prune an older description referrer", "referrer", old.Digest, "err", err)
			continue
		}
		pruned = append(pruned, old)
	}
	return written, pruned, nil
}

// processIndex describes each child manifest of an index that is a photo
// (a correction: the child holding the corrected layer).
// In referrer mode, and in auto mode when the index or any child has
// referrers (a signature would no longer match a re-pushed manifest), each
// child gets a referrer and the index is untouched. Otherwise each child is
// re-pushed with its annotations (by digest) and so is the index, pointing
// at the new children, and the tag moves to it; in auto mode, when the
// registry refuses to move the index's tag, the original children get
// referrers instead and the annotated children already pushed are left
// behind, untagged (logged). A referrer-mode event is the album's, and
// lists besides the photos written what the same describer says now of
// the other children (a person correcting one child after another).
func (w *Worker) processIndex(ctx context.Context, repo *remote.Repository, m registry.Manifest, t task) (Result, error) {
	res := Result{Manifest: m.Descriptor}
	var idx ocispec.Index
	if err := json.Unmarshal(m.Raw, &idx); err != nil {
		return res, fault.Permanent(fmt.Errorf("decode index %s: %w", m.Descriptor.Digest, err))
	}
	if t.correction != nil && t.correction.Layer == "" {
		return res, fault.Permanent(fmt.Errorf("correction of album %s names no layer: say which photo it describes", m.Descriptor.Digest))
	}
	mode := w.opts.Mode
	signed := false
	if mode == ModeAuto {
		refs, err := w.registry.Referrers(ctx, repo, m.Descriptor, "")
		if err != nil {
			return res, err
		}
		signed = len(refs) > 0
	}
	type child struct {
		at int
		c  candidate
		s  said
	}
	// todo are the children the job writes; others those it leaves as they
	// are, whose descriptions a referrer-mode event lists too.
	var todo, others []child
	var skips, refused []string
	holding := 0 // children that hold a photo
	for _, i := range photo.Children(idx) {
		d := idx.Manifests[i]
		cm, err := w.registry.FetchManifest(ctx, repo, d.Digest.String())
		if err != nil {
			return res, err
		}
		c, err := w.inspect(ctx, repo, cm, t.policy)
		signed = signed || len(c.refs) > 0
		if c.photos != nil {
			holding++
		}
		if r := (*Refusal)(nil); errors.As(err, &r) {
			refused = append(refused, fmt.Sprintf("child %s: %s", d.Digest, r.Reason))
		}
		if err == nil && t.correction != nil && !holds(c, t.correction.Layer) {
			others = append(others, child{at: i, c: c})
			continue // a correction changes the child with its photo only
		}
		if fault.Is(err, fault.KindSkip) {
			skips = append(skips, err.Error())
			others = append(others, child{at: i, c: c})
			continue
		}
		if err != nil {
			return res, fmt.Errorf("child %s of index %s: %w", d.Digest, m.Descriptor.Digest, err)
		}
		todo = append(todo, child{at: i, c: c})
	}
	if len(todo) == 0 && t.correction != nil {
		return res, fault.Permanent(fmt.Errorf("correction names layer %s, which is no photo of album %s", t.correction.Layer, m.Descriptor.Digest))
	}
	if len(todo) == 0 && holding == 0 && len(refused) > 0 {
		err := fault.Skip("index %s: %w", m.Descriptor.Digest, &Refusal{Manifest: m.Descriptor, Reason: "no child holds a photo: " + strings.Join(refused, "; ")})
		res.Events = refusedEvents(err, t.tag)
		return res, err
	}
	if len(todo) == 0 {
		return res, fault.Skip("index %s: no child to describe (%s)", m.Descriptor.Digest, strings.Join(skips, "; "))
	}
	by := ""
	for k := range todo {
		s, calls, err := w.descriptions(ctx, repo, todo[k].c, t)
		res.ModelCalls += calls
		if err != nil {
			return res, fmt.Errorf("child %s of index %s: %w", todo[k].c.m.Descriptor.Digest, m.Descriptor.Digest, err)
		}
		todo[k].s = s
		by = cmp.Or(by, s.by)
		res.Descriptions = append(res.Descriptions, s.ds...)
	}
	if mode == ModeAuto && signed {
		mode = ModeReferrer
	}
	if mode != ModeReferrer {
		edit := registry.Edit{Manifests: map[int]ocispec.Descriptor{}}
		var pushed []string
		var photos []feed.Photo
		for _, ch := range todo {
			written, err := w.writeAnnotation(ctx, repo, ch.c, ch.s, task{})
			if err != nil {
				return res, fmt.Errorf("child %s of index %s: %w", ch.c.m.Descriptor.Digest, m.Descriptor.Digest, err)
			}
			edit.Manifests[ch.at] = written.Descriptor
			pushed = append(pushed, written.Descriptor.Digest.String())
			photos = append(photos, photosOf(ch.c, ch.s, written.Descriptor, "annotation")...)
		}
		res.Mode = ModeAnnotation
		started := time.Now()
		var err error
		res.Written, err = w.registry.WriteAnnotationOf(ctx, repo, m, edit, t.tag, t.event)
		w.metrics.Stage(metrics.StageWrite, started)
		if err == nil {
			res.Events = []feed.Event{annotationEvent(m.Descriptor, res.Written, t.tag, by, photos)}
		}
		if !(mode == ModeAuto && errors.Is(err, registry.ErrTagRefused)) {
			return res, err
		}
		w.log.Warn("the index's tag is immutable; attaching each child's description as a referrer instead; the annotated children already pushed are left behind, untagged",
			"repository", repo.Reference.Repository, "tag", t.tag, "index", m.Descriptor.Digest, "left_behind", pushed)
		res.Written = registry.Written{}
	}
	res.Mode = ModeReferrer
	// The stream keeps one event of the album per describer, and search
	// takes it as all the describer says of the album: the event lists,
	// in album order, the photos written and what the same describer says
	// now of the other children (read first: a referrer that cannot be
	// read fails the job before it writes anything).
	photos := map[int][]feed.Photo{}
	for _, ch := range others {
		said, err := w.saysNow(ctx, repo, ch.c, by)
		if err != nil {
			return res, fmt.Errorf("child %s of index %s: %w", ch.c.m.Descriptor.Digest, m.Descriptor.Digest, err)
		}
		photos[ch.at] = said
	}
	for _, ch := range todo {
		written, pruned, err := w.writeReferrer(ctx, repo, ch.c, ch.s, t)
		res.Pruned = append(res.Pruned, pruned...)
		if err != nil {
			return res, fmt.Errorf("child %s of index %s: %w", ch.c.m.Descriptor.Digest, m.Descriptor.Digest, err)
		}
		photos[ch.at] = photosOf(ch.c, ch.s, ch.c.m.Descriptor, "referrer "+written.Descriptor.Digest.String())
	}
	var listed []feed.Photo
	for _, i := range photo.Children(idx) {
		listed = append(listed, photos[i]...)
	}
	res.Events = []feed.Event{referrerEvent(m.Descriptor, w.tagOf(ctx, repo, t.tag, m.Descriptor), by, listed)}
	return res, nil
}

// tagOf is the tag a referrer-mode event reports for subject: the job's,
// unless a later push to it was announced (that push's job reports it; a
// tag names one manifest in search).
func (w *Worker) tagOf(ctx context.Context, repo *remote.Repository, tag string, subject ocispec.Descriptor) string {
	if tag == "" || !w.registry.TagNames(ctx, repo, tag, subject) {
		return ""
	}
	return tag
}

// saysNow returns the descriptions describer by has of the photos of c,
// an album's child a job does not write, as the registry holds them: read
// by package photo from c's annotations and description referrers (those
// inspect listed; listed here when the selection left c out before
// inspect listed any), fetching only the records that may be by's and
// whose listed annotations do not say enough.
func (w *Worker) saysNow(ctx context.Context, repo *remote.Repository, c candidate, by string) ([]feed.Photo, error) {
	if photo.ReadBack(c.im, c.photos) == nil && photo.ToSniff(c.im) == nil {
		return nil, nil
	}
	refs := c.refs
	if c.photos == nil {
		var err error
		if refs, err = w.registry.Referrers(ctx, repo, c.m.Descriptor, registry.ArtifactTypeDescription); err != nil {
			return nil, err
		}
	}
	records := map[digest.Digest]registry.Record{}
	for _, r := range refs {
		// A referrer naming no model may be anyone's: its record says.
		if who := r.Annotations[registry.AnnotationModel]; !photo.RecordNeeded(c.im, c.photos, r) || who != "" && who != by {
			continue
		}
		rec, err := w.registry.FetchRecord(ctx, repo, r)
		switch {
		case fault.Is(err, fault.KindSkip):
			continue // gone since it was listed: no longer a description of c
		case err != nil:
			return nil, fmt.Errorf("read description referrer %s: %w", r.Digest, err)
		}
		records[r.Digest] = rec
	}
	for _, f := range photo.Descriptions(c.m.Descriptor.Digest.String(), c.im, c.photos, refs, records) {
		if f.By == by {
			return f.Photos, nil
		}
	}
	return nil, nil
}

// isOwnWrite reports whether the manifest's description is exactly what
// this model and prompt produced for its photos (remembered).
func (w *Worker) isOwnWrite(ctx context.Context, im ocispec.Manifest, photos []int) bool {
	if im.Annotations[registry.AnnotationModel] != w.model.Model() {
		return false
	}
	var ds []vision.Description
	for _, i := range photos {
		d, ok, err := w.memory.Get(ctx, w.memoKey(im.Layers[i]))
		if err != nil || !ok {
			return false
		}
		ds = append(ds, d)
	}
	want := annotationEdit(im, said{photos: photos, ds: ds, by: ds[0].Model, several: len(photos) > 1}, false).Manifest
	return want[registry.AnnotationDescription] == im.Annotations[registry.AnnotationDescription] &&
		want[registry.AnnotationCreated] == im.Annotations[registry.AnnotationCreated]
}

func (w *Worker) memoKey(layer ocispec.Descriptor) memo.Key {
	return memo.Key{Blob: layer.Digest.String(), Model: w.model.Model(), Prompt: w.model.PromptDigest()}
}

// describeLayer returns the description of one image layer: remembered
// (unless fresh), or from the model (once per process for concurrent jobs
// of the same blob). The memory is read once, inside the flight: a job for
// the same blob that finished just before is found there, and jobs that
// come while a flight runs share its answer.
func (w *Worker) describeLayer(ctx context.Context, repo *remote.Repository, layer ocispec.Descriptor, fresh bool) (vision.Description, bool, error) {
	key := w.memoKey(layer)
	type answer struct {
		d         vision.Description
		fromModel bool
	}
	// singleflight runs the function of one caller only and tells every
	// caller, that one too, that the result was shared: the call is counted
	// by the caller whose function ran.
	ran := false
	v, err, _ := w.flights.Do(key.String(), func() (any, error) {
		ran = true
		if !fresh {
			if d, ok, err := w.memory.Get(ctx, key); err != nil {
				return nil, fault.Retry(err)
			} else if ok {
				return answer{d, false}, nil
			}
		}
		photo, err := w.fetchAndPrepare(ctx, repo, layer)
		if err != nil {
			return nil, err
		}
		started := time.Now()
		d, err := w.model.Describe(ctx, vision.Image{Data: photo.Data, MediaType: photo.MediaType})
		w.metrics.Stage(metrics.StageModel, started)
		if err != nil {
			return nil, err
		}
		w.metrics.Tokens(d.Usage.PromptTokens, d.Usage.OutputTokens)
		w.log.Debug("model answered", "blob", layer.Digest, "model", d.Model, "latency", d.Usage.Latency,
			"prompt_tokens", d.Usage.PromptTokens, "output_tokens", d.Usage.OutputTokens, "converted", photo.Reason)
		usage := d.Usage
		if fresh {
			err = w.memory.Replace(ctx, key, d)
		} else {
			d, err = w.memory.Remember(ctx, key, d)
		}
		if err != nil {
			// Without the memo, concurrent workers may write different
			// descriptions of this photo: retry rather than risk two.
			return nil, fault.Retry(fmt.Errorf("remember description of %s: %w", layer.Digest, err))
		}
		d.Usage = usage
		return answer{d, true}, nil
	})
	if err != nil {
		return vision.Description{}, false, err
	}
	a := v.(answer)
	return a.d, a.fromModel && ran, nil
}

// annotationEdit builds the annotations for the described layers: a
// manifest with one photo has its description on the manifest; several put
// each on its layer (with the layer's own io.regscribe.model where it is
// not the write's, as a photo another describer described keeps) and the
// manifest gets them joined in layer order, each after its title. With
// imageDescription, the manifest's org.opencontainers.image.description is
// set to the same text unless the pusher set one of their own.
func annotationEdit(im ocispec.Manifest, s said, imageDescription bool) registry.Edit {
	e := registry.Edit{Manifest: manifestAnnotations(im, s)}
	if imageDescription && ownsImageDescription(im.Annotations) {
		e.Manifest[ocispec.AnnotationDescription] = e.Manifest[registry.AnnotationDescription]
	}
	e.Remove = stale(im.Annotations, e.Manifest)
	if !s.several {
		return e
	}
	e.Layers = map[int]map[string]string{}
	e.LayerRemove = map[int][]string{}
	for n, i := range s.photos {
		e.Layers[i] = fields(s.ds[n])
		if s.ds[n].Model != s.by {
			e.Layers[i][registry.AnnotationModel] = s.ds[n].Model
		}
		e.LayerRemove[i] = stale(im.Layers[i].Annotations, e.Layers[i])
	}
	return e
}

// optional are the annotations a description may leave out: a new
// description without them must not keep the old description's.
var optional = []string{registry.AnnotationAlt, registry.AnnotationKeywords, registry.AnnotationText, registry.AnnotationModel}

// stale returns the optional annotations old has that set does not: what
// an earlier description left that the new one does not say.
func stale(old, set map[string]string) []string {
	var out []string
	for _, k := range optional {
		if _, keep := set[k]; !keep && old[k] != "" {
			out = append(out, k)
		}
	}
	return out
}

// ownsImageDescription reports whether a write-back may set the manifest's
// org.opencontainers.image.description: it has none, or it holds regscribe's
// own description (a copy of io.regscribe.description, which a new
// description replaces). One the pusher set is never overwritten. The
// decision depends on the manifest only, so every job of one photo writes
// the same bytes.
func ownsImageDescription(ann map[string]string) bool {
	own := ann[ocispec.AnnotationDescription]
	return own == "" || own == ann[registry.AnnotationDescription]
}

// manifestAnnotations are the io.regscribe.* annotations of a described manifest.
func manifestAnnotations(im ocispec.Manifest, s said) map[string]string {
	var created time.Time
	for _, d := range s.ds {
		if d.Created.After(created) {
			created = d.Created
		}
	}
	a := map[string]string{}
	if !s.several {
		a = fields(s.ds[0])
	} else {
		var joined []string
		for n, i := range s.photos {
			joined = append(joined, title(im.Layers[i], n)+": "+s.ds[n].Text)
		}
		a[registry.AnnotationDescription] = strings.Join(joined, "\n")
	}
	a[registry.AnnotationModel] = s.by
	a[registry.AnnotationCreated] = created.UTC().Format(time.RFC3339)
	return a
}

// record builds the referrer record and manifest annotations. A person's
// record names no prompt.
func (w *Worker) record(im ocispec.Manifest, subject ocispec.Descriptor, s said) (registry.Record, map[string]string) {
	ann := manifestAnnotations(im, s)
	if !w.opts.NoImageDescription {
		ann[ocispec.AnnotationDescription] = ann[registry.AnnotationDescription]
	}
	created, _ := time.Parse(time.RFC3339, ann[registry.AnnotationCreated])
	rec := registry.Record{Subject: subject.Digest.String(), Model: s.by, Created: created}
	if !photo.IsPerson(s.by) {
		rec.PromptDigest = w.model.PromptDigest()
	}
	for n, i := range s.photos {
		p := registry.PhotoRecord{
			Layer: im.Layers[i].Digest.String(), Title: im.Layers[i].Annotations[ocispec.AnnotationTitle],
			Description: s.ds[n].Text, Alt: s.ds[n].Alt, Keywords: s.ds[n].Keywords, Text: s.ds[n].VisibleText,
		}
		if s.ds[n].Model != s.by {
			p.Model = s.ds[n].Model
		}
		rec.Photos = append(rec.Photos, p)
	}
	return rec, ann
}

func title(layer ocispec.Descriptor, n int) string {
	if t := layer.Annotations[ocispec.AnnotationTitle]; t != "" {
		return t
	}
	return fmt.Sprintf("photo %d", n+1)
}

func fields(d vision.Description) map[string]string {
	f := map[string]string{registry.AnnotationDescription: d.Text}
	if d.Alt != "" {
		f[registry.AnnotationAlt] = d.Alt
	}
	if len(d.Keywords) > 0 {
		f[registry.AnnotationKeywords] = strings.Join(d.Keywords, ", ")
	}
	if d.VisibleText != "" {
		f[registry.AnnotationText] = d.VisibleText
	}
	return f
}
