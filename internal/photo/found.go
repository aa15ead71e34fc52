package photo

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/regscribe/regscribe/internal/fault"
	"github.com/regscribe/regscribe/internal/feed"
	"github.com/regscribe/regscribe/internal/registry"
)

// Found is what one describer said about the photos of one manifest, as
// the registry holds it.
type Found struct {
	// By is the describer's io.regscribe.model: provider/model, or a
	// person ([PersonModel]; "person" for a description that names no
	// model).
	By string
	// Photos are its descriptions, one per photo layer it describes, in
	// layer order.
	Photos []feed.Photo
}

// StoredAnnotation is [feed.Photo.Stored] of a description kept in the
// manifest's annotations; a referrer's is "referrer " + its digest.
const StoredAnnotation = feed.StoredAnnotation

// ReadBack returns the layers of m whose descriptions are read back, in
// layer order: photos (those the caller found to be photos with [Find];
// nil when it read no bytes), the layers of an image media type
// ([Layers]), and every layer that carries a description of its own
// (io.regscribe.description on the layer, whatever its media type:
// regscribe writes one on each photo of a manifest of several, a photo
// found by its bytes too). With none of those, the one layer [ToSniff]
// names, when it names exactly one: the only layer a description of m can
// be of (`oras push REF dune.jpg`, described on the manifest). nil for a
// regscribe description, and for a manifest nothing can be a photo of.
func ReadBack(m ocispec.Manifest, photos []int) []int {
	if m.ArtifactType == registry.ArtifactTypeDescription {
		return nil
	}
	byType, _ := Layers(m)
	out := slices.Concat(photos, byType)
	for i, l := range m.Layers {
		if l.Annotations[registry.AnnotationDescription] != "" {
			out = append(out, i)
		}
	}
	if unsure := ToSniff(m); len(out) == 0 && len(unsure) == 1 {
		out = unsure
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// RecordNeeded reports whether the record of r, a referrer of manifest m,
// must be fetched to know what it says of m's photos ([ReadBack] of
// photos): r is a regscribe description whose annotations (as the
// referrers API or the fallback index lists them) lack the description,
// or m has other than one photo (with several, the annotations hold them
// all joined, not one per layer; with none known, only the record says
// which layers it describes).
func RecordNeeded(m ocispec.Manifest, photos []int, r ocispec.Descriptor) bool {
	if r.ArtifactType != registry.ArtifactTypeDescription {
		return false
	}
	return r.Annotations[registry.AnnotationDescription] == "" || len(ReadBack(m, photos)) != 1
}

// Descriptions reads the descriptions manifest m (whose digest is
// manifest) already has: its io.regscribe.* annotations and each regscribe
// description referrer among referrers (others are ignored), whoever wrote
// them (any model, a person, an older regscribe). It returns one [Found]
// per describer, in the order first seen (annotations first); none when m
// is no photo or nobody described it. Its photos are the layers
// [ReadBack] gives of photos (what the caller found with [Find], or nil):
// a photo pushed with a media type that says nothing is read back too.
//
// Annotations: with one photo, the manifest's (or that layer's own)
// io.regscribe.description, alt, keywords and text describe it; with
// several, each photo layer's own annotations describe that layer (the
// manifest's joined text is not split), and a manifest whose layers carry
// none has its description attributed to its first photo. The model and
// time are the manifest's io.regscribe.model and io.regscribe.created.
//
// Referrers: records holds the records fetched for the referrers that
// [RecordNeeded] names (by referrer digest); a record's photos are matched
// to m's layers by digest. A referrer that needs its record and has none
// in records is left out. Otherwise the referrer's listed annotations
// describe m's one photo.
//
// With several layers that say nothing of their content and no photo known
// among them (none read, none described on its own), only a record's
// photos are read back: they name their layers.
//
// A photo belongs to the describer whose write holds it (the manifest's or
// referrer's io.regscribe.model): a person's correction of one photo of a
// manifest keeps the others' descriptions beside it. Its Model is its own
// when the write names one for it (a layer's io.regscribe.model, a
// record photo's model: the describer of a description kept), else the
// describer.
//
// When one describer has described a photo twice (an annotation and a
// referrer, or two referrers), the newer description (io.regscribe.created)
// is kept, the first seen when they are as new. Title is the layer's
// org.opencontainers.image.title. Descriptions never does I/O.
func Descriptions(manifest string, m ocispec.Manifest, found []int, referrers []ocispec.Descriptor, records map[digest.Digest]registry.Record) []Found {
	photos := ReadBack(m, found)
	if photos == nil && ToSniff(m) == nil {
		return nil // nothing in m can be a photo
	}
	var out []Found
	add := func(by string, ps []feed.Photo) {
		if len(ps) == 0 {
			return
		}
		i := slices.IndexFunc(out, func(f Found) bool { return f.By == by })
		if i < 0 {
			out = append(out, Found{By: by})
			i = len(out) - 1
		}
		for _, p := range ps {
			p.Manifest, p.Model = manifest, cmp.Or(p.Model, by)
			j := slices.IndexFunc(out[i].Photos, func(q feed.Photo) bool { return q.Layer == p.Layer })
			switch {
			case j < 0:
				out[i].Photos = append(out[i].Photos, p)
			case p.Created.After(out[i].Photos[j].Created):
				out[i].Photos[j] = p
			}
		}
	}
	add(describedBy(m.Annotations[registry.AnnotationModel]), fromAnnotations(m, photos))
	for _, r := range referrers {
		if r.ArtifactType != registry.ArtifactTypeDescription {
			continue
		}
		by, ps := fromReferrer(m, found, photos, r, records)
		add(by, ps)
	}
	for i := range out {
		slices.SortStableFunc(out[i].Photos, func(a, b feed.Photo) int {
			return layerIndex(m, a.Layer) - layerIndex(m, b.Layer)
		})
	}
	return out
}

// describedBy is the describer io.regscribe.model names: a description
// without one is a person's.
func describedBy(model string) string {
	if model == "" {
		return PersonModel("")
	}
	return model
}

func fromAnnotations(m ocispec.Manifest, photos []int) []feed.Photo {
	created := parseTime(m.Annotations[registry.AnnotationCreated])
	var out []feed.Photo
	for _, i := range photos {
		if l := m.Layers[i]; l.Annotations[registry.AnnotationDescription] != "" {
			out = append(out, fields(l, l.Annotations, created, StoredAnnotation))
		}
	}
	if len(out) == 0 && len(photos) > 0 && m.Annotations[registry.AnnotationDescription] != "" {
		out = append(out, fields(m.Layers[photos[0]], m.Annotations, created, StoredAnnotation))
	}
	return out
}

func fromReferrer(m ocispec.Manifest, found, photos []int, r ocispec.Descriptor, records map[digest.Digest]registry.Record) (string, []feed.Photo) {
	stored := "referrer " + r.Digest.String()
	by := r.Annotations[registry.AnnotationModel]
	if !RecordNeeded(m, found, r) {
		created := parseTime(r.Annotations[registry.AnnotationCreated])
		if created.IsZero() {
			created = parseTime(r.Annotations[ocispec.AnnotationCreated])
		}
		return describedBy(by), []feed.Photo{fields(m.Layers[photos[0]], r.Annotations, created, stored)}
	}
	rec, ok := records[r.Digest]
	if !ok {
		return describedBy(by), nil
	}
	if by == "" {
		by = rec.Model
	}
	var out []feed.Photo
	for _, p := range rec.Photos {
		i := layerIndex(m, p.Layer)
		if i < 0 || p.Description == "" {
			continue
		}
		out = append(out, feed.Photo{
			Layer: p.Layer, MediaType: m.Layers[i].MediaType, Title: m.Layers[i].Annotations[ocispec.AnnotationTitle],
			Description: p.Description, Alt: p.Alt, Keywords: p.Keywords, Text: p.Text,
			Model: p.Model, Created: rec.Created, Stored: stored,
		})
	}
	return describedBy(by), out
}

// fields reads the description of layer from annotations (the layer's own,
// the manifest's or a referrer's).
func fields(layer ocispec.Descriptor, ann map[string]string, created time.Time, stored string) feed.Photo {
	return feed.Photo{
		Layer:       layer.Digest.String(),
		MediaType:   layer.MediaType,
		Title:       layer.Annotations[ocispec.AnnotationTitle],
		Description: ann[registry.AnnotationDescription],
		Alt:         ann[registry.AnnotationAlt],
		Keywords:    keywords(ann[registry.AnnotationKeywords]),
		Text:        ann[registry.AnnotationText],
		Model:       ann[registry.AnnotationModel],
		Created:     created,
		Stored:      stored,
	}
}

// keywords splits io.regscribe.keywords ("a, b, c").
func keywords(s string) []string {
	var out []string
	for k := range strings.SplitSeq(s, ",") {
		if k = strings.TrimSpace(k); k != "" {
			out = append(out, k)
		}
	}
	return out
}

func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}

func layerIndex(m ocispec.Manifest, layer string) int {
	return slices.IndexFunc(m.Layers, func(l ocispec.Descriptor) bool { return l.Digest.String() == layer })
}

// FetchRecord fetches the record (the JSON layer) of a description
// referrer; an error of kind skip says the referrer is gone.
type FetchRecord func(ctx context.Context, referrer ocispec.Descriptor) (registry.Record, error)

// Read reads the descriptions manifest m (whose digest is manifest, and
// whose photo layers are photos) already has, as [Descriptions] does,
// fetching the records of the referrers whose listed annotations do not
// say enough. A referrer gone meanwhile is left out; one whose record
// cannot be read is an error, never a description silently missing.
func Read(ctx context.Context, manifest string, m ocispec.Manifest, photos []int, referrers []ocispec.Descriptor, fetch FetchRecord) ([]Found, error) {
	records := map[digest.Digest]registry.Record{}
	for _, r := range referrers {
		if !RecordNeeded(m, photos, r) {
			continue
		}
		rec, err := fetch(ctx, r)
		switch {
		case fault.Is(err, fault.KindSkip):
			continue
		case err != nil:
			return nil, fmt.Errorf("read description referrer %s of %s: %w", r.Digest, manifest, err)
		}
		records[r.Digest] = rec
	}
	return Descriptions(manifest, m, photos, referrers, records), nil
}
