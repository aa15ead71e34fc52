package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/regscribe/regscribe/internal/fault"
	"github.com/regscribe/regscribe/internal/memo"
	"github.com/regscribe/regscribe/internal/metrics"
	"github.com/regscribe/regscribe/internal/queue"
	"github.com/regscribe/regscribe/internal/registry"
	"github.com/regscribe/regscribe/internal/vision"
)

// ImageMediaTypes are the layer media types regscribe treats as photos.
var ImageMediaTypes = []string{"image/jpeg", "image/png", "image/webp", "image/gif"}

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
}

// Process describes the photo(s) of one job and writes the description back.
// It needs no queue: `regscribe describe` and tests call it directly. Its
// error is classified with package fault; a job with nothing to do returns
// an error of kind skip.
func (w *Worker) Process(ctx context.Context, job queue.Job) (Result, error) {
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
	f := forcing{any: job.Force || w.opts.Force, job: job.Force}
	switch m.Descriptor.MediaType {
	case ocispec.MediaTypeImageManifest:
		return w.processManifest(ctx, repo, m, job.Tag, w.opts.Mode, f)
	case ocispec.MediaTypeImageIndex:
		return w.processIndex(ctx, repo, m, job.Tag, f)
	}
	return Result{Manifest: m.Descriptor}, fault.Skip("%s is %s, not an OCI image manifest or index", m.Descriptor.Digest, m.Descriptor.MediaType)
}

// forcing says whether a photo is described again although described: any
// is REGSCRIBE_FORCE or the job's flag; job is the job's own flag (a person
// asked for this photo: reprocess --force, describe --force).
type forcing struct{ any, job bool }

// processManifest describes one image manifest and writes the description
// in mode, moving tag (annotation mode) when it still points at m.
func (w *Worker) processManifest(ctx context.Context, repo *remote.Repository, m registry.Manifest, tag string, mode Mode, f forcing) (Result, error) {
	res := Result{Manifest: m.Descriptor}
	force := f.any
	im, err := registry.ParseImageManifest(m)
	if err != nil {
		return res, fault.Permanent(err)
	}
	if im.ArtifactType == registry.ArtifactTypeDescription {
		return res, fault.Skip("%s is a regscribe description", m.Descriptor.Digest)
	}
	if ok, why := w.opts.Select.manifest(im); !ok {
		return res, fault.Skip("%s: %s", m.Descriptor.Digest, why)
	}
	var photos []int
	for i, l := range im.Layers {
		if slices.Contains(ImageMediaTypes, l.MediaType) {
			photos = append(photos, i)
		}
	}
	if len(photos) == 0 {
		return res, fault.Skip("%s has no image layer", m.Descriptor.Digest)
	}
	if im.Annotations[registry.AnnotationDescription] != "" {
		// The manifest carries a description: our own write-back, or an
		// earlier one. Under REGSCRIBE_FORCE, describe again unless it is
		// exactly what this model just wrote: the write-back's own
		// notification must not start another round. A job forced by a
		// person describes again regardless; its write-back's job is not
		// forced, so it stops there.
		if !force || (!f.job && w.isOwnWrite(ctx, im, photos)) {
			return res, fault.Skip("%s already has a description by %s", m.Descriptor.Digest, im.Annotations[registry.AnnotationModel])
		}
	}
	var ours []ocispec.Descriptor
	if mode != ModeAnnotation {
		refs, err := w.registry.Referrers(ctx, repo, m.Descriptor, "")
		if err != nil {
			return res, err
		}
		for _, r := range refs {
			if r.ArtifactType != registry.ArtifactTypeDescription {
				continue
			}
			ours = append(ours, r)
			if !force && r.Annotations[registry.AnnotationModel] == w.model.Model() {
				return res, fault.Skip("%s already has a description referrer %s by %s", m.Descriptor.Digest, r.Digest, w.model.Model())
			}
		}
		if mode == ModeAuto && len(refs) > 0 {
			mode = ModeReferrer
		}
	}
	for _, i := range photos {
		d, fromModel, err := w.describeLayer(ctx, repo, im.Layers[i], force)
		if err != nil {
			return res, err
		}
		if fromModel {
			res.ModelCalls++
		}
		res.Descriptions = append(res.Descriptions, d)
	}
	if mode != ModeReferrer {
		edit := annotationEdit(im, photos, res.Descriptions)
		if w.opts.Select.OptIn {
			k, _ := w.opts.Select.optIn()
			edit.Remove = []string{k}
		}
		res.Mode = ModeAnnotation
		started := time.Now()
		res.Written, err = w.registry.WriteAnnotation(ctx, repo, m, edit, tag)
		w.metrics.Stage(metrics.StageWrite, started)
		if !(mode == ModeAuto && errors.Is(err, registry.ErrTagRefused)) {
			return res, err
		}
		w.log.Info("tag is immutable; attaching the description as a referrer instead", "repository", repo.Reference.Repository, "tag", tag)
	}
	res.Mode = ModeReferrer
	if w.opts.Locker != nil {
		unlock, err := w.opts.Locker.Lock(ctx, repo.Reference.Registry+"/"+repo.Reference.Repository+"@"+m.Descriptor.Digest.String())
		if err != nil {
			return res, fault.Retry(err)
		}
		defer unlock()
	}
	rec, ann := w.record(im, m.Descriptor, photos, res.Descriptions)
	started := time.Now()
	res.Written, err = w.registry.WriteReferrer(ctx, repo, m.Descriptor, rec, ann)
	w.metrics.Stage(metrics.StageWrite, started)
	if err != nil {
		return res, err
	}
	if force && w.opts.Prune {
		for _, old := range ours {
			if old.Digest == res.Written.Descriptor.Digest {
				continue
			}
			if err := w.registry.Delete(ctx, repo, old); err != nil {
				w.log.Warn("could not prune an older description referrer", "referrer", old.Digest, "err", err)
				continue
			}
			res.Pruned = append(res.Pruned, old)
		}
	}
	return res, nil
}

