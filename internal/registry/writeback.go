package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/errcode"

	"github.com/regscribe/regscribe/internal/fault"
	"github.com/regscribe/regscribe/internal/queue"
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
	// TagMovedOn is true when the tag belongs to a later push (or was
	// deleted) by the time of the write, or right after it, and was left
	// alone.
	TagMovedOn bool
	// TagNeverLinked is true when the registry announced the push of the
	// tag but had not linked the tag to it when the wait for it ended: the
	// description was written by digest and the tag left where it was.
	TagNeverLinked bool
	// OriginalGone is true when the tag moved and the registry does not
	// keep the original manifest (zot drops a manifest its last tag left):
	// whatever pinned the original digest now gets 404. Each registry is
	// asked on its first tag move only.
	OriginalGone bool
}

// TagRecords is what the notifier recorded of the pushes announced per
// tag, and where a worker records its own tag moves ([queue.Tags]).
type TagRecords interface {
	Get(ctx context.Context, registry, repository, tag string) (queue.TagRecord, bool, error)
	// Held is Get from what the store keeps when it keeps the tag's record
	// (a moment old at most), else read.
	Held(ctx context.Context, registry, repository, tag string) (queue.TagRecord, bool, error)
	Move(ctx context.Context, registry, repository, tag, pushed, event, described string) (queue.TagRecord, error)
}

var _ TagRecords = (*queue.Tags)(nil)

// DefaultTagWait bounds how long a write-back waits for a registry to link
// a tag it announced (see [Options.TagWait]).
const DefaultTagWait = 30 * time.Second

// relinkWait bounds the wait for the link of a manifest pushed again to a
// tag that holds its description already (moved there by the job of an
// earlier push of it): a registry links a push within the request that
// announced it, so a link not seen by then came before that move.
const relinkWait = 5 * time.Second

// WriteAnnotation pushes m with edit applied. When tag points at m
// (resolved right before the write) the new manifest is pushed by that
// tag, which stores it and moves the tag in one request; otherwise it is
// pushed by digest and no tag moves. The same edit of the same manifest
// gives the same bytes, so a repeated write changes nothing.
//
// A tag found elsewhere is decided by the tag's record (Options.Tags: what
// the notifier recorded of the pushes announced, and regscribe's own tag
// moves), not by a guess:
//
//   - a later push (or the tag's deletion) was announced: the tag is left
//     to that push's own job (TagMovedOn), logged at info with its digest;
//   - m's push is still the last announced: the registry has not linked the
//     tag to it yet (CNCF Distribution announces a push before it links the
//     tag), so the write waits for the link, re-resolving with a growing
//     delay up to Options.TagWait, then moves the tag. A tag still on a
//     manifest regscribe moved it to for an older push at the end of the
//     wait was taken from this push by that move (the API has no
//     compare-and-swap): the tag is moved to this push's description,
//     restoring the newest push. A tag still elsewhere was never linked by
//     the registry: the description is written by digest and a warning
//     says so (TagNeverLinked).
//
// A tag found on m's push while the record names a later announced push
// was linked by the registry after that push's link (two PUTs in flight at
// once): the description is written by digest and the tag goes back to
// the later push's description if its job wrote one (left to that job
// otherwise).
//
// Without a record (no notifier recorded the tag: reprocess jobs after the
// record expired, zot's NATS events, Options.Tags unset) a missing tag is
// retried (KindRetry) and a tag elsewhere is left alone (TagMovedOn), with
// a warning when it points at a manifest regscribe annotated from another
// push.
//
// Each move is recorded right before it is made, so its own announcement
// is not taken for a push. A push landing between the last resolve and
// the move is overwritten; that push's job then finds the tag on
// regscribe's move and restores it. The tag is resolved again right after
// the move, and a later push found there is left alone (TagMovedOn).
func (c *Client) WriteAnnotation(ctx context.Context, repo *remote.Repository, m Manifest, edit Edit, tag string) (Written, error) {
	return c.WriteAnnotationOf(ctx, repo, m, edit, tag, "")
}

