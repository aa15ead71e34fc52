package web_test

// TEMPORARY: a stand-in for internal/index while it is not on main, fed
// from the real description stream. Replaced by *index.Index.

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/feed"
	"github.com/regscribe/regscribe/internal/photo"
	"github.com/regscribe/regscribe/internal/web"
)

type devCatalog struct {
	mu      sync.Mutex
	entries []web.Entry
	applied uint64
}

func startCatalog(t testing.TB, js jetstream.JetStream) web.Catalog {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	_, err := feed.EnsureStream(ctx, js, 1)
	require.NoError(t, err)
	c := &devCatalog{}
	cons, err := js.OrderedConsumer(ctx, feed.Stream, jetstream.OrderedConsumerConfig{})
	require.NoError(t, err)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		e, err := feed.Parse(m.Data())
		md, _ := m.Metadata()
		c.mu.Lock()
		defer c.mu.Unlock()
		if err == nil {
			c.apply(e)
		}
		if md != nil {
			c.applied = md.Sequence.Stream
		}
	})
	require.NoError(t, err)
	t.Cleanup(cc.Stop)
	return c
}

func (c *devCatalog) apply(e feed.Event) {
	c.entries = slices.DeleteFunc(c.entries, func(x web.Entry) bool {
		same := x.Registry == e.Registry && x.Repository == e.Repository
		if e.Kind == feed.Deleted {
			return same && x.Digest == e.Digest
		}
		return same && (x.Digest == e.Digest || x.Digest == e.Replaces) && x.Model == e.By
	})
	if e.Kind == feed.Deleted {
		return
	}
	for _, p := range e.Photos {
		c.entries = append(c.entries, web.Entry{
			Registry: e.Registry, Repository: e.Repository, Digest: e.Digest, Manifest: p.Manifest, Layer: p.Layer,
			MediaType: p.MediaType, Tags: e.Tags, Title: p.Title, Description: p.Description, Alt: p.Alt,
			Keywords: p.Keywords, Text: p.Text, Model: cmp.Or(p.Model, e.By), Created: cmp.Or(p.Created, e.At), Stored: p.Stored,
		})
	}
}

func (c *devCatalog) Search(_ context.Context, q web.Query) ([]web.Hit, int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var hits []web.Hit
	words := strings.Fields(strings.ToLower(q.Text))
	for _, e := range c.shown("", "") {
		hay := strings.ToLower(e.Description + " " + e.Alt + " " + strings.Join(e.Keywords, " ") + " " + e.Text)
		n := 0
		for _, w := range words {
			if strings.Contains(hay, w) {
				n++
			}
		}
		if n > 0 {
			hits = append(hits, web.Hit{Entry: e, Score: float64(n)})
		}
	}
	slices.SortStableFunc(hits, func(a, b web.Hit) int { return cmp.Compare(b.Score, a.Score) })
	total := len(hits)
	lo := min(q.Offset, total)
	return hits[lo:min(total, lo+cmp.Or(q.Limit, 20))], total, nil
}

// shown is one entry per photo: a person's, else the newest.
func (c *devCatalog) shown(reg, repo string) []web.Entry {
	best := map[string]web.Entry{}
	for _, e := range c.entries {
		if reg != "" && (e.Registry != reg || e.Repository != repo) {
			continue
		}
		k := e.Registry + "/" + e.Repository + "@" + e.Layer
		b, ok := best[k]
		if !ok || (photo.IsPerson(e.Model) && !photo.IsPerson(b.Model)) || (photo.IsPerson(e.Model) == photo.IsPerson(b.Model) && e.Created.After(b.Created)) {
			best[k] = e
		}
	}
	out := make([]web.Entry, 0, len(best))
	for _, e := range best {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b web.Entry) int {
		return cmp.Or(b.Created.Compare(a.Created), strings.Compare(a.Layer, b.Layer))
	})
	return out
}

func (c *devCatalog) Repositories(context.Context) ([]web.Repository, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	by := map[string]*web.Repository{}
	for _, e := range c.shown("", "") {
		k := e.Registry + "/" + e.Repository
		r, ok := by[k]
		if !ok {
			r = &web.Repository{Registry: e.Registry, Repository: e.Repository}
			by[k] = r
		}
		r.Photos++
		if e.Created.After(r.Latest) {
			r.Latest = e.Created
		}
	}
	var out []web.Repository
	for _, r := range by {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b web.Repository) int { return b.Latest.Compare(a.Latest) })
	return out, nil
}

func (c *devCatalog) Photos(_ context.Context, reg, repo string, offset, limit int) ([]web.Entry, int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	all := c.shown(reg, repo)
	lo := min(offset, len(all))
	return all[lo:min(len(all), lo+limit)], len(all), nil
}

func (c *devCatalog) Photo(_ context.Context, reg, repo, digest string) ([]web.Entry, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	manifests := map[string]bool{}
	for _, e := range c.entries {
		if e.Registry == reg && e.Repository == repo && (e.Digest == digest || e.Manifest == digest || e.Layer == digest) {
			manifests[e.Digest] = true
		}
	}
	var out []web.Entry
	for _, e := range c.entries {
		if e.Registry == reg && e.Repository == repo && manifests[e.Digest] {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b web.Entry) int { return b.Created.Compare(a.Created) })
	return out, nil
}

func (c *devCatalog) Wait(ctx context.Context, js jetstream.JetStream) error {
	s, err := js.Stream(ctx, feed.Stream)
	if err != nil {
		return err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return err
	}
	for {
		c.mu.Lock()
		done := c.applied >= info.State.LastSeq
		c.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}