// processIndex describes each child manifest of an index that has image
// layers. In referrer mode (and in auto mode when the index has referrers)
// each child gets a referrer and the index is untouched; otherwise each
// child is re-pushed with its annotations and so is the index, pointing at
// the new children, and the tag moves to it.
func (w *Worker) processIndex(ctx context.Context, repo *remote.Repository, m registry.Manifest, tag string, f forcing) (Result, error) {
	res := Result{Manifest: m.Descriptor}
	var idx ocispec.Index
	if err := json.Unmarshal(m.Raw, &idx); err != nil {
		return res, fault.Permanent(fmt.Errorf("decode index %s: %w", m.Descriptor.Digest, err))
	}
	mode := w.opts.Mode
	if mode == ModeAuto {
		refs, err := w.registry.Referrers(ctx, repo, m.Descriptor, "")
		if err != nil {
			return res, err
		}
		if len(refs) > 0 {
			mode = ModeReferrer
		}
	}
	childMode := mode
	if mode == ModeAuto {
		childMode = ModeAnnotation // the index is rewritten to point at the annotated children
	}
	replaced := map[int]ocispec.Descriptor{}
	var skips []string
	for i, child := range idx.Manifests {
		if child.MediaType != ocispec.MediaTypeImageManifest {
			continue
		}
		cm, err := w.registry.FetchManifest(ctx, repo, child.Digest.String())
		if err != nil {
			return res, err
		}
		cr, err := w.processManifest(ctx, repo, cm, "", childMode, f)
		if fault.Is(err, fault.KindSkip) {
			skips = append(skips, err.Error())
			continue
		}
		if err != nil {
			return res, fmt.Errorf("child %s of index %s: %w", child.Digest, m.Descriptor.Digest, err)
		}
		res.Descriptions = append(res.Descriptions, cr.Descriptions...)
		res.ModelCalls += cr.ModelCalls
		res.Mode = cr.Mode
		if cr.Mode == ModeAnnotation {
			replaced[i] = cr.Written.Descriptor
		}
	}
	if len(res.Descriptions) == 0 {
		return res, fault.Skip("index %s: no child to describe (%s)", m.Descriptor.Digest, strings.Join(skips, "; "))
	}
	if len(replaced) == 0 {
		return res, nil
	}
	edit := registry.Edit{Manifests: map[int]ocispec.Descriptor{}}
	for i, d := range replaced {
		edit.Manifests[i] = d
	}
	var err error
	res.Written, err = w.registry.WriteAnnotation(ctx, repo, m, edit, tag)
	return res, err
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
	want := annotationEdit(im, photos, ds).Manifest
	return want[registry.AnnotationDescription] == im.Annotations[registry.AnnotationDescription] &&
		want[registry.AnnotationCreated] == im.Annotations[registry.AnnotationCreated]
}

