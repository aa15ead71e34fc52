package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/errcode"

	"github.com/regscribe/regscribe/internal/fault"
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
	// write, or right after it (a newer push owns it), and was left alone.
	TagMovedOn bool
	// OriginalGone is true when the tag moved and the registry no longer
	// has the original manifest (zot drops a manifest its last tag left):
	// whatever pinned the original digest now gets 404.
	OriginalGone bool
}

// WriteAnnotation pushes m with edit applied. When tag still points at m
// (re-resolved right before the write) the new manifest is pushed by that
// tag, which stores it and moves the tag in one request; otherwise (no tag,
// or a tag a newer push has taken) it is pushed by digest and no tag moves.
// The same edit of the same manifest gives the same bytes, so a repeated
// write changes nothing.
//
// The distribution API has no compare-and-swap, so a push of another
// manifest to tag that lands between the re-resolve and the write is
// overwritten. The window is narrowed, not closed: the tag is resolved again
// right after the write, and when it points elsewhere by then a newer push
// owns it and is left alone (TagMovedOn). A job that finds its tag on a
// manifest regscribe annotated from another one logs a warning naming the
// tag and both digests: its push may have been overwritten that way.
func (c *Client) WriteAnnotation(ctx context.Context, repo *remote.Repository, m Manifest, edit Edit, tag string) (Written, error) {
	raw, err := Annotate(m.Raw, edit)
	if err != nil {
		return Written{}, fmt.Errorf("annotate %s@%s: %w", repo.Reference, m.Descriptor.Digest, err)
	}
	desc := content.NewDescriptorFromBytes(m.Descriptor.MediaType, raw)
	w := Written{Descriptor: desc}
	if tag != "" {
		now, err := c.Resolve(ctx, repo, tag)
		if fault.Is(err, fault.KindSkip) {
			// CNCF Distribution announces a push before it links the tag:
			// the tag a job names can be missing for a moment. The next
			// attempt finds it (or, deleted meanwhile, ends as a dead
			// letter that names it); a skip would lose the photo.
			return w, fault.RetryAfter(fmt.Errorf("tag %s:%s is not there (yet) although the registry announced it: %v", repo.Reference, tag, err), time.Second)
		}
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
			after, err := c.Resolve(ctx, repo, tag)
			if err != nil {
				return w, err
			}
			if after.Digest == desc.Digest {
				w.TagMoved = true
				w.OriginalGone = c.originalGone(ctx, repo, m.Descriptor)
				return w, nil
			}
			c.log.Info("tag moved on right after the description was written: a newer push owns it and is left alone",
				"repository", repo.Reference.Repository, "tag", tag, "written", desc.Digest, "tag_now", after.Digest)
			w.TagMovedOn = true
			return w, nil
		default:
			w.TagMovedOn = true
			c.warnIfOverwritten(ctx, repo, tag, m.Descriptor, now)
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

// originalGone reports whether the registry dropped the manifest a tag
// move left (a HEAD that answers 404), and says so in the log once per
// registry: annotation mode (and auto mode for a plain photo) breaks every
// pin of the old digest there. An error of the check itself is no answer.
func (c *Client) originalGone(ctx context.Context, repo *remote.Repository, old ocispec.Descriptor) bool {
	ok, err := repo.Manifests().Exists(ctx, old)
	if err != nil || ok {
		return false
	}
	host := Key(repo.Reference.Registry)
	c.mu.Lock()
	first := !c.dropsReplaced[host]
	c.dropsReplaced[host] = true
	c.mu.Unlock()
	if first {
		c.log.Warn("this registry dropped the original manifest when regscribe moved its tag to the annotated one (zot does): "+
			"anything pinned to the old digest now gets 404; set REGSCRIBE_MODE=referrer to keep digests on this registry",
			"registry", repo.Reference.Registry, "repository", repo.Reference.Repository, "original", old.Digest)
	}
	return true
}

// warnIfOverwritten warns when tag, which pointed at pushed when it was
// announced, now points at a manifest regscribe annotated (it carries a
// description): regscribe moved the tag there for another push, and may have
// overwritten this one, which landed between that write's check and its push.
func (c *Client) warnIfOverwritten(ctx context.Context, repo *remote.Repository, tag string, pushed, now ocispec.Descriptor) {
	if now.MediaType != ocispec.MediaTypeImageManifest {
		return
	}
	nm, err := c.FetchManifest(ctx, repo, now.Digest.String())
	if err != nil {
		return
	}
	im, err := ParseImageManifest(nm)
	if err != nil || im.Annotations[AnnotationDescription] == "" {
		return
	}
	c.log.Warn("tag now points at a manifest regscribe annotated from another push: this push may have been overwritten by that tag move "+
		"(the registry API cannot move a tag only if it is unchanged); push it again to restore the tag",
		"repository", repo.Reference.Repository, "tag", tag, "manifest", pushed.Digest, "tag_now", now.Digest)
}

// classifyTagMove marks a registry's refusal to move a tag (a 4xx other
// than auth and rate limits: immutable tags) with ErrTagRefused.
func classifyTagMove(err error) error {
	var resp *errcode.ErrorResponse
	if errors.As(err, &resp) && resp.StatusCode >= 400 && resp.StatusCode < 500 &&
		resp.StatusCode != http.StatusUnauthorized && !fault.Transient(resp.StatusCode) {
		err = fmt.Errorf("%w: %w", ErrTagRefused, err)
	}
	return Classify(err)
}
