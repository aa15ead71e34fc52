package reprocess

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path"
	"regexp"
	"slices"
	"strings"
	"sync"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
	"oras.land/oras-go/v2/errdef"
	orasregistry "oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/errcode"

	"github.com/regscribe/regscribe/internal/fault"
	"github.com/regscribe/regscribe/internal/imageprep"
	"github.com/regscribe/regscribe/internal/photo"
	"github.com/regscribe/regscribe/internal/queue"
	"github.com/regscribe/regscribe/internal/registry"
)

// Status is what reprocessing does, or did, with one manifest.
type Status string

// The statuses of an [Item]. [Plan] sets the first six; [Run] turns ToQueue
// into Queued or AlreadyQueued.
const (
	// ToQueue is a photo without a description from the configured model
	// or a person (or any photo, with PlanOptions.Force).
	ToQueue Status = "queue"
	// AlreadyDescribed is a photo the configured model or a person
	// described: by the manifest's io.regscribe.model annotation, or a
	// regscribe referrer (see package photo).
	AlreadyDescribed Status = "described"
	// NotPhoto is a manifest with no image layer (a container image, an
	// SBOM, regscribe's own description referrer, a Docker manifest), or
	// whose layers say nothing of their content and whose first bytes are
	// no photo (Reason: "not an image: …"; see photo.Find).
	NotPhoto Status = "not-photo"
	// FailedBefore is a photo whose earlier job was given up (a dead letter
	// names its digest); it is queued again only when asked ([ExcludeFailed]).
	FailedBefore Status = "failed-before"
	// Gone is a tag deleted between listing and fetching.
	Gone Status = "gone"
	// Unchecked is a manifest (or a repository) that could not be read;
	// Reason says why.
	Unchecked Status = "error"
	// Queued is a photo whose job JetStream stored.
	Queued Status = "queued"
	// AlreadyQueued is a photo whose job JetStream dropped as a duplicate of
	// one queued within its duplicate window (by the notifier or an earlier
	// run): that job describes it; this run does not wait for it.
	AlreadyQueued Status = "already-queued"
	// Unchanged is a tag whose digest PlanOptions.Settled knew as settled
	// (one HEAD, no manifest fetched): one item per tag, with its digest.
	Unchanged Status = "unchanged"
)

// Item is one distinct manifest of a repository, with every listed tag that
// points at it, or a tag or repository that could not be read.
type Item struct {
	Registry   string `json:"registry"`
	Repository string `json:"repository"`
	// Digest of the manifest; empty for a Gone tag or an unreadable repository.
	Digest    string `json:"digest,omitempty"`
	MediaType string `json:"mediaType,omitempty"`
	// Tags pointing at the manifest that matched the tag glob, sorted.
	Tags []string `json:"tags,omitempty"`
	// Tag is the tag the job names (see [PrimaryTag]).
	Tag    string `json:"tag,omitempty"`
	Status Status `json:"status"`
	// Reason explains the status: who described it, why it is no photo,
	// the dead letter's error, the read error.
	Reason string `json:"reason,omitempty"`
	// Refused is set on a NotPhoto whose layers say nothing of their
	// content and whose first bytes hold no photo (Reason: "not an image:
	// …"): [Run] puts the refusal on the description stream, as a worker's
	// job would, so a file whose notification was lost is refused visibly.
	Refused bool `json:"refused,omitempty"`
	// Force is set on the job (PlanOptions.Force): the worker describes the
	// photo anew whatever is there.
	Force bool `json:"force,omitempty"`
	// Replace is set on the jobs of every tag of the photo: it has a
	// description by another model, which the worker replaces, with one
	// model call for all tags (queue.Job.Replace).
	Replace bool `json:"replace,omitempty"`

	// Outcome of a Queued photo once its jobs ended: described, skipped or
	// failed; empty while waiting.
	Outcome queue.Outcome `json:"outcome,omitempty"`
	// Result is the worker's reason for a skip or a failure.
	Result string `json:"result,omitempty"`
	// Mode the description was written in, and the manifest that carries it.
	Mode    string `json:"mode,omitempty"`
	Written string `json:"written,omitempty"`
	// ModelCalls made for the photo (0: the description was remembered).
	ModelCalls int `json:"modelCalls,omitempty"`

	// Found are the descriptions the photo has already, one per describer
	// (PlanOptions.Backfill only); for an index, its children's, each
	// photo naming its child manifest.
	Found []photo.Found `json:"-"`
	// Indexed is how many of Found [Run] put on the description stream
	// (those it lacked).
	Indexed int `json:"indexed,omitempty"`
}

