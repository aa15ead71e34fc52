package worker

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/regscribe/regscribe/internal/fault"
	"github.com/regscribe/regscribe/internal/imageprep"
	"github.com/regscribe/regscribe/internal/memo"
	"github.com/regscribe/regscribe/internal/queue"
	"github.com/regscribe/regscribe/internal/registry"
	"github.com/regscribe/regscribe/internal/vision"
)

// ImageMediaTypes are the layer media types regscribe treats as photos.
var ImageMediaTypes = []string{"image/jpeg", "image/png", "image/webp", "image/gif"}

// Result says what processing one job did.
type Result struct {
	// Manifest is the descriptor of the manifest that was described.
	Manifest ocispec.Descriptor
	// Descriptions per image layer, in layer order.
	Descriptions []vision.Description
	// ModelCalls is how many descriptions came from the model (the rest
	// were remembered).
	ModelCalls int
	// Written is what the write-back did.
	Written registry.Written
}

// Process describes the photo(s) of one job and writes the description back.
// It needs no queue: `regscribe describe` and tests call it directly. Its
// error is classified with package fault; a job with nothing to do returns
// an error of kind skip.
func (w *Worker) Process(ctx context.Context, job queue.Job) (Result, error) {
	repo, err := w.registry.Repository(job.Registry, job.Repository)
	if err != nil {
		return Result{}, err
	}
	ref := job.Digest
	if ref == "" {
		ref = job.Tag
	}
	m, err := w.registry.FetchManifest(ctx, repo, ref)
	if err != nil {
		return Result{}, err
	}
	res := Result{Manifest: m.Descriptor}
	if m.Descriptor.MediaType != ocispec.MediaTypeImageManifest {
		return res, fault.Skip("%s is %s, not an OCI image manifest", m.Descriptor.Digest, m.Descriptor.MediaType)
	}
	im, err := registry.ParseImageManifest(m)
	if err != nil {
		return res, fault.Permanent(err)
	}
	if by := im.Annotations[registry.AnnotationModel]; im.Annotations[registry.AnnotationDescription] != "" && !job.Force {
		return res, fault.Skip("%s already has a description by %s", m.Descriptor.Digest, by)
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
	for _, i := range photos {
		d, fromModel, err := w.describeLayer(ctx, repo, im.Layers[i])
		if err != nil {
			return res, err
		}
		if fromModel {
			res.ModelCalls++
		}
		res.Descriptions = append(res.Descriptions, d)
	}
	edit := annotationEdit(im, photos, res.Descriptions)
	res.Written, err = w.registry.WriteAnnotation(ctx, repo, m, edit, job.Tag)
	if err != nil {
		return res, err
	}
	log := w.log.With("repository", job.Repository, "digest", m.Descriptor.Digest, "described", res.Written.Descriptor.Digest,
		"photos", len(photos), "model_calls", res.ModelCalls)
	switch {
	case job.Tag == "":
		log.Info("photo described; pushed by digest, so no tag moved")
	case res.Written.TagMovedOn:
		log.Info("photo described; tag left alone, a newer push owns it", "tag", job.Tag)
	default:
		log.Info("photo described", "tag", job.Tag)
	}
	return res, nil
}

// describeLayer returns the description of one image layer: remembered, or
// from the model (once per process for concurrent jobs of the same blob).
func (w *Worker) describeLayer(ctx context.Context, repo *remote.Repository, layer ocispec.Descriptor) (vision.Description, bool, error) {
	key := memo.Key{Blob: layer.Digest.String(), Model: w.model.Model(), Prompt: w.model.PromptDigest()}
	if d, ok, err := w.memory.Get(ctx, key); err != nil {
		return d, false, fault.Retry(err)
	} else if ok {
		return d, false, nil
	}
	type answer struct {
		d         vision.Description
		fromModel bool
	}
	v, err, shared := w.flights.Do(key.String(), func() (any, error) {
		// A job for the same blob may have finished between Get and Do.
		if d, ok, err := w.memory.Get(ctx, key); err == nil && ok {
			return answer{d, false}, nil
		}
		data, err := w.registry.FetchBlob(ctx, repo, layer, w.opts.MaxBlobBytes)
		if err != nil {
			return nil, err
		}
		photo, err := imageprep.Prepare(data, w.opts.Image)
		if err != nil {
			return nil, fmt.Errorf("photo %s: %w", layer.Digest, err)
		}
		d, err := w.model.Describe(ctx, vision.Image{Data: photo.Data, MediaType: photo.MediaType})
		if err != nil {
			return nil, err
		}
		w.log.Debug("model answered", "blob", layer.Digest, "model", d.Model, "latency", d.Usage.Latency,
			"prompt_tokens", d.Usage.PromptTokens, "output_tokens", d.Usage.OutputTokens, "converted", photo.Reason)
		if err := w.memory.Put(ctx, key, d); err != nil {
			// The description is good; losing the memo only costs a later model call.
			w.log.Warn("could not remember description", "blob", layer.Digest, "err", err)
		}
		return answer{d, true}, nil
	})
	if err != nil {
		return vision.Description{}, false, err
	}
	a := v.(answer)
	return a.d, a.fromModel && !shared, nil
}

// annotationEdit builds the annotations for the described layers: one photo
// puts its description on the manifest; several put each on its layer and
// the manifest gets them joined in layer order, each after its title.
func annotationEdit(im ocispec.Manifest, photos []int, ds []vision.Description) registry.Edit {
	e := registry.Edit{Manifest: map[string]string{}}
	var created time.Time
	for _, d := range ds {
		if d.Created.After(created) {
			created = d.Created
		}
	}
	e.Manifest[registry.AnnotationModel] = ds[0].Model
	e.Manifest[registry.AnnotationCreated] = created.UTC().Format(time.RFC3339)
	if len(ds) == 1 {
		for k, v := range fields(ds[0]) {
			e.Manifest[k] = v
		}
		return e
	}
	e.Layers = map[int]map[string]string{}
	var joined []string
	for n, i := range photos {
		e.Layers[i] = fields(ds[n])
		title := im.Layers[i].Annotations[ocispec.AnnotationTitle]
		if title == "" {
			title = fmt.Sprintf("photo %d", n+1)
		}
		joined = append(joined, title+": "+ds[n].Text)
	}
	e.Manifest[registry.AnnotationDescription] = strings.Join(joined, "\n")
	return e
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
