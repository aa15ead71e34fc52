package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote"
)

// Found is one description of a photo manifest, wherever it is stored.
type Found struct {
	// StoredAs is "annotation" or "referrer".
	StoredAs string `json:"storedAs"`
	// Referrer is the referrer manifest, for StoredAs "referrer".
	Referrer *ocispec.Descriptor `json:"referrer,omitempty"`
	// Record is the description.
	Record Record `json:"record"`
}

// Photos names the photo layers of an image manifest whose descriptions
// are read back, by index in layer order (package photo decides:
// photo.ReadBack).
type Photos func(ocispec.Manifest) []int

// Descriptions returns every regscribe description of the manifest m (for an
// index, of each child): its annotations and its description referrers.
// photos names each manifest's photo layers: the annotations of one photo
// are its description, of several each layer's own.
func (c *Client) Descriptions(ctx context.Context, repo *remote.Repository, m Manifest, photos Photos) ([]Found, error) {
	if m.Descriptor.MediaType == ocispec.MediaTypeImageIndex {
		var idx ocispec.Index
		if err := json.Unmarshal(m.Raw, &idx); err != nil {
			return nil, fmt.Errorf("decode index %s: %w", m.Descriptor.Digest, err)
		}
		var all []Found
		for _, child := range idx.Manifests {
			if child.MediaType != ocispec.MediaTypeImageManifest {
				continue
			}
			cm, err := c.FetchManifest(ctx, repo, child.Digest.String())
			if err != nil {
				return nil, err
			}
			found, err := c.Descriptions(ctx, repo, cm, photos)
			if err != nil {
				return nil, err
			}
			all = append(all, found...)
		}
		return all, nil
	}
	im, err := ParseImageManifest(m)
	if err != nil {
		return nil, err
	}
	var out []Found
	if text := im.Annotations[AnnotationDescription]; text != "" {
		created, _ := time.Parse(time.RFC3339, im.Annotations[AnnotationCreated])
		rec := Record{Subject: m.Descriptor.Digest.String(), Model: im.Annotations[AnnotationModel], Created: created}
		var layers []ocispec.Descriptor
		for _, i := range photos(im) {
			layers = append(layers, im.Layers[i])
		}
		if len(layers) == 1 || len(layers) == 0 {
			rec.Photos = []PhotoRecord{photoRecord(im.Annotations, text)}
			if len(layers) == 1 {
				rec.Photos[0].Layer = layers[0].Digest.String()
				rec.Photos[0].Title = layers[0].Annotations[ocispec.AnnotationTitle]
			}
		} else {
			for _, l := range layers {
				p := photoRecord(l.Annotations, l.Annotations[AnnotationDescription])
				p.Layer, p.Title, p.Model = l.Digest.String(), l.Annotations[ocispec.AnnotationTitle], l.Annotations[AnnotationModel]
				rec.Photos = append(rec.Photos, p)
			}
		}
		out = append(out, Found{StoredAs: "annotation", Record: rec})
	}
	refs, err := c.Referrers(ctx, repo, m.Descriptor, ArtifactTypeDescription)
	if err != nil {
		return nil, err
	}
	for _, r := range refs {
		rec, err := c.FetchRecord(ctx, repo, r)
		if err != nil {
			return nil, err
		}
		r := r
		out = append(out, Found{StoredAs: "referrer", Referrer: &r, Record: rec})
	}
	return out, nil
}

func photoRecord(ann map[string]string, text string) PhotoRecord {
	p := PhotoRecord{Description: text, Alt: ann[AnnotationAlt], Text: ann[AnnotationText]}
	for _, k := range strings.Split(ann[AnnotationKeywords], ",") {
		if k = strings.TrimSpace(k); k != "" {
			p.Keywords = append(p.Keywords, k)
		}
	}
	return p
}