// Ref is registry/repository@digest, or registry/repository:tag without a digest.
func (it Item) Ref() string {
	ref := it.Registry + "/" + it.Repository
	switch {
	case it.Digest != "":
		return ref + "@" + it.Digest
	case len(it.Tags) > 0:
		return ref + ":" + it.Tags[0]
	}
	return ref
}

// PlanOptions configure [Plan].
type PlanOptions struct {
	// Registry is host[:port]; the client must be allowed to reach it. Required.
	// Any of the registry's names will do: items (and so jobs and events)
	// name it as configured.
	Registry string
	// Repository to reprocess. If empty, Repositories, or else every
	// repository the registry's catalog API lists (see [Catalog]).
	Repository string
	// Repositories to reprocess when Repository is empty; one that cannot be
	// listed becomes an Unchecked item, as with the catalog.
	Repositories []string
	// Tag is a glob (path.Match) a tag must match. If empty, every tag.
	Tag string
	// Model is provider/model ("ollama/qwen2.5vl:3b"): a photo with a
	// description by it (or by a person) is AlreadyDescribed. Required
	// unless Force.
	Model string
	// Force queues every photo, described or not, with Job.Force.
	Force bool
	// Concurrency bounds the registry requests in flight. If zero, 16.
	Concurrency int
	// PageSize asks for pages of this many tags (and repositories). If zero, 1000.
	PageSize int
	// Backfill gathers the descriptions each photo already has (Item.Found:
	// annotations and regscribe referrers, by any model or person), which
	// [Run] then puts on the description stream for search to index,
	// without a model call. It costs a referrers listing for every photo,
	// and a record fetch for each referrer of a manifest with several
	// photos. `regscribe reprocess` sets it; the reconcile sweeps, which
	// run over everything every hour, do not.
	Backfill bool
	// Settled, if set, makes the plan resolve each tag first (one HEAD) and
	// fetch no manifest for a tag whose digest Settled reports as settled
	// (an earlier plan decided it and nothing changed): it becomes an
	// Unchanged item. Tags it does not know are fetched and judged as usual.
	Settled func(repository, tag, digest string) bool
}

func (o *PlanOptions) defaults() error {
	if o.Concurrency <= 0 {
		o.Concurrency = 16
	}
	if o.PageSize <= 0 {
		o.PageSize = 1000
	}
	o.Registry = strings.ToLower(o.Registry)
	switch {
	case o.Registry == "":
		return errors.New("reprocess: no registry")
	case o.Model == "" && !o.Force:
		return errors.New("reprocess: no model to check descriptions against")
	}
	if _, err := path.Match(o.Tag, ""); err != nil {
		return fmt.Errorf("tag glob %q: %w", o.Tag, err)
	}
	return nil
}

// fallbackTag matches the tags of the referrers tag schema (OCI distribution
// spec 1.1, "Referrers Tag Schema"): an index of referrers, never a photo.
var fallbackTag = regexp.MustCompile(`^sha(256-[0-9a-f]{64}|512-[0-9a-f]{128})$`)

// IsFallbackTag reports whether tag is a referrers fallback tag (sha256-<hex>).
func IsFallbackTag(tag string) bool { return fallbackTag.MatchString(tag) }

// PrimaryTag is the tag a photo's job names: "latest" when it is among tags,
// else the first in sorted order. An annotation-mode write-back moves that
// tag; [Run] queues the other tags once the description is written.
func PrimaryTag(tags []string) string {
	if slices.Contains(tags, "latest") {
		return "latest"
	}
	if len(tags) == 0 {
		return ""
	}
	return slices.Min(tags)
}

