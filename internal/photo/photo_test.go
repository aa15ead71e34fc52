package photo_test

import (
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/photo"
	"github.com/regscribe/regscribe/internal/registry"
)

const model = "ollama/qwen2.5vl:3b"

func annotated(by string) map[string]string {
	a := map[string]string{registry.AnnotationDescription: "A cat on a mat."}
	if by != "" {
		a[registry.AnnotationModel] = by
	}
	return a
}

func referrer(by string) ocispec.Descriptor {
	d := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, ArtifactType: registry.ArtifactTypeDescription,
		Digest: digest.FromString(by), Annotations: map[string]string{registry.AnnotationDescription: "A cat."}}
	if by != "" {
		d.Annotations[registry.AnnotationModel] = by
	}
	return d
}

func TestDescribed(t *testing.T) {
	t.Parallel()
	signature := ocispec.Descriptor{ArtifactType: "application/vnd.example.signature", Digest: digest.FromString("sig"),
		Annotations: map[string]string{registry.AnnotationModel: "person:mallory"}}
	type want struct {
		by     photo.By
		who    string
		action photo.Action
	}
	cases := []struct {
		name string
		ann  map[string]string
		refs []ocispec.Descriptor
		// want per policy: Keep, Replace, Again, Forced.
		want [4]want
	}{
		{"nothing", nil, nil, [4]want{
			{photo.ByNobody, "", photo.Describe}, {photo.ByNobody, "", photo.Describe},
			{photo.ByNobody, "", photo.Describe}, {photo.ByNobody, "", photo.Describe}}},
		{"another artifact's referrer is no description", nil, []ocispec.Descriptor{signature}, [4]want{
			{photo.ByNobody, "", photo.Describe}, {photo.ByNobody, "", photo.Describe},
			{photo.ByNobody, "", photo.Describe}, {photo.ByNobody, "", photo.Describe}}},
		{"annotation by this model", annotated(model), nil, [4]want{
			{photo.ByThisModel, model, photo.Skip}, {photo.ByThisModel, model, photo.Skip},
			{photo.ByThisModel, model, photo.DescribeUnlessOwn}, {photo.ByThisModel, model, photo.Describe}}},
		{"referrer by this model", nil, []ocispec.Descriptor{referrer(model)}, [4]want{
			{photo.ByThisModel, model, photo.Skip}, {photo.ByThisModel, model, photo.Skip},
			{photo.ByThisModel, model, photo.Describe}, {photo.ByThisModel, model, photo.Describe}}},
		{"annotation by another model", annotated("ollama/llava:7b"), nil, [4]want{
			{photo.ByOtherModel, "ollama/llava:7b", photo.Skip}, {photo.ByOtherModel, "ollama/llava:7b", photo.Describe},
			{photo.ByOtherModel, "ollama/llava:7b", photo.Describe}, {photo.ByOtherModel, "ollama/llava:7b", photo.Describe}}},
		{"referrer by another model sits beside this model's", nil, []ocispec.Descriptor{referrer("openai/gpt-4o")}, [4]want{
			{photo.ByOtherModel, "openai/gpt-4o", photo.Describe}, {photo.ByOtherModel, "openai/gpt-4o", photo.Describe},
			{photo.ByOtherModel, "openai/gpt-4o", photo.Describe}, {photo.ByOtherModel, "openai/gpt-4o", photo.Describe}}},
		{"annotation by a named person", annotated("person:alice"), nil, [4]want{
			{photo.ByPerson, "person:alice", photo.Skip}, {photo.ByPerson, "person:alice", photo.Skip},
			{photo.ByPerson, "person:alice", photo.Skip}, {photo.ByPerson, "person:alice", photo.Describe}}},
		{"annotation without a model is a person's", annotated(""), nil, [4]want{
			{photo.ByPerson, "", photo.Skip}, {photo.ByPerson, "", photo.Skip},
			{photo.ByPerson, "", photo.Skip}, {photo.ByPerson, "", photo.Describe}}},
		{"a person's referrer beats this model's annotation", annotated(model), []ocispec.Descriptor{referrer("person")}, [4]want{
			{photo.ByPerson, "person", photo.Skip}, {photo.ByPerson, "person", photo.Skip},
			{photo.ByPerson, "person", photo.Skip}, {photo.ByPerson, "person", photo.Describe}}},
		{"this model's referrer beats another's annotation", annotated("ollama/llava:7b"), []ocispec.Descriptor{referrer(model)}, [4]want{
			{photo.ByThisModel, model, photo.Skip}, {photo.ByThisModel, model, photo.Skip},
			{photo.ByThisModel, model, photo.Describe}, {photo.ByThisModel, model, photo.Describe}}},
		{"another's annotation beats another's referrer", annotated("ollama/llava:7b"), []ocispec.Descriptor{referrer("openai/gpt-4o")}, [4]want{
			{photo.ByOtherModel, "ollama/llava:7b", photo.Skip}, {photo.ByOtherModel, "ollama/llava:7b", photo.Describe},
			{photo.ByOtherModel, "ollama/llava:7b", photo.Describe}, {photo.ByOtherModel, "ollama/llava:7b", photo.Describe}}},
		{"a model named like a person is not one", annotated("personal/vision"), nil, [4]want{
			{photo.ByOtherModel, "personal/vision", photo.Skip}, {photo.ByOtherModel, "personal/vision", photo.Describe},
			{photo.ByOtherModel, "personal/vision", photo.Describe}, {photo.ByOtherModel, "personal/vision", photo.Describe}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for i, p := range []photo.Policy{photo.Keep, photo.Replace, photo.Again, photo.Forced} {
				v := photo.Described(tc.ann, tc.refs, model, p)
				got := want{v.By, v.Who, v.Action}
				require.Equal(t, tc.want[i], got, "policy %s: %s", p, v.Reason)
				require.NotEmpty(t, v.Reason)
				require.Equal(t, p == photo.Again || p == photo.Forced, v.Fresh, "policy %s: only Again and Forced ask the model anew", p)
				if v.By != photo.ByNobody {
					require.NotEmpty(t, v.Where)
				}
				// A Skip from the annotations alone stands whatever the referrers.
				if alone := photo.Described(tc.ann, nil, model, p); alone.Action == photo.Skip {
					require.Equal(t, photo.Skip, v.Action, "policy %s: the referrers turned a skip into %s", p, v.Action)
				}
			}
		})
	}
}

