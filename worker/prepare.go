package worker

import (
	"context"
	"fmt"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/semaphore"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/regscribe/regscribe/internal/imageprep"
	"github.com/regscribe/regscribe/internal/metrics"
)

// preparing bounds the memory photos take before the model sees them: the
// bytes of blobs fetched and not yet prepared (a budget shared by all jobs),
// and the photos prepared at once (decoding a 12 MP JPEG and scaling it
// takes about 45 MB and a core for a quarter second). Both are released as
// soon as the photo is prepared, before the model call.
type preparing struct {
	bytes   *semaphore.Weighted
	budget  int64
	decodes chan struct{}
}

func newPreparing(budget int64, decodes int) *preparing {
	return &preparing{bytes: semaphore.NewWeighted(budget), budget: budget, decodes: make(chan struct{}, decodes)}
}

// fetchAndPrepare fetches an image layer and prepares it for the model,
// within the limits of w.preparing.
func (w *Worker) fetchAndPrepare(ctx context.Context, repo *remote.Repository, layer ocispec.Descriptor) (imageprep.Photo, error) {
	p := w.preparing
	n := min(max(layer.Size, 1), p.budget) // a blob over the budget waits for all of it
	if err := p.bytes.Acquire(ctx, n); err != nil {
		return imageprep.Photo{}, err
	}
	defer p.bytes.Release(n)
	started := time.Now()
	data, err := w.registry.FetchBlob(ctx, repo, layer, w.opts.MaxBlobBytes)
	w.metrics.Stage(metrics.StageFetch, started)
	if err != nil {
		return imageprep.Photo{}, err
	}
	select {
	case p.decodes <- struct{}{}:
	case <-ctx.Done():
		return imageprep.Photo{}, ctx.Err()
	}
	defer func() { <-p.decodes }()
	started = time.Now()
	photo, err := imageprep.PrepareContext(ctx, data, w.opts.Image)
	w.metrics.Stage(metrics.StagePrepare, started)
	if err != nil {
		return imageprep.Photo{}, fmt.Errorf("photo %s: %w", layer.Digest, err)
	}
	return photo, nil
}
