package photo

import (
	"fmt"
	"slices"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/regscribe/regscribe/internal/imageprep"
	"github.com/regscribe/regscribe/internal/registry"
)

// MediaTypes are the layer media types that make a photo: the formats
// image preparation decodes (JPEG, PNG, WebP, GIF, BMP, TIFF, HEIC/HEIF,
// AVIF). A layer of one of them that does not decode is a dead letter with
// the reason, never a silent skip.
var MediaTypes = imageprep.MediaTypes()

// Layers returns the indexes of m's image layers in layer order, or, when m
// is no photo, nil and why: a regscribe description artifact (never a photo,
// whatever its layers), or no layer of an image media type.
func Layers(m ocispec.Manifest) ([]int, string) {
	if m.ArtifactType == registry.ArtifactTypeDescription {
		return nil, "a regscribe description"
	}
	var photos []int
	for i, l := range m.Layers {
		if slices.Contains(MediaTypes, l.MediaType) {
			photos = append(photos, i)
		}
	}
	if len(photos) == 0 {
		return nil, "no image layer"
	}
	return photos, ""
}

// Children returns the indexes of an index's children that may be photos
// (OCI image manifests; each still has to pass [Layers]).
func Children(idx ocispec.Index) []int {
	var out []int
	for i, c := range idx.Manifests {
		if c.MediaType == ocispec.MediaTypeImageManifest {
			out = append(out, i)
		}
	}
	return out
}

// PersonPrefix is the io.regscribe.model of a description a person wrote
// or corrected: "person", or "person:NAME" naming them.
const PersonPrefix = "person"

// PersonModel is the io.regscribe.model value for a description by the
// person name ("person" when name is empty).
func PersonModel(name string) string {
	if name == "" {
		return PersonPrefix
	}
	return PersonPrefix + ":" + name
}

// IsPerson reports whether io.regscribe.model names a person: "person",
// "person:NAME", or nothing at all (regscribe always names its model, so a
// description without one was written by someone else).
func IsPerson(model string) bool {
	return model == "" || model == PersonPrefix || strings.HasPrefix(model, PersonPrefix+":")
}

// Policy is how far a job goes when the photo is described already.
type Policy int

// The policies, from the most careful to the most insistent.
const (
	// Keep is a notification's policy (a push). A description by this
	// model or by a person, or another model's annotation (which a new one
	// would replace), is kept: the photo is skipped. Another model's
	// referrer does not stop it: a description by this model sits beside it.
	Keep Policy = iota
	// Replace is `regscribe reprocess --missing`'s: another model's
	// description is replaced too; a person's and this model's are kept. A
	// remembered description is used, so every tag's job of one photo
	// writes the same description with at most one model call.
	Replace
	// Again is REGSCRIBE_FORCE's: every photo is described anew, the
	// model asked even when a description is remembered, except a person's
	// description, and this model's own annotation when it is exactly what
	// the memory holds (the write-back's own notification): see
	// [DescribeUnlessOwn].
	Again
	// Forced is a person's explicit request for one job (reprocess --force,
	// describe --force): the photo is described anew whatever is there, a
	// person's description included.
	Forced
)

func (p Policy) String() string {
	switch p {
	case Replace:
		return "replace"
	case Again:
		return "again"
	case Forced:
		return "forced"
	default:
		return "keep"
	}
}

// By says who described a photo.
type By int

// The describers.
const (
	ByNobody By = iota
	ByThisModel
	ByOtherModel
	ByPerson
)

func (b By) String() string {
	switch b {
	case ByThisModel:
		return "this model"
	case ByOtherModel:
		return "another model"
	case ByPerson:
		return "a person"
	default:
		return "nobody"
	}
}

// Action is what to do with a photo.
type Action int

// The actions.
const (
	// Skip: the photo needs no description.
	Skip Action = iota
	// Describe the photo (from the memory unless Verdict.Fresh) and write
	// the description back.
	Describe
	// DescribeUnlessOwn: describe anew unless the manifest's annotation is
	// exactly what this model and prompt wrote (the caller compares it with
	// its memory), which is the write-back's own notification.
	DescribeUnlessOwn
)

func (a Action) String() string {
	switch a {
	case Describe:
		return "describe"
	case DescribeUnlessOwn:
		return "describe unless own"
	default:
		return "skip"
	}
}