func (w *Worker) memoKey(layer ocispec.Descriptor) memo.Key {
	return memo.Key{Blob: layer.Digest.String(), Model: w.model.Model(), Prompt: w.model.PromptDigest()}
}

// describeLayer returns the description of one image layer: remembered
// (unless force), or from the model (once per process for concurrent jobs
// of the same blob).
func (w *Worker) describeLayer(ctx context.Context, repo *remote.Repository, layer ocispec.Descriptor, force bool) (vision.Description, bool, error) {
	key := w.memoKey(layer)
	if !force {
		if d, ok, err := w.memory.Get(ctx, key); err != nil {
			return d, false, fault.Retry(err)
		} else if ok {
			return d, false, nil
		}
	}
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
		// A job for the same blob may have finished between Get and Do.
		if !force {
			if d, ok, err := w.memory.Get(ctx, key); err == nil && ok {
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
		if force {
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

// annotationEdit builds the annotations for the described layers: one photo
// puts its description on the manifest; several put each on its layer and
// the manifest gets them joined in layer order, each after its title.
func annotationEdit(im ocispec.Manifest, photos []int, ds []vision.Description) registry.Edit {
	e := registry.Edit{Manifest: manifestAnnotations(im, photos, ds)}
	if len(ds) == 1 {
		return e
	}
	e.Layers = map[int]map[string]string{}
	for n, i := range photos {
		e.Layers[i] = fields(ds[n])
	}
	return e
}

// manifestAnnotations are the io.regscribe.* annotations of a described manifest.
func manifestAnnotations(im ocispec.Manifest, photos []int, ds []vision.Description) map[string]string {
	var created time.Time
	for _, d := range ds {
		if d.Created.After(created) {
			created = d.Created
		}
	}
	a := map[string]string{}
	if len(ds) == 1 {
		a = fields(ds[0])
	} else {
		var joined []string
		for n, i := range photos {
			joined = append(joined, title(im.Layers[i], n)+": "+ds[n].Text)
		}
		a[registry.AnnotationDescription] = strings.Join(joined, "\n")
	}
	a[registry.AnnotationModel] = ds[0].Model
	a[registry.AnnotationCreated] = created.UTC().Format(time.RFC3339)
	return a
}

// record builds the referrer record and manifest annotations.
func (w *Worker) record(im ocispec.Manifest, subject ocispec.Descriptor, photos []int, ds []vision.Description) (registry.Record, map[string]string) {
	ann := manifestAnnotations(im, photos, ds)
	created, _ := time.Parse(time.RFC3339, ann[registry.AnnotationCreated])
	rec := registry.Record{Subject: subject.Digest.String(), Model: ds[0].Model, PromptDigest: w.model.PromptDigest(), Created: created}
	for n, i := range photos {
		rec.Photos = append(rec.Photos, registry.PhotoRecord{
			Layer: im.Layers[i].Digest.String(), Title: im.Layers[i].Annotations[ocispec.AnnotationTitle],
			Description: ds[n].Text, Alt: ds[n].Alt, Keywords: ds[n].Keywords,
		})
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
	return f
}