func TestLayers(t *testing.T) {
	t.Parallel()
	layer := func(mt string) ocispec.Descriptor { return ocispec.Descriptor{MediaType: mt} }
	cases := []struct {
		name   string
		m      ocispec.Manifest
		layers []int
	}{
		{"one photo", ocispec.Manifest{Layers: []ocispec.Descriptor{layer("image/jpeg")}}, []int{0}},
		{"photos among other files", ocispec.Manifest{Layers: []ocispec.Descriptor{layer("text/plain"), layer("image/png"), layer("image/webp"), layer("image/gif")}}, []int{1, 2, 3}},
		{"a container image", ocispec.Manifest{Layers: []ocispec.Descriptor{layer(ocispec.MediaTypeImageLayerGzip)}}, nil},
		{"no layer", ocispec.Manifest{}, nil},
		{"phone photos: decoded and sent as JPEG", ocispec.Manifest{Layers: []ocispec.Descriptor{layer("image/heic"), layer("image/avif"), layer("image/tiff")}}, []int{0, 1, 2}},
		{"an image type nothing decodes", ocispec.Manifest{Layers: []ocispec.Descriptor{layer("image/svg+xml"), layer("image/jxl")}}, nil},
		{"a regscribe description is never a photo", ocispec.Manifest{ArtifactType: registry.ArtifactTypeDescription, Layers: []ocispec.Descriptor{layer("image/jpeg")}}, nil},
	}
	for _, tc := range cases {
		got, why := photo.Layers(tc.m)
		require.Equal(t, tc.layers, got, tc.name)
		require.Equal(t, tc.layers == nil, why != "", "%s: a reason exactly when no photo", tc.name)
	}
}

func TestChildren(t *testing.T) {
	t.Parallel()
	idx := ocispec.Index{Manifests: []ocispec.Descriptor{
		{MediaType: ocispec.MediaTypeImageManifest},
		{MediaType: "application/vnd.docker.distribution.manifest.v2+json"},
		{MediaType: ocispec.MediaTypeImageIndex},
		{MediaType: ocispec.MediaTypeImageManifest},
	}}
	require.Equal(t, []int{0, 3}, photo.Children(idx))
}

func TestAlbum(t *testing.T) {
	t.Parallel()
	skip := photo.Described(annotated(model), nil, model, photo.Replace)
	fresh := photo.Described(nil, nil, model, photo.Replace)
	other := photo.Described(annotated("ollama/llava:7b"), nil, model, photo.Replace)
	person := photo.Described(annotated("person:bob"), nil, model, photo.Replace)

	v := photo.Album(nil)
	require.Equal(t, photo.Skip, v.Action)

	v = photo.Album([]photo.Verdict{skip, person})
	require.Equal(t, photo.Skip, v.Action, "every child is kept")
	require.Contains(t, v.Reason, model)
	require.Contains(t, v.Reason, "person:bob")

	v = photo.Album([]photo.Verdict{skip, fresh, other})
	require.Equal(t, photo.Describe, v.Action)
	require.Equal(t, photo.ByOtherModel, v.By, "the first child to describe that has a description")
	require.Equal(t, "ollama/llava:7b", v.Who)

	v = photo.Album([]photo.Verdict{skip, fresh})
	require.Equal(t, photo.Describe, v.Action)
	require.Equal(t, photo.ByNobody, v.By)
	require.False(t, v.Fresh)

	forced := photo.Described(nil, nil, model, photo.Forced)
	require.True(t, photo.Album([]photo.Verdict{skip, forced}).Fresh)
}

func TestPersonModel(t *testing.T) {
	t.Parallel()
	require.Equal(t, "person", photo.PersonModel(""))
	require.Equal(t, "person:alice", photo.PersonModel("alice"))
	for _, m := range []string{"", "person", "person:alice"} {
		require.True(t, photo.IsPerson(m), m)
	}
	for _, m := range []string{"ollama/llava:7b", "personal/vision", "persons"} {
		require.False(t, photo.IsPerson(m), m)
	}
}
