package photo_test

import (
	"bytes"
	"errors"
	"image"
	"image/jpeg"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/imageprep"
	"github.com/regscribe/regscribe/internal/photo"
	"github.com/regscribe/regscribe/internal/registry"
)

// file is a layer as `oras push REF title` makes it: oras's default media
// type, the file name as its title.
func file(title, mediaType string) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromString(title), Size: 10,
		Annotations: map[string]string{ocispec.AnnotationTitle: title}}
}

func TestToSniff(t *testing.T) {
	t.Parallel()
	const tar = ocispec.MediaTypeImageLayer
	empty := ocispec.Descriptor{MediaType: ocispec.MediaTypeEmptyJSON}
	for name, tc := range map[string]struct {
		m    ocispec.Manifest
		want []int
	}{
		"oras's default push": {m: ocispec.Manifest{Config: empty, Layers: []ocispec.Descriptor{file("dune.jpg", tar)}}, want: []int{0}},
		"oras 1.0's unknown config": {m: ocispec.Manifest{Config: ocispec.Descriptor{MediaType: "application/vnd.unknown.config.v1+json"},
			Layers: []ocispec.Descriptor{file("dune.jpg", tar), file("notes.md", "text/markdown"), file("b.bin", "application/octet-stream"), file("c", "")}},
			want: []int{0, 2, 3}},
		"an artifact of its own type": {m: ocispec.Manifest{ArtifactType: "application/vnd.example.photo", Config: empty,
			Layers: []ocispec.Descriptor{file("dune.jpg", "application/octet-stream")}}, want: []int{0}},
		"a container image": {m: ocispec.Manifest{Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig},
			Layers: []ocispec.Descriptor{file("rootfs", tar), file("etc", tar)}}},
		"a container image of docker's config": {m: ocispec.Manifest{Config: ocispec.Descriptor{MediaType: "application/vnd.docker.container.image.v1+json"},
			Layers: []ocispec.Descriptor{file("rootfs", tar)}}},
		"a photo by its media type": {m: ocispec.Manifest{Config: empty, Layers: []ocispec.Descriptor{file("a.jpg", "image/jpeg"), file("b.jpg", tar)}}},
		"a regscribe description": {m: ocispec.Manifest{ArtifactType: registry.ArtifactTypeDescription, Config: empty,
			Layers: []ocispec.Descriptor{file("record.json", "application/octet-stream")}}},
		"an image type regscribe does not prepare says nothing": {m: ocispec.Manifest{Config: empty,
			Layers: []ocispec.Descriptor{file("dune.jpg", "image/jpg"), file("notes.txt", "image/x-foo"), file("moon.jxl", "image/jxl"), file("b.jpg", "image/JPEG"), file("c.svg", "image/svg+xml")}},
			want: []int{0, 1, 2, 3, 4}},
		"image/jpg beside image/jpeg: a photo by its media type": {m: ocispec.Manifest{Config: empty,
			Layers: []ocispec.Descriptor{file("a.jpg", "image/jpeg"), file("b.jpg", "image/jpg")}}},
		"layers that say what they are": {m: ocispec.Manifest{Config: empty, Layers: []ocispec.Descriptor{file("sbom.json", "application/spdx+json")}}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, photo.ToSniff(tc.m))
		})
	}
}

