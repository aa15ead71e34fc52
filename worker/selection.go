package worker

import (
	"path"
	"regexp"
	"slices"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// DefaultOptIn is the manifest annotation that opts a photo in when
// Selection.OptIn is set.
const DefaultOptIn = "io.regscribe.describe=true"

// Selection decides which artifacts get described.
type Selection struct {
	// OptIn describes only manifests that carry OptInAnnotation.
	OptIn bool
	// OptInAnnotation is "key=value". If empty, DefaultOptIn.
	OptInAnnotation string
	// Repositories are globs of repositories to describe ("*" matches
	// within one path segment, "**" across segments). Empty: all.
	Repositories []string
	// ExcludeRepositories are globs of repositories never described.
	ExcludeRepositories []string
	// ArtifactTypes, if not empty, lists the artifact types described (the
	// manifest's artifactType, or its config media type when it has none).
	ArtifactTypes []string
}

// Includes reports whether jobs for repository name are described (it
// matches Repositories, if any, and no ExcludeRepositories).
func (s Selection) Includes(name string) bool {
	ok, _ := s.repository(name)
	return ok
}

// repository reports whether a repository is selected, and why not.
func (s Selection) repository(name string) (bool, string) {
	for _, g := range s.ExcludeRepositories {
		if globMatch(g, name) {
			return false, "repository " + name + " is excluded by " + g
		}
	}
	if len(s.Repositories) == 0 {
		return true, ""
	}
	for _, g := range s.Repositories {
		if globMatch(g, name) {
			return true, ""
		}
	}
	return false, "repository " + name + " matches none of " + strings.Join(s.Repositories, ", ")
}

// manifest reports whether a manifest is selected, and why not.
func (s Selection) manifest(m ocispec.Manifest) (bool, string) {
	if len(s.ArtifactTypes) > 0 {
		at := m.ArtifactType
		if at == "" {
			at = m.Config.MediaType
		}
		if !slices.Contains(s.ArtifactTypes, at) {
			return false, "artifact type " + at + " is not selected"
		}
	}
	if s.OptIn {
		k, v := s.optIn()
		if m.Annotations[k] != v {
			return false, "not opted in (" + k + "=" + v + ")"
		}
	}
	return true, ""
}

func (s Selection) optIn() (key, value string) {
	a := s.OptInAnnotation
	if a == "" {
		a = DefaultOptIn
	}
	key, value, _ = strings.Cut(a, "=")
	return key, value
}

// globMatch matches name against a glob where "**" crosses "/" and "*" does not.
func globMatch(glob, name string) bool {
	if !strings.Contains(glob, "**") {
		ok, err := path.Match(glob, name)
		return err == nil && ok
	}
	var re strings.Builder
	re.WriteString("^")
	for i := 0; i < len(glob); i++ {
		switch c := glob[i]; {
		case c == '*' && i+1 < len(glob) && glob[i+1] == '*':
			re.WriteString(".*")
			i++
		case c == '*':
			re.WriteString("[^/]*")
		case c == '?':
			re.WriteString("[^/]")
		default:
			re.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	re.WriteString("$")
	ok, err := regexp.MatchString(re.String(), name)
	return err == nil && ok
}
