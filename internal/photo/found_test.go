package photo_test

import (
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/feed"
	"github.com/regscribe/regscribe/internal/photo"
	"github.com/regscribe/regscribe/internal/registry"
)

func layer(name string) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: "image/jpeg", Digest: digest.FromString(name), Size: 10,
		Annotations: map[string]string{ocispec.AnnotationTitle: name}}
}

func TestDescriptions(t *testing.T) {
	t.Parallel()
	const manifest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	cat, dog, bird := layer("cat.jpg"), layer("dog.jpg"), layer("bird.jpg")
	t1 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	t2 := t1.Add(time.Hour)
	one := ocispec.Manifest{Layers: []ocispec.Descriptor{cat}, Annotations: map[string]string{
		registry.AnnotationDescription: "A cat on a mat.", registry.AnnotationAlt: "Cat.", registry.AnnotationKeywords: "cat, mat,  ",
		registry.AnnotationText: "WELCOME", registry.AnnotationModel: "ollama/a", registry.AnnotationCreated: t1.Format(time.RFC3339),
	}}
	other := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, ArtifactType: registry.ArtifactTypeDescription,
		Digest: digest.FromString("referrer b"), Annotations: map[string]string{
			registry.AnnotationDescription: "A tabby cat.", registry.AnnotationModel: "openai/b",
			registry.AnnotationCreated: t2.Format(time.RFC3339), registry.AnnotationKeywords: "tabby",
		}}
	signature := ocispec.Descriptor{ArtifactType: "application/vnd.example.signature", Digest: digest.FromString("sig"),
		Annotations: map[string]string{registry.AnnotationDescription: "not a description", registry.AnnotationModel: "x"}}
	two := ocispec.Manifest{Layers: []ocispec.Descriptor{cat, dog}, Annotations: map[string]string{
		registry.AnnotationDescription: "cat.jpg: A cat.\ndog.jpg: A dog.", registry.AnnotationModel: "ollama/a",
	}}
	two.Layers[1].Annotations = map[string]string{ocispec.AnnotationTitle: "dog.jpg", registry.AnnotationDescription: "A dog."}
	joined := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, ArtifactType: registry.ArtifactTypeDescription,
		Digest: digest.FromString("referrer joined"), Annotations: map[string]string{
			registry.AnnotationDescription: "cat.jpg: A cat.\ndog.jpg: A dog.",
		}}
	record := registry.Record{Model: "openai/b", Created: t2, Photos: []registry.PhotoRecord{
		{Layer: dog.Digest.String(), Description: "A brown dog.", Text: "BEWARE"},
		{Layer: cat.Digest.String(), Description: "A grey cat.", Keywords: []string{"cat"}},
		{Layer: digest.FromString("elsewhere").String(), Description: "Not in this manifest."},
	}}

	// Files pushed with a media type that says nothing.
	const tar = ocispec.MediaTypeImageLayer
	empty := ocispec.Descriptor{MediaType: ocispec.MediaTypeEmptyJSON}
	dune, notes, moon := file("dune.jpg", tar), file("notes.txt", tar), file("moon.jpg", "image/jpg")
	described := func(l ocispec.Descriptor, text string) ocispec.Descriptor {
		l.Annotations = map[string]string{ocispec.AnnotationTitle: l.Annotations[ocispec.AnnotationTitle], registry.AnnotationDescription: text}
		return l
	}

	for name, tc := range map[string]struct {
		m         ocispec.Manifest
		found     []int // what the caller's photo.Find found
		referrers []ocispec.Descriptor
		records   map[digest.Digest]registry.Record
		want      []photo.Found
	}{
		"annotation by one model, referrer by another": {
			m: one, referrers: []ocispec.Descriptor{signature, other},
			want: []photo.Found{
				{By: "ollama/a", Photos: []feed.Photo{{Manifest: manifest, Layer: cat.Digest.String(), MediaType: "image/jpeg", Title: "cat.jpg",
					Description: "A cat on a mat.", Alt: "Cat.", Keywords: []string{"cat", "mat"}, Text: "WELCOME", Model: "ollama/a", Created: t1, Stored: "annotation"}}},
				{By: "openai/b", Photos: []feed.Photo{{Manifest: manifest, Layer: cat.Digest.String(), MediaType: "image/jpeg", Title: "cat.jpg",
					Description: "A tabby cat.", Keywords: []string{"tabby"}, Model: "openai/b", Created: t2, Stored: "referrer " + other.Digest.String()}}},
			},
		},
		"a person's annotation names no model": {
			m: ocispec.Manifest{Layers: []ocispec.Descriptor{cat}, Annotations: map[string]string{registry.AnnotationDescription: "Our cat Tom."}},
			want: []photo.Found{{By: "person", Photos: []feed.Photo{{Manifest: manifest, Layer: cat.Digest.String(), MediaType: "image/jpeg",
				Title: "cat.jpg", Description: "Our cat Tom.", Model: "person", Stored: "annotation"}}}},
		},
		"one describer twice: the newer description": {
			m: one, referrers: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageManifest, ArtifactType: registry.ArtifactTypeDescription,
				Digest: digest.FromString("referrer a"), Annotations: map[string]string{registry.AnnotationDescription: "A newer cat.",
					registry.AnnotationModel: "ollama/a", ocispec.AnnotationCreated: t2.Format(time.RFC3339)}}},
			want: []photo.Found{{By: "ollama/a", Photos: []feed.Photo{{Manifest: manifest, Layer: cat.Digest.String(), MediaType: "image/jpeg",
				Title: "cat.jpg", Description: "A newer cat.", Model: "ollama/a", Created: t2, Stored: "referrer " + digest.FromString("referrer a").String()}}}},
		},
		"several photos: layer annotations, and a referrer's record": {
			m: two, referrers: []ocispec.Descriptor{joined}, records: map[digest.Digest]registry.Record{joined.Digest: record},
			want: []photo.Found{
				{By: "ollama/a", Photos: []feed.Photo{{Manifest: manifest, Layer: dog.Digest.String(), MediaType: "image/jpeg", Title: "dog.jpg",
					Description: "A dog.", Model: "ollama/a", Stored: "annotation"}}},
				{By: "openai/b", Photos: []feed.Photo{
					{Manifest: manifest, Layer: cat.Digest.String(), MediaType: "image/jpeg", Title: "cat.jpg", Description: "A grey cat.",
						Keywords: []string{"cat"}, Model: "openai/b", Created: t2, Stored: "referrer " + joined.Digest.String()},
					{Manifest: manifest, Layer: dog.Digest.String(), MediaType: "image/jpeg", Title: "dog.jpg", Description: "A brown dog.",
						Text: "BEWARE", Model: "openai/b", Created: t2, Stored: "referrer " + joined.Digest.String()},
				}},
			},
		},
		"a person's correction keeps another photo's description, with its own model": {
			m: ocispec.Manifest{Layers: []ocispec.Descriptor{cat, {MediaType: "image/jpeg", Digest: dog.Digest, Annotations: map[string]string{
				ocispec.AnnotationTitle: "dog.jpg", registry.AnnotationDescription: "A dog.", registry.AnnotationModel: "ollama/a",
			}}, bird}, Annotations: map[string]string{registry.AnnotationModel: "person:ann", registry.AnnotationCreated: t2.Format(time.RFC3339)}},
			referrers: []ocispec.Descriptor{joined},
			records: map[digest.Digest]registry.Record{joined.Digest: {Model: "person:ann", Created: t1, Photos: []registry.PhotoRecord{
				{Layer: cat.Digest.String(), Description: "Our cat Tom."},
				{Layer: dog.Digest.String(), Description: "A brown dog.", Model: "openai/b"},
				{Layer: bird.Digest.String(), Description: "A robin.", Model: "openai/b"},
			}}},
			want: []photo.Found{{By: "person:ann", Photos: []feed.Photo{
				{Manifest: manifest, Layer: cat.Digest.String(), MediaType: "image/jpeg", Title: "cat.jpg", Description: "Our cat Tom.",
					Model: "person:ann", Created: t1, Stored: "referrer " + joined.Digest.String()},
				{Manifest: manifest, Layer: dog.Digest.String(), MediaType: "image/jpeg", Title: "dog.jpg", Description: "A dog.",
					Model: "ollama/a", Created: t2, Stored: "annotation"},
				{Manifest: manifest, Layer: bird.Digest.String(), MediaType: "image/jpeg", Title: "bird.jpg", Description: "A robin.",
					Model: "openai/b", Created: t1, Stored: "referrer " + joined.Digest.String()},
			}}},
		},
		"several photos, a record not fetched": {
			m: two, referrers: []ocispec.Descriptor{joined},
			want: []photo.Found{{By: "ollama/a", Photos: []feed.Photo{{Manifest: manifest, Layer: dog.Digest.String(), MediaType: "image/jpeg",
				Title: "dog.jpg", Description: "A dog.", Model: "ollama/a", Stored: "annotation"}}}},
		},
		"several photos described on the manifest only: the first photo": {
			m: ocispec.Manifest{Layers: []ocispec.Descriptor{cat, dog}, Annotations: map[string]string{registry.AnnotationDescription: "Two pets."}},
			want: []photo.Found{{By: "person", Photos: []feed.Photo{{Manifest: manifest, Layer: cat.Digest.String(), MediaType: "image/jpeg",
				Title: "cat.jpg", Description: "Two pets.", Model: "person", Stored: "annotation"}}}},
		},
		"oras's default media type, described on the manifest: its one layer": {
			m: ocispec.Manifest{Config: empty, Layers: []ocispec.Descriptor{dune}, Annotations: map[string]string{
				registry.AnnotationDescription: "Sand dunes.", registry.AnnotationModel: "ollama/a"}},
			want: []photo.Found{{By: "ollama/a", Photos: []feed.Photo{{Manifest: manifest, Layer: dune.Digest.String(), MediaType: tar,
				Title: "dune.jpg", Description: "Sand dunes.", Model: "ollama/a", Stored: "annotation"}}}},
		},
		"several photos of media types that say nothing: each layer's own description": {
			m: ocispec.Manifest{Config: empty, Layers: []ocispec.Descriptor{described(dune, "Sand dunes."), notes, described(moon, "The moon.")},
				Annotations: map[string]string{registry.AnnotationDescription: "dune.jpg: Sand dunes.\nmoon.jpg: The moon.", registry.AnnotationModel: "ollama/a"}},
			want: []photo.Found{{By: "ollama/a", Photos: []feed.Photo{
				{Manifest: manifest, Layer: dune.Digest.String(), MediaType: tar, Title: "dune.jpg", Description: "Sand dunes.", Model: "ollama/a", Stored: "annotation"},
				{Manifest: manifest, Layer: moon.Digest.String(), MediaType: "image/jpg", Title: "moon.jpg", Description: "The moon.", Model: "ollama/a", Stored: "annotation"},
			}}},
		},
		"one photo among files that say nothing, described on the manifest: the photo the caller found": {
			m: ocispec.Manifest{Config: empty, Layers: []ocispec.Descriptor{notes, dune}, Annotations: map[string]string{
				registry.AnnotationDescription: "Sand dunes.", registry.AnnotationModel: "ollama/a"}},
			found: []int{1},
			want: []photo.Found{{By: "ollama/a", Photos: []feed.Photo{{Manifest: manifest, Layer: dune.Digest.String(), MediaType: tar,
				Title: "dune.jpg", Description: "Sand dunes.", Model: "ollama/a", Stored: "annotation"}}}},
		},
		"one photo among files that say nothing, unread: the referrer's record names it": {
			m: ocispec.Manifest{Config: empty, Layers: []ocispec.Descriptor{notes, dune}}, referrers: []ocispec.Descriptor{other},
			records: map[digest.Digest]registry.Record{other.Digest: {Model: "openai/b", Created: t2, Photos: []registry.PhotoRecord{
				{Layer: dune.Digest.String(), Description: "Sand dunes at dusk."}}}},
			want: []photo.Found{{By: "openai/b", Photos: []feed.Photo{{Manifest: manifest, Layer: dune.Digest.String(), MediaType: tar,
				Title: "dune.jpg", Description: "Sand dunes at dusk.", Model: "openai/b", Created: t2, Stored: "referrer " + other.Digest.String()}}}},
		},
		"one photo among files that say nothing, unread, described on the manifest: not said of which": {
			m: ocispec.Manifest{Config: empty, Layers: []ocispec.Descriptor{notes, dune}, Annotations: map[string]string{
				registry.AnnotationDescription: "Sand dunes.", registry.AnnotationModel: "ollama/a"}},
		},
		"a container image: its layers are no photos": {
			m:         ocispec.Manifest{Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig}, Layers: []ocispec.Descriptor{dune}, Annotations: one.Annotations},
			referrers: []ocispec.Descriptor{other},
		},
		"not described": {m: ocispec.Manifest{Layers: []ocispec.Descriptor{cat}}, referrers: []ocispec.Descriptor{signature}},
		"no photo": {
			m:         ocispec.Manifest{Layers: []ocispec.Descriptor{{MediaType: "application/vnd.oci.image.layer.v1.tar+gzip", Digest: digest.FromString("fs")}}, Annotations: one.Annotations},
			referrers: []ocispec.Descriptor{other},
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, photo.Descriptions(manifest, tc.m, tc.found, tc.referrers, tc.records))
		})
	}
}