// WriteAnnotationOf is [Client.WriteAnnotation] for the push announced as
// event (a job's Event): a tag on this push's description after another
// job's move for an earlier announcement of the same manifest is not taken
// as described until the registry linked this push.
func (c *Client) WriteAnnotationOf(ctx context.Context, repo *remote.Repository, m Manifest, edit Edit, tag, event string) (Written, error) {
	raw, err := Annotate(m.Raw, edit)
	if err != nil {
		return Written{}, fmt.Errorf("annotate %s@%s: %w", repo.Reference, m.Descriptor.Digest, err)
	}
	desc := content.NewDescriptorFromBytes(m.Descriptor.MediaType, raw)
	if tag == "" {
		return c.pushByDigest(ctx, repo, Written{Descriptor: desc}, raw)
	}
	t := tagWrite{c: c, repo: repo, tag: tag, event: event, pushed: m.Descriptor, raw: raw, w: Written{Descriptor: desc}}
	return t.run(ctx)
}

// tagWrite is one write-back of a photo pushed by a tag.
type tagWrite struct {
	c      *Client
	repo   *remote.Repository
	tag    string
	event  string             // the push's announcement ("": unknown)
	pushed ocispec.Descriptor // the manifest described
	raw    []byte             // its annotated bytes
	w      Written
	log    *slog.Logger
}

func (t *tagWrite) run(ctx context.Context) (Written, error) {
	t.log = t.c.log.With("repository", t.repo.Reference.Repository, "tag", t.tag, "manifest", t.pushed.Digest)
	desc := t.w.Descriptor.Digest
	started := time.Now()
	deadline := started.Add(t.c.tagWait)
	delay := 100 * time.Millisecond
	for waited := false; ; waited = true {
		now, resolveErr := t.c.Resolve(ctx, t.repo, t.tag)
		found := resolveErr == nil
		if !found && !fault.Is(resolveErr, fault.KindSkip) {
			return t.w, resolveErr
		}
		if found && now.Digest == t.pushed.Digest {
			// The common case (the tag on this push): decided on the
			// record held, no round trip.
			rec, known, err := t.record(ctx, true)
			if err != nil {
				return t.w, err
			}
			// Only a job made from an announcement is placed in the
			// record's order; a manifest regscribe moved the tag to is
			// described again (a correction) with no push of it announced.
			if known && t.event != "" && rec.Digest != "" && rec.Digest != t.pushed.Digest.String() && rec.Event != t.event &&
				!rec.Moved(t.pushed.Digest.String()) {
				return t.linkedAfterLater(ctx, rec)
			}
			if waited {
				t.log.Info("the registry linked the tag to this push", "waited", time.Since(started).Round(time.Millisecond).String())
			}
			return t.move(ctx)
		}
		rec, known, err := t.record(ctx, false)
		if err != nil {
			return t.w, err
		}
		switch {
		case !known:
			return t.unrecorded(ctx, now, found, resolveErr)
		case found && now.Digest == desc && (rec.Digest != t.pushed.Digest.String() || rec.Described != "" ||
			time.Since(started) >= min(t.c.tagWait, relinkWait)):
			// Described at the tag: by this push's job, for a later push
			// of another manifest, or (the same manifest announced again,
			// the tag on its description already) with no link of this
			// push seen within relinkWait: linked before that move.
			t.w.TagMoved, t.w.AlreadyThere = true, true
			return t.w, nil
		case rec.Digest == "":
			t.log.Info("the tag was deleted after this push; the description is written by digest", "deleted_at", rec.At)
			t.w.TagMovedOn = true
			return t.c.pushByDigest(ctx, t.repo, t.w, t.raw)
		case rec.Digest != t.pushed.Digest.String():
			t.log.Info("a later push of the tag was announced: its own job describes it; this description is written by digest",
				"later", rec.Digest, "later_event", rec.Event)
			t.w.TagMovedOn = true
			return t.c.pushByDigest(ctx, t.repo, t.w, t.raw)
		}
		// This push is the last announced and the tag is elsewhere: the
		// registry has not linked it yet, or a move of regscribe's took it.
		left := time.Until(deadline)
		if left > 0 {
			if !waited {
				t.log.Info("the registry announced this push but has not linked the tag to it yet; waiting for the link",
					"tag_now", now.Digest, "wait_up_to", t.c.tagWait.String())
			}
			if err := sleep(ctx, min(delay, left)); err != nil {
				return t.w, err
			}
			delay = min(2*delay, 5*time.Second)
			continue
		}
		switch {
		case found && now.Digest == desc:
			// The registry linked this push and another job of it moved
			// the tag to the same description meanwhile.
			t.w.TagMoved, t.w.AlreadyThere = true, true
			return t.w, nil
		case found && rec.Moved(now.Digest.String()):
			t.log.Info("regscribe's move of the tag for an older push took the tag from this push (the registry API cannot move a tag only if it is unchanged); "+
				"moving it to this push's description", "tag_was", now.Digest)
			return t.move(ctx)
		}
		t.log.Warn("the registry announced this push of the tag but has not linked the tag to it: the description is written by digest and the tag left where it is; push it again",
			"tag_now", now.Digest, "waited", time.Since(started).Round(time.Millisecond).String())
		t.w.TagNeverLinked = true
		return t.c.pushByDigest(ctx, t.repo, t.w, t.raw)
	}
}