// Plan lists the tags to reprocess, fetches the manifest of each (at most
// Concurrency requests in flight), groups tags by (repository, digest) and
// decides the [Status] of each manifest. Unreadable tags and repositories
// become items with status Gone or Unchecked; the error is for what stops
// the whole plan (the repository or the catalog cannot be listed, ctx ended).
// Items are sorted by repository and tag.
func Plan(ctx context.Context, client *registry.Client, opts PlanOptions) ([]Item, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	opts.Registry = client.Canonical(opts.Registry)
	p := &planner{client: client, opts: opts}
	repos := []string{opts.Repository}
	switch {
	case opts.Repository != "":
	case len(opts.Repositories) > 0:
		repos = opts.Repositories
	default:
		var err error
		if repos, err = p.repositories(ctx); err != nil {
			return nil, err
		}
	}
	tags, err := p.listTags(ctx, repos)
	if err != nil {
		return nil, err
	}
	if err := p.fetch(ctx, tags); err != nil {
		return nil, err
	}
	if err := p.check(ctx); err != nil {
		return nil, err
	}
	items := p.items
	slices.SortFunc(items, func(a, b Item) int {
		return cmp.Or(cmp.Compare(a.Repository, b.Repository), cmp.Compare(firstTag(a), firstTag(b)), cmp.Compare(a.Digest, b.Digest))
	})
	return items, nil
}

func firstTag(it Item) string {
	if len(it.Tags) == 0 {
		return ""
	}
	return it.Tags[0]
}

type planner struct {
	client *registry.Client
	opts   PlanOptions

	mu    sync.Mutex
	items []Item
	// byDigest indexes items by repository + "@" + digest, with the fetched manifest.
	byDigest map[string]*planned
}

type planned struct {
	index    int
	manifest registry.Manifest
}

type tagRef struct{ repo, tag string }

func (p *planner) add(it Item) {
	p.mu.Lock()
	defer p.mu.Unlock()
	it.Registry = p.opts.Registry
	p.items = append(p.items, it)
}

// handle returns a repository handle of the client (shared, so oras-go's
// referrers capability is probed once per repository).
func (p *planner) handle(repo string) (*remote.Repository, error) {
	return p.client.Repository(p.opts.Registry, repo)
}

// listing returns a repository handle for listing only: a separate value
// (never a copy of the shared one) that asks for PageSize entries a page.
func (p *planner) listing(repo string) (*remote.Repository, error) {
	shared, err := p.handle(repo)
	if err != nil {
		return nil, err
	}
	return &remote.Repository{
		Client:          shared.Client,
		Reference:       shared.Reference,
		PlainHTTP:       shared.PlainHTTP,
		TagListPageSize: p.opts.PageSize,
	}, nil
}

// ErrNoCatalog is returned (wrapped) by [Catalog] and [Plan] for a registry
// that offers no catalog API: its repositories must be named.
var ErrNoCatalog = errors.New("registry offers no catalog API")

// Catalog lists every repository of a registry through its catalog API,
// page by page (pageSize entries a page; if zero, 1000). A registry without
// the API gives an error wrapping [ErrNoCatalog].
func Catalog(ctx context.Context, client *registry.Client, host string, pageSize int) ([]string, error) {
	p := &planner{client: client, opts: PlanOptions{Registry: strings.ToLower(host), PageSize: cmp.Or(pageSize, 1000)}}
	return p.repositories(ctx)
}

