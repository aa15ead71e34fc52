package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/errcode"
)

// ErrTagRefused is returned when the registry refuses to move a tag (an
// immutable tag, as Harbor, ECR and GAR can enforce).
var ErrTagRefused = errors.New("tag move refused")

// Written says what a write-back did.
type Written struct {
	// Descriptor of the manifest that now carries the description.
	Descriptor ocispec.Descriptor
	// TagMoved is true when the job's tag now points at Descriptor.
	TagMoved bool
	// AlreadyThere is true when the annotated manifest existed already (a
	// redelivered or concurrent job wrote it), so nothing was pushed.
	AlreadyThere bool
	// TagMovedOn is true when the tag pointed elsewhere by the time of the
	// write (a newer push owns it) and was left alone.
	TagMovedOn bool
}

// WriteAnnotation re-pushes m with edit applied, by digest, then moves tag to
// it if the tag still points at m (re-resolved right before moving, since
// the distribution API has no compare-and-swap). An empty tag moves nothing.
// The same edit of the same manifest gives the same bytes, so a repeated
// write is a no-op for the registry.
func (c *Client) WriteAnnotation(ctx context.Context, repo *remote.Repository, m Manifest, edit Edit, tag string) (Written, error) {
	raw, err := Annotate(m.Raw, edit)
	if err != nil {
		return Written{}, fmt.Errorf("annotate %s@%s: %w", repo.Reference, m.Descriptor.Digest, err)
	}
	desc := content.NewDescriptorFromBytes(m.Descriptor.MediaType, raw)
	w := Written{Descriptor: desc}
	w.AlreadyThere, err = repo.Manifests().Exists(ctx, desc)
	if err != nil {
		return Written{}, Classify(fmt.Errorf("check %s@%s: %w", repo.Reference, desc.Digest, err))
	}
	if !w.AlreadyThere {
		if err := repo.Manifests().Push(ctx, desc, bytes.NewReader(raw)); err != nil {
			return Written{}, Classify(fmt.Errorf("push annotated manifest %s@%s: %w", repo.Reference, desc.Digest, err))
		}
	}
	if tag == "" {
		return w, nil
	}
	now, err := c.Resolve(ctx, repo, tag)
	if err != nil {
		return w, err
	}
	switch now.Digest {
	case desc.Digest:
		w.TagMoved = true
		return w, nil
	case m.Descriptor.Digest:
	default:
		w.TagMovedOn = true
		return w, nil
	}
	if err := repo.Manifests().PushReference(ctx, desc, bytes.NewReader(raw), tag); err != nil {
		err = fmt.Errorf("move tag %s:%s to %s: %w", repo.Reference, tag, desc.Digest, err)
		var resp *errcode.ErrorResponse
		if errors.As(err, &resp) && resp.StatusCode >= 400 && resp.StatusCode < 500 &&
			resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusRequestTimeout {
			err = fmt.Errorf("%w: %w", ErrTagRefused, err)
		}
		return w, Classify(err)
	}
	w.TagMoved = true
	return w, nil
}
