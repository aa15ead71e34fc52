package worker

import (
	"context"
	"errors"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/regscribe/regscribe/internal/fault"
	"github.com/regscribe/regscribe/internal/feed"
	"github.com/regscribe/regscribe/internal/photo"
	"github.com/regscribe/regscribe/internal/queue"
	"github.com/regscribe/regscribe/internal/registry"
)

// Feed puts description events on the description stream (package feed).
type Feed interface {
	// Publish stores e; id is its message id (publishing one id again
	// within the stream's duplicate window stores nothing new).
	Publish(ctx context.Context, e feed.Event, id string) (uint64, error)
	// Fill stores e only where it adds something: the stream holds no
	// event of its manifest and describer, or an older one.
	Fill(ctx context.Context, e feed.Event, id string) (bool, error)
}

// fills reports whether e is published with [Feed.Fill]: an event that
// names no tag and says what the stream may hold already (a job by digest
// of a manifest a job by tag described too, or a description found in the
// registry) must not bury the tags of the event it repeats, as the stream
// keeps one event per manifest and describer.
func fills(e feed.Event) bool {
	return e.Kind == feed.Found || e.Kind == feed.Written && len(e.Tags) == 0
}

// saidHere is the event of a job that found c's manifest described by its
// describer already (its own write-back, or an earlier job's): what the
// registry holds, so that a job that ended before it published its event
// (and is delivered again) still puts it on the stream. It is published
// with [Feed.Fill]: nothing when the stream has it. A referrer whose record
// cannot be read is an error (the job is tried again).
func (w *Worker) saidHere(ctx context.Context, repo *remote.Repository, c candidate, tag string) ([]feed.Event, error) {
	by := w.model.Model()
	found, err := photo.Read(ctx, c.m.Descriptor.Digest.String(), c.im, c.photos, c.refs, func(ctx context.Context, r ocispec.Descriptor) (registry.Record, error) {
		return w.registry.FetchRecord(ctx, repo, r)
	})
	if err != nil {
		return nil, err
	}
	for _, f := range found {
		if f.By != by {
			continue
		}
		e := feed.Event{Kind: feed.Found, Digest: c.m.Descriptor.Digest.String(), By: f.By, Photos: f.Photos}
		if tag = w.tagOf(ctx, repo, tag, c.m.Descriptor); tag != "" {
			e.Tags = []string{tag}
		}
		return []feed.Event{e}, nil
	}
	return nil, nil
}

var _ Feed = (*feed.Publisher)(nil)

// photosOf are the event photos of what s says about c's photos, carried by
// the manifest carrier (the annotated manifest, or c's own for a referrer)
// and stored as stored ("annotation" or "referrer sha256:…").
func photosOf(c candidate, s said, carrier ocispec.Descriptor, stored string) []feed.Photo {
	out := make([]feed.Photo, 0, len(s.photos))
	for n, i := range s.photos {
		l, d := c.im.Layers[i], s.ds[n]
		out = append(out, feed.Photo{
			Manifest: carrier.Digest.String(), Layer: l.Digest.String(), MediaType: l.MediaType,
			Title: l.Annotations[ocispec.AnnotationTitle], Description: d.Text, Alt: d.Alt, Keywords: d.Keywords,
			Text: d.VisibleText, Model: d.Model, Created: d.Created.UTC(), Stored: stored,
		})
	}
	return out
}

// annotationEvent is the event of an annotation-mode write: the annotated
// manifest carries the descriptions and supersedes the original; the tag is
// named when it moved to it.
func annotationEvent(original ocispec.Descriptor, written registry.Written, tag, by string, photos []feed.Photo) feed.Event {
	e := feed.Event{Kind: feed.Written, Digest: written.Descriptor.Digest.String(), By: by, Photos: photos}
	if original.Digest != written.Descriptor.Digest {
		e.Replaces = original.Digest.String()
	}
	if tag != "" && written.TagMoved {
		e.Tags = []string{tag}
	}
	return e
}

// referrerEvent is the event of a referrer-mode write: the photo manifest,
// untouched, carries the descriptions through its referrers.
func referrerEvent(subject ocispec.Descriptor, tag, by string, photos []feed.Photo) feed.Event {
	e := feed.Event{Kind: feed.Written, Digest: subject.Digest.String(), By: by, Photos: photos}
	if tag != "" {
		e.Tags = []string{tag}
	}
	return e
}

// refusedEvents is the event of a job that err ends with a [Refusal]: the
// manifest holds no photo, and why; none for any other error.
func refusedEvents(err error, tag string) []feed.Event {
	var r *Refusal
	if !errors.As(err, &r) {
		return nil
	}
	e := feed.Event{Kind: feed.Refused, Digest: r.Manifest.Digest.String(), Reason: r.Reason}
	if tag != "" {
		e.Tags = []string{tag}
	}
	return []feed.Event{e}
}

// processDeletion handles a job that says the registry deleted a manifest
// (or, naming no digest, a tag): when the registry answers 404 for its
// digest, the manifest is gone and the job ends with a deletion event
// (search forgets it); for a tag, an untagged event (search takes the tag
// off the repository's photos). When the manifest or tag is there (pushed
// again since), the job is a skip and search keeps it. Nothing is
// described.
func (w *Worker) processDeletion(ctx context.Context, job queue.Job) (Result, error) {
	ref, gone := job.Digest, feed.Event{Kind: feed.Deleted, Digest: job.Digest}
	if job.Digest == "" {
		ref, gone = job.Tag, feed.Event{Kind: feed.Untagged, Tags: []string{job.Tag}}
	}
	repo, err := w.registry.Repository(job.Registry, job.Repository)
	if err != nil {
		return Result{}, err
	}
	d, err := repo.Manifests().Resolve(ctx, ref)
	switch {
	case errors.Is(err, errdef.ErrNotFound):
		return Result{Removed: true, Events: []feed.Event{gone}}, nil
	case err != nil:
		return Result{}, registry.Classify(fmt.Errorf("check that %s is gone: %w", job.Ref(), err))
	}
	return Result{Manifest: d}, fault.Skip("%s was deleted but the registry has it again (pushed again): search keeps it", job.Ref())
}