// repositories lists the registry's catalog, page by page.
func (p *planner) repositories(ctx context.Context) ([]string, error) {
	// registry.Client hands out repository handles only: borrow the
	// transport (credentials, plain HTTP) of one for the registry handle.
	shared, err := p.handle("catalog")
	if err != nil {
		return nil, err
	}
	reg := &remote.Registry{
		RepositoryOptions: remote.RepositoryOptions{
			Client:    shared.Client,
			Reference: orasregistry.Reference{Registry: shared.Reference.Registry},
			PlainHTTP: shared.PlainHTTP,
		},
		RepositoryListPageSize: p.opts.PageSize,
	}
	repos, err := paged(ctx, reg.Repositories, reg.RepositoryListPageSize)
	var resp *errcode.ErrorResponse
	if errors.As(err, &resp) && resp.StatusCode == http.StatusBadRequest {
		// A registry whose catalog allows fewer entries a page than asked
		// (Distribution's catalog.maxentries) refuses the page size: let it choose.
		reg.RepositoryListPageSize = 0
		repos, err = paged(ctx, reg.Repositories, 0)
	}
	if err != nil {
		if errors.Is(err, errdef.ErrNotFound) || errors.Is(err, errdef.ErrUnsupported) {
			return nil, fmt.Errorf("%w: %s: reprocess its repositories one at a time: %w", ErrNoCatalog, p.opts.Registry, err)
		}
		return nil, fmt.Errorf("list repositories of %s: %w", p.opts.Registry, registry.Classify(err))
	}
	return repos, nil
}

