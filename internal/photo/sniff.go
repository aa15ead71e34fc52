package photo

import (
	"fmt"
	"path"
	"slices"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/regscribe/regscribe/internal/imageprep"
	"github.com/regscribe/regscribe/internal/registry"
)

// GenericMediaTypes are the layer media types that say nothing of what a
// layer holds: oras's default for a file pushed without one
// (application/vnd.oci.image.layer.v1.tar), application/octet-stream, and
// none at all. A layer of one of them is a photo when its first bytes are
// one ([ToSniff], [Sniffed]); so is a layer of an image/* media type
// regscribe does not prepare (saysNothing).
var GenericMediaTypes = []string{ocispec.MediaTypeImageLayer, "application/octet-stream", ""}

// saysNothing reports whether a layer's media type says nothing regscribe
// can trust of what it holds: one of [GenericMediaTypes], or an image/*
// type not among [MediaTypes] ("image/jpg", a common typo for image/jpeg;
// "image/x-foo"; "image/jxl", a format regscribe cannot describe, which
// the bytes then name; "image/JPEG").
func saysNothing(mediaType string) bool {
	return slices.Contains(GenericMediaTypes, mediaType) ||
		strings.HasPrefix(strings.ToLower(mediaType), "image/") && !slices.Contains(MediaTypes, mediaType)
}

// containerConfigs are the config media types of container images, whose
// tar layers are file systems, never photos.
var containerConfigs = []string{ocispec.MediaTypeImageConfig, "application/vnd.docker.container.image.v1+json"}

// ToSniff returns the indexes of m's layers whose first bytes decide
// whether they are photos, in layer order: the layers whose media type
// says nothing (saysNothing) of a manifest that has no image layer
// ([Layers]) and is neither a container image (its config a container
// image config; oras pushes files with an empty or unknown config) nor a
// regscribe description. nil when there is none: m is a photo by its media
// types, or no photo at all. A layer's org.opencontainers.image.title
// ("dune.jpg") is a hint a person gave, never proof: only the bytes decide.
func ToSniff(m ocispec.Manifest) []int {
	if photos, _ := Layers(m); photos != nil || m.ArtifactType == registry.ArtifactTypeDescription ||
		slices.Contains(containerConfigs, m.Config.MediaType) {
		return nil
	}
	var out []int
	for i, l := range m.Layers {
		if saysNothing(l.MediaType) {
			out = append(out, i)
		}
	}
	return out
}

// Sniffed returns the layers of m that are photos by their first bytes,
// in layer order: looks holds what [imageprep.Sniff] said of each layer
// [ToSniff] named (by layer index). When none is a photo it returns nil
// and why, for the person who pushed it: "not an image: " and, for each
// layer, its title, media type and what its bytes look like, with the push
// that would work when they are an image of another format, or that it is
// no photo regscribe can describe. A layer missing from looks is no photo.
func Sniffed(m ocispec.Manifest, looks map[int]imageprep.Sniffed) ([]int, string) {
	var photos []int
	var why []string
	for _, i := range ToSniff(m) {
		s, ok := looks[i]
		if ok && s.MediaType != "" {
			photos = append(photos, i)
			continue
		}
		l := m.Layers[i]
		name := fmt.Sprintf("layer %s", l.Digest)
		if title := l.Annotations[ocispec.AnnotationTitle]; title != "" {
			name = fmt.Sprintf("%q", title)
		}
		mediaType := l.MediaType
		if mediaType == "" {
			mediaType = "no media type"
		}
		switch {
		case !ok:
			why = append(why, fmt.Sprintf("%s (%s) was not read", name, mediaType))
		case s.Image:
			why = append(why, fmt.Sprintf("%s (%s) holds %s, which regscribe cannot describe: convert it to JPEG and push it as `%s:image/jpeg`",
				name, mediaType, s.Looks, asJPEG(l)))
		default:
			why = append(why, fmt.Sprintf("%s (%s) holds %s, not a photo regscribe can describe", name, mediaType, s.Looks))
		}
	}
	if photos != nil {
		return photos, ""
	}
	if why == nil {
		return nil, "not an image: no layer to read"
	}
	return nil, "not an image: " + strings.Join(why, "; ")
}

// asJPEG is the file name of layer l converted to JPEG: its title with the
// extension .jpg, or photo.jpg.
func asJPEG(l ocispec.Descriptor) string {
	title := path.Base(l.Annotations[ocispec.AnnotationTitle])
	if title == "." || title == "/" {
		return "photo.jpg"
	}
	return strings.TrimSuffix(title, path.Ext(title)) + ".jpg"
}
