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

// WriteAnnotation pushes m with edit applied. When tag still points at m
// (re-resolved right before the write, since the distribution API has no
// compare-and-swap) the new manifest is pushed by that tag, which stores it
// and moves the tag in one request; otherwise (no tag, or a tag a newer push
// has taken) it is pushed by digest and no tag moves. The same edit of the
// same manifest gives the same bytes, so a repeated write changes nothing.
func (c *Client) WriteAnnotation(ctx context.Context, repo *remote.Repository, m Manifest, edit Edit, tag string) (Written, error) {
	raw, err := Annotate(m.Raw, edit)
	if err != nil {
		return Written{}, fmt.Errorf("annotate %s@%s: %w", repo.Reference, m.Descriptor.Digest, err)
	}
	desc := content.NewDescriptorFromBytes(m.Descriptor.MediaType, raw)
	w := Written{Descriptor: desc}
	if tag != "" {
		now, err := c.Resolve(ctx, repo, tag)
		if err != nil {
			return w, err
		}
		switch now.Digest {
		case desc.Digest:
			w.TagMoved, w.AlreadyThere = true, true
			return w, nil
		case m.Descriptor.Digest:
			if err := repo.Manifests().PushReference(ctx, desc, bytes.NewReader(raw), tag); err != nil {
				return w, classifyTagMove(fmt.Errorf("push annotated manifest as %s:%s: %w", repo.Reference, tag, err))
			}
			w.TagMoved = true
			return w, nil
		default:
			w.TagMovedOn = true
		}
	}
	if w.AlreadyThere, err = repo.Manifests().Exists(ctx, desc); err != nil {
		return Written{}, Classify(fmt.Errorf("check %s@%s: %w", repo.Reference, desc.Digest, err))
	}
	if !w.AlreadyThere {
		if err := repo.Manifests().Push(ctx, desc, bytes.NewReader(raw)); err != nil {
			return Written{}, Classify(fmt.Errorf("push annotated manifest %s@%s: %w", repo.Reference, desc.Digest, err))
		}
	}
	return w, nil
}

// classifyTagMove marks a registry's refusal to move a tag (a 4xx other
// than auth and rate limits: immutable tags) with ErrTagRefused.
func classifyTagMove(err error) error {
	var resp *errcode.ErrorResponse
	if errors.As(err, &resp) && resp.StatusCode >= 400 && resp.StatusCode < 500 &&
		resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusRequestTimeout {
		err = fmt.Errorf("%w: %w", ErrTagRefused, err)
	}
	return Classify(err)
}