// listTags lists every repository's tags (repositories concurrently, each
// page by page), without referrers fallback tags and tags not matching the
// glob. With one named repository, failing to list it stops the plan; with
// the catalog, the repository becomes an Unchecked item.
func (p *planner) listTags(ctx context.Context, repos []string) ([]tagRef, error) {
	var (
		mu   sync.Mutex
		refs []tagRef
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(p.opts.Concurrency)
	for _, name := range repos {
		g.Go(func() error {
			r, err := p.listing(name)
			var tags []string
			if err == nil {
				tags, err = paged(gctx, r.Tags, r.TagListPageSize)
			}
			if err == nil {
				mu.Lock()
				for _, tag := range tags {
					if IsFallbackTag(tag) {
						continue
					}
					if ok, _ := path.Match(p.opts.Tag, tag); p.opts.Tag == "" || ok {
						refs = append(refs, tagRef{name, tag})
					}
				}
				mu.Unlock()
			}
			switch {
			case err == nil:
				return nil
			case gctx.Err() != nil:
				return gctx.Err()
			case p.opts.Repository != "":
				return fmt.Errorf("list tags of %s/%s: %w", p.opts.Registry, name, registry.Classify(err))
			}
			p.add(Item{Repository: name, Status: Unchecked, Reason: "list tags: " + registry.Classify(err).Error()})
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return refs, ctx.Err()
}

// paged lists everything a paged list API has: oras-go follows the Link
// header from page to page; for registries that send no Link (go-containerregistry's),
// a last page that is full is followed by asking again from its last entry,
// until a page brings nothing new.
func paged(ctx context.Context, list func(ctx context.Context, last string, fn func([]string) error) error, pageSize int) ([]string, error) {
	var all []string
	seen := map[string]bool{}
	last := ""
	for {
		lastPage, fresh := 0, 0
		err := list(ctx, last, func(page []string) error {
			lastPage = len(page)
			for _, e := range page {
				if !seen[e] {
					seen[e] = true
					fresh++
					all = append(all, e)
				}
			}
			if len(page) > 0 {
				last = page[len(page)-1]
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if pageSize <= 0 || lastPage < pageSize || fresh == 0 {
			return all, nil
		}
	}
}

// fetch fetches the manifest of every tag and groups tags by digest.
func (p *planner) fetch(ctx context.Context, refs []tagRef) error {
	p.byDigest = map[string]*planned{}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(p.opts.Concurrency)
	for _, ref := range refs {
		g.Go(func() error {
			repo, err := p.handle(ref.repo)
			var m registry.Manifest
			if err == nil && p.opts.Settled != nil {
				var d ocispec.Descriptor
				if d, err = p.client.Resolve(gctx, repo, ref.tag); err == nil && p.opts.Settled(ref.repo, ref.tag, d.Digest.String()) {
					p.add(Item{Repository: ref.repo, Digest: d.Digest.String(), MediaType: d.MediaType, Tags: []string{ref.tag}, Tag: ref.tag, Status: Unchanged})
					return nil
				}
			}
			if err == nil {
				m, err = p.client.FetchManifest(gctx, repo, ref.tag)
			}
			if gctx.Err() != nil {
				return gctx.Err()
			}
			if err != nil {
				status := Unchecked
				if fault.Is(err, fault.KindSkip) {
					status = Gone
				}
				p.add(Item{Repository: ref.repo, Tags: []string{ref.tag}, Status: status, Reason: err.Error()})
				return nil
			}
			key := ref.repo + "@" + m.Descriptor.Digest.String()
			p.mu.Lock()
			defer p.mu.Unlock()
			if pl, ok := p.byDigest[key]; ok {
				p.items[pl.index].Tags = append(p.items[pl.index].Tags, ref.tag)
				return nil
			}
			p.items = append(p.items, Item{
				Registry: p.opts.Registry, Repository: ref.repo, Digest: m.Descriptor.Digest.String(),
				MediaType: m.Descriptor.MediaType, Tags: []string{ref.tag},
			})
			p.byDigest[key] = &planned{index: len(p.items) - 1, manifest: m}
			return nil
		})
	}
	return g.Wait()
}

// check decides the status of each distinct manifest (concurrently: it may
// list referrers and fetch the children of an index).
func (p *planner) check(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(p.opts.Concurrency)
	for _, pl := range p.byDigest {
		it := &p.items[pl.index] // the slice no longer grows: each goroutine owns its item
		slices.Sort(it.Tags)
		it.Tag = PrimaryTag(it.Tags)
		g.Go(func() error {
			repo, err := p.handle(it.Repository)
			var v verdict
			if err == nil {
				v, err = p.judge(gctx, repo, pl.manifest)
			}
			if gctx.Err() != nil {
				return gctx.Err()
			}
			if err != nil {
				it.Status, it.Reason = Unchecked, err.Error()
				return nil
			}
			it.Status, it.Reason, it.Refused = NotPhoto, v.Reason, v.refused
			it.Found = v.found
			if v.Photo {
				it.Status = AlreadyDescribed
			}
			if v.Action != photo.Skip {
				it.Status = ToQueue
				it.Force = p.policy() == photo.Forced
				it.Replace = !it.Force && v.By != photo.ByNobody
			}
			return nil
		})
	}
	return g.Wait()
}

// policy is the photo.Policy of the run's jobs.
func (p *planner) policy() photo.Policy {
	if p.opts.Force {
		return photo.Forced
	}
	return photo.Replace
}

// verdict is what the plan decided about one manifest; Photo is false for
// a manifest that is no photo (Reason says why).
type verdict struct {
	photo.Verdict
	Photo bool
	// found are the descriptions the photo has (PlanOptions.Backfill).
	found []photo.Found
	// refused: no photo, found by reading the layers' first bytes.
	refused bool
}

// judge decides what to do with one manifest, as the worker would see it
// (package photo): an OCI image manifest with an image layer, or an index
// with such a child.
func (p *planner) judge(ctx context.Context, repo *remote.Repository, m registry.Manifest) (verdict, error) {
	switch m.Descriptor.MediaType {
	case ocispec.MediaTypeImageManifest:
		return p.judgeManifest(ctx, repo, m)
	case ocispec.MediaTypeImageIndex:
		var idx ocispec.Index
		if err := json.Unmarshal(m.Raw, &idx); err != nil {
			return verdict{}, fmt.Errorf("decode index %s: %w", m.Descriptor.Digest, err)
		}
		var children []photo.Verdict
		var found []photo.Found
		for _, i := range photo.Children(idx) {
			cm, err := p.client.FetchManifest(ctx, repo, idx.Manifests[i].Digest.String())
			if err != nil {
				return verdict{}, err
			}
			cv, err := p.judgeManifest(ctx, repo, cm)
			if err != nil {
				return verdict{}, err
			}
			if cv.Photo {
				children = append(children, cv.Verdict)
				found = mergeFound(found, cv.found)
			}
		}
		if len(children) == 0 {
			return verdict{Verdict: photo.Verdict{Reason: "index with no child that has an image layer"}}, nil
		}
		return verdict{Verdict: photo.Album(children), Photo: true, found: found}, nil
	}
	return verdict{Verdict: photo.Verdict{Reason: m.Descriptor.MediaType + ", not an OCI image manifest or index"}}, nil
}

func (p *planner) judgeManifest(ctx context.Context, repo *remote.Repository, m registry.Manifest) (verdict, error) {
	im, err := registry.ParseImageManifest(m)
	if err != nil {
		return verdict{}, err
	}
	// What the worker would find: layers whose media types say nothing
	// have their first bytes read (a tag the sweep knows unchanged never
	// gets here: reconcile reads no bytes of it).
	layers, why, err := photo.Find(im, func(l ocispec.Descriptor) ([]byte, error) {
		return p.client.FetchHead(ctx, repo, l, imageprep.SniffLen)
	})
	if err != nil {
		return verdict{}, fmt.Errorf("%s: %w", m.Descriptor.Digest, err)
	}
	if layers == nil {
		return verdict{Verdict: photo.Verdict{Reason: why}, refused: photo.ToSniff(im) != nil}, nil
	}
	// A skip decided by the annotations stands whatever the referrers; a
	// forced run queues every photo: neither needs the referrers listed,
	// unless the plan gathers every description.
	v := photo.Described(im.Annotations, nil, p.opts.Model, p.policy())
	if (v.Action == photo.Skip || p.opts.Force) && !p.opts.Backfill {
		return verdict{Verdict: v, Photo: true}, nil
	}
	refs, err := p.client.Referrers(ctx, repo, ocispec.Descriptor{MediaType: m.Descriptor.MediaType, Digest: m.Descriptor.Digest, Size: m.Descriptor.Size}, registry.ArtifactTypeDescription)
	if err != nil {
		return verdict{}, err
	}
	out := verdict{Verdict: v, Photo: true}
	if v.Action != photo.Skip && !p.opts.Force {
		out.Verdict = photo.Described(im.Annotations, refs, p.opts.Model, p.policy())
	}
	if p.opts.Backfill {
		if out.found, err = p.found(ctx, repo, m, im, layers, refs); err != nil {
			return verdict{}, err
		}
	}
	return out, nil
}

// found reads the descriptions manifest m already has (package photo).
func (p *planner) found(ctx context.Context, repo *remote.Repository, m registry.Manifest, im ocispec.Manifest, photos []int, refs []ocispec.Descriptor) ([]photo.Found, error) {
	return photo.Read(ctx, m.Descriptor.Digest.String(), im, photos, refs, func(ctx context.Context, r ocispec.Descriptor) (registry.Record, error) {
		return p.client.FetchRecord(ctx, repo, r)
	})
}

// mergeFound adds the descriptions of an index's child to the index's: one
// Found per describer, with the photos of every child.
func mergeFound(all, child []photo.Found) []photo.Found {
	for _, f := range child {
		i := slices.IndexFunc(all, func(a photo.Found) bool { return a.By == f.By })
		if i < 0 {
			all = append(all, photo.Found{By: f.By, Photos: slices.Clone(f.Photos)})
			continue
		}
		all[i].Photos = append(all[i].Photos, f.Photos...)
	}
	return all
}

// ExcludeFailed marks each item to queue whose digest a dead letter names
// (a job for it was given up before) as FailedBefore, with the dead
// letter's error: running reprocess again does not queue a corrupt photo
// again and again. `regscribe failed retry` queues them again, or Plan's
// items can be queued without calling ExcludeFailed.
func ExcludeFailed(items []Item, dead []queue.DeadLetter) {
	why := map[string]string{}
	for _, d := range dead {
		if d.Job.Digest == "" {
			continue
		}
		why[strings.ToLower(d.Job.Registry)+"/"+d.Job.Repository+"@"+d.Job.Digest] = d.Error
	}
	for i := range items {
		it := &items[i]
		if it.Status != ToQueue {
			continue
		}
		if reason, ok := why[it.Registry+"/"+it.Repository+"@"+it.Digest]; ok {
			it.Status, it.Reason = FailedBefore, reason
		}
	}
}