// Verdict is what [Described] or [Album] decided.
type Verdict struct {
	Action Action
	// By is who described the photo already (the description that decided).
	By By
	// Who is that description's io.regscribe.model ("" for ByNobody, and
	// for a person's description that names nobody).
	Who string
	// Where is the description that decided: "annotation" or
	// "referrer sha256:…"; "" for ByNobody.
	Where string
	// Fresh: ask the model even when a description is remembered, and let
	// its answer replace the remembered one.
	Fresh bool
	// Reason says why, in words fit for a log line or a skip.
	Reason string
}

// known is one description of a photo.
type known struct {
	who, where string
	by         By
}

// Described decides whether a photo is described already, by whom, and
// what a job with policy p does with it. annotations are the photo
// manifest's; referrers are its referrers (those of another artifact type
// are ignored); model is the configured provider/model.
//
// When several describers are found, a person's description decides, then
// this model's, then another model's annotation, then another model's
// referrer. A Skip decided from the annotations alone (referrers nil) stands
// whatever the referrers: a caller may leave them unlisted then.
func Described(annotations map[string]string, referrers []ocispec.Descriptor, model string, p Policy) Verdict {
	var all []known
	if annotations[registry.AnnotationDescription] != "" {
		all = append(all, describer(annotations[registry.AnnotationModel], "annotation", model))
	}
	for _, r := range referrers {
		if r.ArtifactType == registry.ArtifactTypeDescription {
			all = append(all, describer(r.Annotations[registry.AnnotationModel], "referrer "+r.Digest.String(), model))
		}
	}
	var d known
	for _, by := range []By{ByPerson, ByThisModel, ByOtherModel} {
		if i := slices.IndexFunc(all, func(f known) bool { return f.by == by }); i >= 0 {
			d = all[i]
			break
		}
	}
	v := Verdict{By: d.by, Who: d.who, Where: d.where, Fresh: p >= Again}
	name := d.who
	if name == "" {
		name = "a person"
	}
	switch {
	case d.by == ByNobody:
		v.Action, v.Reason = Describe, "no description"
	case p == Forced:
		v.Action, v.Reason = Describe, fmt.Sprintf("forced: replaces the description by %s (%s)", name, d.where)
	case d.by == ByPerson:
		v.Action, v.Reason = Skip, fmt.Sprintf("described by %s (%s): only a forced job replaces it", name, d.where)
	case d.by == ByThisModel && p == Again && d.where == "annotation":
		v.Action, v.Reason = DescribeUnlessOwn, fmt.Sprintf("described again: %s wrote the annotation, maybe with another prompt", name)
	case d.by == ByThisModel && p == Again:
		v.Action, v.Reason = Describe, fmt.Sprintf("described again: %s wrote %s", name, d.where)
	case d.by == ByThisModel:
		v.Action, v.Reason = Skip, fmt.Sprintf("already described by %s (%s)", name, d.where)
	case p == Keep && d.where == "annotation":
		v.Action, v.Reason = Skip, fmt.Sprintf("already described by %s (annotation): reprocess --missing replaces it", name)
	default:
		v.Action, v.Reason = Describe, fmt.Sprintf("described by %s (%s), not %s", name, d.where, model)
	}
	return v
}

func describer(who, where, model string) known {
	f := known{who: who, where: where, by: ByOtherModel}
	switch {
	case IsPerson(who):
		f.by = ByPerson
	case who == model:
		f.by = ByThisModel
	}
	return f
}

// Album decides an index from the verdicts of its children that are
// photos: it is skipped when every one is, and described otherwise (each
// child is then decided again on its own). Its By, Who and Where are those
// of the first child to describe that has a description (ByNobody when
// none has); Fresh when any child to describe is fresh. With no child, the
// index is no photo album: the verdict is Skip with By ByNobody.
func Album(children []Verdict) Verdict {
	if len(children) == 0 {
		return Verdict{Action: Skip, Reason: "no child is a photo"}
	}
	var out Verdict
	var kept []string
	for _, c := range children {
		if c.Action == Skip {
			if !slices.Contains(kept, c.Reason) {
				kept = append(kept, c.Reason)
			}
			continue
		}
		if out.Action == Skip {
			out.Action, out.Reason = Describe, c.Reason
		}
		out.Fresh = out.Fresh || c.Fresh
		if out.By == ByNobody && c.By != ByNobody {
			out.By, out.Who, out.Where = c.By, c.Who, c.Where
		}
	}
	if out.Action == Skip {
		out.By, out.Who, out.Where = children[0].By, children[0].Who, children[0].Where
		out.Reason = "every photo of the index is described: " + strings.Join(kept, "; ")
	}
	return out
}