// record reads the tag's record; known is false without one (or without
// a record store). held takes the one the store keeps, if it keeps it.
func (t *tagWrite) record(ctx context.Context, held bool) (queue.TagRecord, bool, error) {
	if t.c.tags == nil {
		return queue.TagRecord{}, false, nil
	}
	get := t.c.tags.Get
	if held {
		get = t.c.tags.Held
	}
	rec, known, err := get(ctx, t.repo.Reference.Registry, t.repo.Reference.Repository, t.tag)
	if err != nil {
		return rec, false, fault.Retry(err)
	}
	return rec, known, nil
}

// linkedAfterLater handles the tag found on this push while its record
// names a later announced push: the registry linked this push's tag after
// the later push's (two pushes in flight at once, or slow storage: each
// PUT stores and announces its manifest, then links the tag). The last
// announced push is the newest; the tag goes back to its description when
// its job wrote one, and is left to that job otherwise. This push's
// description is written by digest.
func (t *tagWrite) linkedAfterLater(ctx context.Context, rec queue.TagRecord) (Written, error) {
	t.w.TagMovedOn = true
	w, err := t.c.pushByDigest(ctx, t.repo, t.w, t.raw)
	if err != nil {
		return w, err
	}
	if rec.Described == "" {
		t.log.Info("the registry linked the tag to this push after a later push was announced: that push's job describes it; this description is written by digest",
			"later", rec.Digest, "later_event", rec.Event)
		return w, nil
	}
	later, err := t.c.FetchManifest(ctx, t.repo, rec.Described)
	if err != nil {
		return w, err
	}
	if _, err := t.c.tags.Move(ctx, t.repo.Reference.Registry, t.repo.Reference.Repository, t.tag, rec.Digest, rec.Event, rec.Described); err != nil {
		return w, fault.Retry(err)
	}
	if err := t.repo.Manifests().PushReference(ctx, later.Descriptor, bytes.NewReader(later.Raw), t.tag); err != nil {
		return w, classifyTagMove(fmt.Errorf("move %s:%s back to %s: %w", t.repo.Reference, t.tag, rec.Described, err))
	}
	t.log.Info("the registry linked the tag to this push after a later push was announced and described: the tag is moved back to the later push's description; this description is written by digest",
		"later", rec.Digest, "later_event", rec.Event, "later_description", rec.Described)
	return w, nil
}

// unrecorded decides a tag found elsewhere (or missing, resolveErr) when
// nothing was recorded of it.
func (t *tagWrite) unrecorded(ctx context.Context, now ocispec.Descriptor, found bool, resolveErr error) (Written, error) {
	switch {
	case !found:
		// CNCF Distribution announces a push before it links the tag: the
		// tag a job names can be missing for a moment. The next attempt
		// finds it (or, deleted meanwhile, ends as a dead letter that
		// names it); a skip would lose the photo.
		return t.w, fault.RetryAfter(fmt.Errorf("tag %s:%s is not there (yet) although the registry announced it: %v", t.repo.Reference, t.tag, resolveErr), time.Second)
	case now.Digest == t.w.Descriptor.Digest:
		t.w.TagMoved, t.w.AlreadyThere = true, true
		return t.w, nil
	}
	t.w.TagMovedOn = true
	t.c.warnIfOverwritten(ctx, t.repo, t.tag, t.pushed, now)
	return t.c.pushByDigest(ctx, t.repo, t.w, t.raw)
}

