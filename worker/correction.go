package worker

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/regscribe/regscribe/internal/fault"
	"github.com/regscribe/regscribe/internal/photo"
	"github.com/regscribe/regscribe/internal/queue"
	"github.com/regscribe/regscribe/internal/vision"
)

// corrected is what a correction job writes for c: the person's
// description of the layer it names (io.regscribe.model naming the
// person), and for a manifest of several photos the descriptions the other
// photos have now (the one that decided c's verdict first), so they keep
// them. A correction naming no photo of c is a permanent failure.
func (w *Worker) corrected(ctx context.Context, repo *remote.Repository, c candidate, corr queue.Correction) (said, error) {
	ref := c.m.Descriptor.Digest.String()
	k := slices.IndexFunc(c.photos, func(i int) bool { return c.im.Layers[i].Digest.String() == corr.Layer })
	switch {
	case corr.Layer == "" && len(c.photos) == 1:
		k = 0
	case corr.Layer == "":
		return said{}, fault.Permanent(fmt.Errorf("correction of %s names no layer, and it holds %d photos: say which one it describes", ref, len(c.photos)))
	case k < 0:
		return said{}, fault.Permanent(fmt.Errorf("correction names layer %s, which is no photo of %s", corr.Layer, ref))
	}
	d := vision.CleanPerson(vision.Description{Text: corr.Description, Alt: corr.Alt, Keywords: corr.Keywords, VisibleText: corr.Text})
	if d.Text == "" {
		return said{}, fault.Permanent(fmt.Errorf("correction of %s has no description", ref))
	}
	d.Model, d.Created = photo.PersonModel(corr.By), cmp.Or(corr.At, time.Now()).UTC()
	kept := map[string]vision.Description{}
	if len(c.photos) > 1 {
		var err error
		if kept, err = w.kept(ctx, repo, c); err != nil {
			return said{}, err
		}
	}
	s := said{by: d.Model, several: len(c.photos) > 1}
	for n, i := range c.photos {
		old, ok := kept[c.im.Layers[i].Digest.String()]
		switch {
		case n == k:
			s.photos, s.ds = append(s.photos, i), append(s.ds, d)
		case ok:
			s.photos, s.ds = append(s.photos, i), append(s.ds, old)
		}
	}
	return s, nil
}

// kept returns the descriptions c's photos have now, by layer digest: from
// the description that decided c's verdict, then from the others.
func (w *Worker) kept(ctx context.Context, repo *remote.Repository, c candidate) (map[string]vision.Description, error) {
	found, err := w.registry.Descriptions(ctx, repo, c.m, func(im ocispec.Manifest) []int { return photo.ReadBack(im, c.photos) })
	if err != nil {
		return nil, err
	}
	where := func(i int) string {
		if r := found[i].Referrer; r != nil {
			return "referrer " + r.Digest.String()
		}
		return found[i].StoredAs
	}
	order := make([]int, len(found))
	for i := range found {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return cmpBool(where(b) == c.verdict.Where, where(a) == c.verdict.Where)
	})
	out := map[string]vision.Description{}
	for _, i := range order {
		rec := found[i].Record
		for _, p := range rec.Photos {
			if _, ok := out[p.Layer]; ok || p.Layer == "" || p.Description == "" {
				continue
			}
			out[p.Layer] = vision.Description{Text: p.Description, Alt: p.Alt, Keywords: p.Keywords, VisibleText: p.Text,
				Model: cmp.Or(p.Model, rec.Model), Created: rec.Created}
		}
	}
	return out, nil
}

// cmpBool orders true before false.
func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// holds reports whether layer is one of c's photo layers.
func holds(c candidate, layer string) bool {
	return slices.ContainsFunc(c.photos, func(i int) bool { return c.im.Layers[i].Digest.String() == layer })
}