func TestRecordNeeded(t *testing.T) {
	t.Parallel()
	cat, dog := layer("cat.jpg"), layer("dog.jpg")
	described := ocispec.Descriptor{ArtifactType: registry.ArtifactTypeDescription, Annotations: map[string]string{registry.AnnotationDescription: "A cat."}}
	bare := ocispec.Descriptor{ArtifactType: registry.ArtifactTypeDescription}
	signature := ocispec.Descriptor{ArtifactType: "application/vnd.example.signature"}
	one := ocispec.Manifest{Layers: []ocispec.Descriptor{cat}}
	two := ocispec.Manifest{Layers: []ocispec.Descriptor{cat, dog}}
	require.False(t, photo.RecordNeeded(one, nil, described), "the listed annotations describe the one photo")
	require.True(t, photo.RecordNeeded(one, nil, bare), "listed without the description")
	require.True(t, photo.RecordNeeded(two, nil, described), "several photos: the annotations hold them joined")
	require.False(t, photo.RecordNeeded(two, nil, signature), "not a regscribe description")
	files := ocispec.Manifest{Layers: []ocispec.Descriptor{file("notes.txt", ocispec.MediaTypeImageLayer), file("dune.jpg", ocispec.MediaTypeImageLayer)}}
	require.True(t, photo.RecordNeeded(files, nil, described), "files that say nothing, none read: only the record names the photo")
	require.False(t, photo.RecordNeeded(files, []int{1}, described), "the caller read them: one photo")
	require.False(t, photo.RecordNeeded(ocispec.Manifest{Layers: files.Layers[1:]}, nil, described), "one file: it is the photo described")
}