// move records the tag move, then pushes the description by the tag and
// resolves the tag again.
func (t *tagWrite) move(ctx context.Context) (Written, error) {
	desc := t.w.Descriptor
	if t.c.tags != nil {
		if _, err := t.c.tags.Move(ctx, t.repo.Reference.Registry, t.repo.Reference.Repository, t.tag, t.pushed.Digest.String(), t.event, desc.Digest.String()); err != nil {
			return t.w, fault.Retry(err)
		}
	}
	if err := t.repo.Manifests().PushReference(ctx, desc, bytes.NewReader(t.raw), t.tag); err != nil {
		return t.w, classifyTagMove(fmt.Errorf("push annotated manifest as %s:%s: %w", t.repo.Reference, t.tag, err))
	}
	after, err := t.c.Resolve(ctx, t.repo, t.tag)
	if err != nil {
		return t.w, err
	}
	if after.Digest == desc.Digest {
		t.w.TagMoved = true
		t.w.OriginalGone = t.c.originalGone(ctx, t.repo, t.pushed)
		return t.w, nil
	}
	t.log.Info("tag moved on right after the description was written: a newer push owns it and is left alone",
		"written", desc.Digest, "tag_now", after.Digest)
	t.w.TagMovedOn = true
	return t.w, nil
}

// pushByDigest pushes the annotated manifest by its digest unless the
// registry has it.
func (c *Client) pushByDigest(ctx context.Context, repo *remote.Repository, w Written, raw []byte) (Written, error) {
	var err error
	if w.AlreadyThere, err = repo.Manifests().Exists(ctx, w.Descriptor); err != nil {
		return Written{}, Classify(fmt.Errorf("check %s@%s: %w", repo.Reference, w.Descriptor.Digest, err))
	}
	if !w.AlreadyThere {
		if err := repo.Manifests().Push(ctx, w.Descriptor, bytes.NewReader(raw)); err != nil {
			return Written{}, Classify(fmt.Errorf("push annotated manifest %s@%s: %w", repo.Reference, w.Descriptor.Digest, err))
		}
	}
	return w, nil
}

// sleep waits d, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// originalGone reports whether the registry drops the manifest a tag move
// left (a HEAD that answers 404), and says so in the log once per registry:
// annotation mode (and auto mode for a plain photo) breaks every pin of the
// old digest there. A registry treats every manifest alike, so it is asked
// on its first tag move only (an error of the check itself is no answer,
// and it is asked again next time).
func (c *Client) originalGone(ctx context.Context, repo *remote.Repository, old ocispec.Descriptor) bool {
	host := Key(repo.Reference.Registry)
	c.mu.Lock()
	drops, known := c.dropsReplaced[host]
	c.mu.Unlock()
	if known {
		return drops
	}
	ok, err := repo.Manifests().Exists(ctx, old)
	if err != nil {
		return false
	}
	c.mu.Lock()
	_, told := c.dropsReplaced[host]
	c.dropsReplaced[host] = !ok
	c.mu.Unlock()
	if !ok && !told {
		c.log.Warn("this registry dropped the original manifest when regscribe moved its tag to the annotated one (zot does): "+
			"anything pinned to the old digest now gets 404; set REGSCRIBE_MODE=referrer to keep digests on this registry",
			"registry", repo.Reference.Registry, "repository", repo.Reference.Repository, "original", old.Digest)
	}
	return !ok
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

// TagNames reports whether tag may still be reported as naming pushed (a
// manifest described by a referrer, or regscribe's annotated manifest the
// tag was moved to): false when the tag's record says a later push to the
// tag, or its deletion, was announced, so that push's own job reports the
// tag. Without a record, or
// when the record cannot be read, it is true: the job's tag is all there is
// to go by.
func (c *Client) TagNames(ctx context.Context, repo *remote.Repository, tag string, pushed ocispec.Descriptor) bool {
	if c.tags == nil || tag == "" {
		return tag != ""
	}
	rec, known, err := c.tags.Get(ctx, repo.Reference.Registry, repo.Reference.Repository, tag)
	if err != nil || !known {
		return true
	}
	// Nothing announced (only regscribe's own moves recorded), or this push
	// (or regscribe's description of it) the last announced.
	return rec.Event == "" || rec.Digest == pushed.Digest.String() || rec.Described == pushed.Digest.String()
}
