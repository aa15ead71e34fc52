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

// Rules is the version of the rules that decide what a photo is: it grows
// when they change, so that what remembers a manifest judged no photo (the
// reconcile sweeps) judges it again. 1: image media types only; 2: the
// first bytes of layers whose media types say nothing (oras's default,
// application/octet-stream, none, image/jpg) decide.
const Rules = 2

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
		return nil, refusalPrefix + "no layer to read"
	}
	return nil, refusalPrefix + strings.Join(why, "; ")
}

// Head reads the first bytes of a layer ([imageprep.SniffLen] of them, or
// all of a shorter one): the caller's registry read, such as
// registry.Client.FetchHead.
type Head func(layer ocispec.Descriptor) ([]byte, error)

// Find decides which of m's layers are photos, in layer order, the way
// every part of regscribe decides it: the layers of an image media type
// ([Layers]); for a manifest with none whose layers say nothing of their
// content ([ToSniff]), those whose first bytes, read by head, are a photo
// ([Sniffed]). head is called only for the layers ToSniff names. When no
// layer is a photo it returns nil and why: a refusal ("not an image: …")
// when bytes were read, else what [Layers] says. An error of head is
// returned wrapped with the layer, and no decision.
func Find(m ocispec.Manifest, head Head) ([]int, string, error) {
	photos, why := Layers(m)
	unsure := ToSniff(m)
	if photos != nil || unsure == nil {
		return photos, why, nil
	}
	looks := make(map[int]imageprep.Sniffed, len(unsure))
	for _, i := range unsure {
		b, err := head(m.Layers[i])
		if err != nil {
			return nil, "", fmt.Errorf("read the first bytes of layer %s: %w", m.Layers[i].Digest, err)
		}
		looks[i] = imageprep.Sniff(b)
	}
	photos, why = Sniffed(m, looks)
	return photos, why, nil
}

// refusalPrefix starts every refusal [Sniffed] gives.
const refusalPrefix = "not an image: "

// asJPEG is the file name of layer l converted to JPEG: its title with the
// extension .jpg, or photo.jpg.
func asJPEG(l ocispec.Descriptor) string {
	title := path.Base(l.Annotations[ocispec.AnnotationTitle])
	if title == "." || title == "/" {
		return "photo.jpg"
	}
	return strings.TrimSuffix(title, path.Ext(title)) + ".jpg"
}