// TestSniffed: the bytes decide, not the title; a manifest with no photo
// says why, layer by layer.
func TestSniffed(t *testing.T) {
	t.Parallel()
	const tar = ocispec.MediaTypeImageLayer
	var buf bytes.Buffer
	require.NoError(t, jpeg.Encode(&buf, image.NewGray(image.Rect(0, 0, 8, 8)), nil))
	photoBytes := imageprep.Sniff(buf.Bytes())
	textBytes := imageprep.Sniff([]byte("Dune is a 1965 novel by Frank Herbert.\n"))
	jxl := imageprep.Sniff([]byte("\xff\x0a\xfa\x7f\x01\x90\x08"))
	config := ocispec.Descriptor{MediaType: ocispec.MediaTypeEmptyJSON}

	// A title that lies: photo.jpg holding text.
	liar := ocispec.Manifest{Config: config, Layers: []ocispec.Descriptor{file("photo.jpg", tar)}}
	photos, why := photo.Sniffed(liar, map[int]imageprep.Sniffed{0: textBytes})
	require.Nil(t, photos)
	require.Equal(t, `not an image: "photo.jpg" (application/vnd.oci.image.layer.v1.tar) holds text (text/plain; charset=utf-8), not a photo regscribe can describe`, why)

	// And the other way round: a JPEG named dune.txt is a photo.
	named := ocispec.Manifest{Config: config, Layers: []ocispec.Descriptor{file("dune.txt", tar)}}
	photos, why = photo.Sniffed(named, map[int]imageprep.Sniffed{0: photoBytes})
	require.Equal(t, []int{0}, photos)
	require.Empty(t, why)

	// Several layers: the photos among them, in layer order.
	mixed := ocispec.Manifest{Config: config, Layers: []ocispec.Descriptor{file("readme.txt", tar), file("a", "application/octet-stream"), file("b", "")}}
	photos, _ = photo.Sniffed(mixed, map[int]imageprep.Sniffed{0: textBytes, 1: photoBytes, 2: photoBytes})
	require.Equal(t, []int{1, 2}, photos)

	// An image of a format regscribe does not describe: how to push it so
	// it does. No title, no media type: the layer's digest names it.
	untitled := ocispec.Descriptor{Digest: digest.FromString("x"), Size: 7}
	other := ocispec.Manifest{Config: config, Layers: []ocispec.Descriptor{file("moon.jxl", tar), untitled}}
	photos, why = photo.Sniffed(other, map[int]imageprep.Sniffed{0: jxl})
	require.Nil(t, photos)
	require.Equal(t, "not an image: \"moon.jxl\" (application/vnd.oci.image.layer.v1.tar) holds JPEG XL, which regscribe cannot describe: "+
		"convert it to JPEG and push it as `moon.jpg:image/jpeg`; layer "+untitled.Digest.String()+" (no media type) was not read", why)
}

// TestFind: the whole decision, with the caller's read of the first bytes:
// media types first, bytes only of the layers that say nothing, never of
// a container image's, and a read that fails is an error, not a verdict.
func TestFind(t *testing.T) {
	t.Parallel()
	const tar = ocispec.MediaTypeImageLayer
	var buf bytes.Buffer
	require.NoError(t, jpeg.Encode(&buf, image.NewGray(image.Rect(0, 0, 8, 8)), nil))
	heads := map[digest.Digest][]byte{
		file("dune.jpg", tar).Digest:          buf.Bytes(),
		file("notes.txt", "image/jpg").Digest: []byte("Dune is a novel.\n"),
	}
	var read []string
	head := func(l ocispec.Descriptor) ([]byte, error) {
		read = append(read, l.Annotations[ocispec.AnnotationTitle])
		b, ok := heads[l.Digest]
		if !ok {
			return nil, errors.New("registry down")
		}
		return b, nil
	}
	config := ocispec.Descriptor{MediaType: ocispec.MediaTypeEmptyJSON}
	for name, tc := range map[string]struct {
		m      ocispec.Manifest
		photos []int
		why    string
		read   []string
		err    string
	}{
		"by media type: nothing read": {m: ocispec.Manifest{Config: config, Layers: []ocispec.Descriptor{file("a", "image/png"), file("dune.jpg", tar)}}, photos: []int{0}},
		"by bytes": {m: ocispec.Manifest{Config: config, Layers: []ocispec.Descriptor{file("notes.txt", "image/jpg"), file("dune.jpg", tar)}},
			photos: []int{1}, read: []string{"notes.txt", "dune.jpg"}},
		"refused": {m: ocispec.Manifest{Config: config, Layers: []ocispec.Descriptor{file("notes.txt", "image/jpg")}}, read: []string{"notes.txt"},
			why: `not an image: "notes.txt" (image/jpg) holds text (text/plain; charset=utf-8), not a photo regscribe can describe`},
		"a container image: nothing read": {m: ocispec.Manifest{Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig},
			Layers: []ocispec.Descriptor{file("dune.jpg", tar)}}, why: "no image layer"},
		"a read that fails": {m: ocispec.Manifest{Config: config, Layers: []ocispec.Descriptor{file("gone", tar)}}, read: []string{"gone"}, err: "registry down"},
	} {
		read = nil
		photos, why, err := photo.Find(tc.m, head)
		if tc.err != "" {
			require.ErrorContains(t, err, tc.err, name)
		} else {
			require.NoError(t, err, name)
		}
		require.Equal(t, tc.photos, photos, name)
		require.Equal(t, tc.why, why, name)
		require.Equal(t, tc.read, read, name)
	}
}
