package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"
)

// ArtifactTypeDescription is the artifactType of regscribe's referrers, and
// the media type of the record they carry.
const ArtifactTypeDescription = "application/vnd.regscribe.description.v1+json"

// Record is the JSON blob a description referrer carries: everything about
// the description, per photo for artifacts with several.
type Record struct {
	// Subject is the digest of the described manifest.
	Subject string `json:"subject"`
	// Model is provider/model.
	Model string `json:"model"`
	// PromptDigest identifies the prompt and schema used.
	PromptDigest string `json:"promptDigest"`
	// Created is when the description was made.
	Created time.Time `json:"created"`
	// Photos are the descriptions, in layer order.
	Photos []PhotoRecord `json:"photos"`
}

// PhotoRecord is the description of one image layer.
type PhotoRecord struct {
	Layer       string   `json:"layer"`
	Title       string   `json:"title,omitempty"`
	Description string   `json:"description"`
	Alt         string   `json:"alt,omitempty"`
	Keywords    []string `json:"keywords,omitempty"`
	// Text is the text visible in the photo (empty when there is none).
	Text string `json:"text,omitempty"`
	// Model is the photo's describer when it is not the record's (a photo
	// of several that a person did not correct keeps its model's words).
	Model string `json:"model,omitempty"`
}

// Referrers lists the manifests that refer to subject, of artifactType (all
// when empty), through the referrers API or, where the registry has none,
// the tag-schema fallback index.
func (c *Client) Referrers(ctx context.Context, repo *remote.Repository, subject ocispec.Descriptor, artifactType string) ([]ocispec.Descriptor, error) {
	var out []ocispec.Descriptor
	err := repo.Referrers(ctx, subject, artifactType, func(refs []ocispec.Descriptor) error {
		out = append(out, refs...)
		return nil
	})
	if err != nil {
		return nil, Classify(fmt.Errorf("list referrers of %s@%s: %w", repo.Reference, subject.Digest, err))
	}
	return out, nil
}

// WriteReferrer attaches rec to subject as a referrer artifact whose
// manifest also carries annotations (so `oras discover` shows them). The
// manifest is built deterministically from rec, so the same description
// gives the same digest: a repeated write finds it listed among the
// subject's referrers and pushes nothing. A referrer that is stored but not
// listed (its fallback index update failed: a 5xx, a crash, a timeout) is
// pushed again, which stores the same bytes again and makes oras-go add it
// to the fallback index.
// Updates of a fallback index are merged within this process by oras-go,
// which is why Client keeps one Repository per repository.
func (c *Client) WriteReferrer(ctx context.Context, repo *remote.Repository, subject ocispec.Descriptor, rec Record, annotations map[string]string) (Written, error) {
	recBytes, err := json.Marshal(rec)
	if err != nil {
		return Written{}, err
	}
	layer := content.NewDescriptorFromBytes(ArtifactTypeDescription, recBytes)
	layer.Annotations = map[string]string{ocispec.AnnotationTitle: "description.json"}
	ann := map[string]string{ocispec.AnnotationCreated: rec.Created.UTC().Format(time.RFC3339)}
	for k, v := range annotations {
		ann[k] = v
	}
	subj := ocispec.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size}
	// The config is the empty JSON blob, typed with the artifact type as
	// well: registries that report a referrer's config media type as its
	// artifactType (go-containerregistry's does) then report the right one.
	config := ocispec.Descriptor{MediaType: ArtifactTypeDescription, Digest: ocispec.DescriptorEmptyJSON.Digest, Size: ocispec.DescriptorEmptyJSON.Size}
	man := ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: ArtifactTypeDescription,
		Config:       config,
		Layers:       []ocispec.Descriptor{layer},
		Subject:      &subj,
		Annotations:  ann,
	}
	manBytes, err := json.Marshal(man)
	if err != nil {
		return Written{}, err
	}
	desc := content.NewDescriptorFromBytes(ocispec.MediaTypeImageManifest, manBytes)
	desc.ArtifactType = ArtifactTypeDescription
	desc.Annotations = ann
	w := Written{Descriptor: desc}
	if w.AlreadyThere, err = c.listed(ctx, repo, subj, desc); err != nil || w.AlreadyThere {
		return w, err
	}
	for _, blob := range []struct {
		d    ocispec.Descriptor
		data []byte
	}{{config, ocispec.DescriptorEmptyJSON.Data}, {layer, recBytes}} {
		ok, err := repo.Blobs().Exists(ctx, blob.d)
		if err == nil && !ok {
			err = repo.Blobs().Push(ctx, blob.d, bytes.NewReader(blob.data))
		}
		if err != nil {
			return Written{}, Classify(fmt.Errorf("push blob %s@%s: %w", repo.Reference, blob.d.Digest, err))
		}
	}
	if err := repo.Manifests().Push(ctx, desc, bytes.NewReader(manBytes)); err != nil {
		return Written{}, Classify(fmt.Errorf("push description referrer %s@%s: %w", repo.Reference, desc.Digest, err))
	}
	return w, nil
}

// listed reports whether the referrer desc is listed among subject's
// referrers (through the referrers API or the fallback index). A referrer
// that is stored but not listed is invisible to `oras discover` and to
// regscribe's own "already described" check, so it is not "already there".
// Listing first also tells oras-go whether the registry has the referrers
// API before anything is pushed, so that it keeps no fallback index on a
// registry that has one.
func (c *Client) listed(ctx context.Context, repo *remote.Repository, subject, desc ocispec.Descriptor) (bool, error) {
	refs, err := c.Referrers(ctx, repo, subject, ArtifactTypeDescription)
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(refs, func(r ocispec.Descriptor) bool { return r.Digest == desc.Digest }), nil
}

// FetchRecord fetches the record a description referrer carries.
func (c *Client) FetchRecord(ctx context.Context, repo *remote.Repository, referrer ocispec.Descriptor) (Record, error) {
	m, err := c.FetchManifest(ctx, repo, referrer.Digest.String())
	if err != nil {
		return Record{}, err
	}
	im, err := ParseImageManifest(m)
	if err != nil {
		return Record{}, err
	}
	for _, l := range im.Layers {
		if l.MediaType != ArtifactTypeDescription {
			continue
		}
		b, err := c.FetchBlob(ctx, repo, l, MaxManifestBytes)
		if err != nil {
			return Record{}, err
		}
		var rec Record
		if err := json.Unmarshal(b, &rec); err != nil {
			return Record{}, fmt.Errorf("decode description record %s: %w", l.Digest, err)
		}
		return rec, nil
	}
	return Record{}, fmt.Errorf("referrer %s carries no description record", referrer.Digest)
}

// Delete removes a manifest; for a referrer, oras-go also takes it out of
// the fallback index where the registry has no referrers API.
func (c *Client) Delete(ctx context.Context, repo *remote.Repository, desc ocispec.Descriptor) error {
	if err := repo.Manifests().Delete(ctx, desc); err != nil {
		return Classify(fmt.Errorf("delete %s@%s: %w", repo.Reference, desc.Digest, err))
	}
	return nil
}
