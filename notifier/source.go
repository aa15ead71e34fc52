package notifier

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Event formats a [Source] can speak. Each names the registry whose
// notifications it reads and is the Source field of the jobs it makes.
const (
	// FormatAuto recognises the format of each request from its content type,
	// headers and shape. A single Distribution-style event object is read as
	// [FormatDistribution] (its request.host is not checked).
	FormatAuto = ""
	// FormatDistribution is CNCF Distribution's notification envelope
	// (Content-Type application/vnd.docker.distribution.events.v2+json):
	// manifest pushes, and deletes of a manifest by digest.
	FormatDistribution = "distribution"
	// FormatACR is Azure Container Registry's webhook: one Distribution-style
	// event object (push or delete), whose request.host names the registry.
	FormatACR = "acr"
	// FormatHarbor is a Harbor webhook policy, payload format Default
	// (types PUSH_ARTIFACT, DELETE_ARTIFACT) or CloudEvents (types
	// harbor.artifact.pushed, harbor.artifact.deleted).
	FormatHarbor = "harbor"
	// FormatZot is zot's events extension: CloudEvents over HTTP (binary or
	// structured mode) of types zotregistry.image.updated and
	// zotregistry.image.deleted.
	FormatZot = "zot"
	// FormatGitHub is GitHub's registry_package webhook (action published,
	// package type container), signed with X-Hub-Signature-256. GitHub
	// announces no deletion (the webhook's actions are published and
	// updated).
	FormatGitHub = "github"
	// FormatQuay is Quay's repo_push notification: tags, no digest. Quay
	// has no notification of a deletion.
	FormatQuay = "quay"
	// FormatDockerHub is Docker Hub's repository webhook: a tag, no digest.
	// Docker Hub announces pushes only.
	FormatDockerHub = "dockerhub"
)

// SourceDistribution names CNCF Distribution's notification format. It is
// [FormatDistribution], kept for existing callers.
const SourceDistribution = FormatDistribution

var formats = []string{FormatAuto, FormatDistribution, FormatACR, FormatHarbor, FormatZot, FormatGitHub, FormatQuay, FormatDockerHub}

// Formats returns every format a [Source] may name, [FormatAuto] first.
func Formats() []string { return slices.Clone(formats) }

// Source is one registry (or registry account) that notifies regscribe. It
// is served at POST /v1/events/{Name}.
//
// Which registry a source speaks for is configuration: every job it makes
// names Registry, and an event that names another host than Registry or one
// of Aliases is refused (403), so nobody who can reach the notifier can make
// a worker fetch from an address of their choosing.
type Source struct {
	// Name is the last path segment of the source's URL: lower-case letters,
	// digits, '-' and '_', at most 64.
	Name string `yaml:"name"`
	// Format is one of [Formats]; [FormatAuto] ("") recognises each request.
	Format string `yaml:"format"`
	// Registry is host[:port] of the registry the source speaks for: the
	// host workers connect to, as it appears in image references (e.g.
	// "ghcr.io", "harbor.example.com"; Docker Hub's is registry-1.docker.io).
	Registry string `yaml:"registry"`
	// Aliases are other host[:port] names the registry's events may use for
	// itself (e.g. Harbor's external URL with an explicit port).
	Aliases []string `yaml:"aliases"`
	// Auth is what a request must carry. At least one credential is required.
	Auth Auth `yaml:"auth"`
}

// Auth is the credentials a [Source]'s requests must carry.
//
// Bearer and basic credentials are read from the Authorization header: when
// both are configured, either is accepted. An HMAC secret is checked in
// addition to them: the request's X-Hub-Signature-256 must be
// "sha256=<hex HMAC-SHA256 of the raw body>", as GitHub sends it.
type Auth struct {
	// Bearer is the token expected as "Authorization: Bearer <token>".
	Bearer string `yaml:"bearer"`
	// User and Password are expected as HTTP basic authentication (both
	// required to count as a credential). Registries that send no headers
	// (Quay, Docker Hub) put them in the webhook URL: https://user:pass@host/….
	User     string `yaml:"user"`
	Password string `yaml:"password"`
	// HMACSecret is the webhook secret that signs the body (GitHub).
	HMACSecret string `yaml:"hmac_secret"`
}

var (
	sourceNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
	// hostRE matches host[:port]: a DNS name or IPv4 address, or a
	// bracketed IPv6 address, lower-case.
	hostRE = regexp.MustCompile(`^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*|\[[0-9a-f:.]+\])(?::[0-9]{1,5})?$`)
)

// Validate reports the first setting of s that cannot work.
func (s Source) Validate() error {
	if !sourceNameRE.MatchString(s.Name) {
		return fmt.Errorf("source %q: name must be 1-64 of a-z, 0-9, '-', '_'", s.Name)
	}
	if !slices.Contains(formats, s.Format) {
		return fmt.Errorf("source %q: format %q is not one of %s (or empty: recognise each request)", s.Name, s.Format, strings.Join(formats[1:], ", "))
	}
	if err := s.validateHosts(); err != nil {
		return fmt.Errorf("source %q: %w", s.Name, err)
	}
	if !s.Auth.configured() {
		return fmt.Errorf("source %q: no credentials: set auth.bearer, auth.user and auth.password, or auth.hmac_secret", s.Name)
	}
	return nil
}

func (s Source) validateHosts() error {
	if s.Registry == "" {
		return errors.New("registry is required (host[:port] the source speaks for)")
	}
	for _, h := range append([]string{s.Registry}, s.Aliases...) {
		if !hostRE.MatchString(strings.ToLower(h)) {
			return fmt.Errorf("%q is not host[:port]", h)
		}
	}
	return nil
}

func (a Auth) configured() bool {
	return a.Bearer != "" || (a.User != "" && a.Password != "") || a.HMACSecret != ""
}

// speaksFor reports whether host names the source's registry.
func (s *Source) speaksFor(host string) bool {
	host = strings.ToLower(host)
	return host == s.Registry || slices.Contains(s.Aliases, host)
}

// normalize lower-cases the hosts (references compare them that way).
func (s Source) normalize() Source {
	s.Registry = strings.ToLower(s.Registry)
	aliases := make([]string, len(s.Aliases))
	for i, a := range s.Aliases {
		aliases[i] = strings.ToLower(a)
	}
	s.Aliases = aliases
	return s
}

// authError is why a request was not authenticated; its text is safe to
// send: it names the credential that is missing, nothing else.
type authError string

func (e authError) Error() string { return string(e) }

// checkHeader checks the Authorization header against the source's bearer
// token or basic credentials. Both comparisons run in constant time.
func (a Auth) checkHeader(r *http.Request) error {
	basic := a.User != "" && a.Password != ""
	if a.Bearer == "" && !basic {
		return nil
	}
	ok := false
	if a.Bearer != "" {
		scheme, token, found := strings.Cut(r.Header.Get("Authorization"), " ")
		if found && strings.EqualFold(scheme, "Bearer") {
			ok = subtle.ConstantTimeCompare([]byte(strings.TrimSpace(token)), []byte(a.Bearer)) == 1
		}
	}
	if !ok && basic {
		if user, pass, found := r.BasicAuth(); found {
			u := subtle.ConstantTimeCompare([]byte(user), []byte(a.User))
			p := subtle.ConstantTimeCompare([]byte(pass), []byte(a.Password))
			ok = u&p == 1
		}
	}
	if ok {
		return nil
	}
	switch {
	case a.Bearer != "" && basic:
		return authError("missing or wrong credentials")
	case basic:
		return authError("missing or wrong basic credentials")
	default:
		return authError("missing or wrong bearer token")
	}
}

// checkSignature checks X-Hub-Signature-256 over the raw body.
func (a Auth) checkSignature(r *http.Request, body []byte) error {
	if a.HMACSecret == "" {
		return nil
	}
	const prefix = "sha256="
	sig := r.Header.Get("X-Hub-Signature-256")
	got, err := hex.DecodeString(strings.TrimPrefix(sig, prefix))
	if !strings.HasPrefix(sig, prefix) || err != nil {
		return authError("missing or malformed X-Hub-Signature-256")
	}
	mac := hmac.New(sha256.New, []byte(a.HMACSecret))
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return authError("wrong X-Hub-Signature-256")
	}
	return nil
}

// challenge is the WWW-Authenticate value for a 401.
func (a Auth) challenge() string {
	if a.Bearer == "" && a.User != "" {
		return `Basic realm="regscribe"`
	}
	if a.Bearer == "" && a.HMACSecret != "" {
		return ""
	}
	return `Bearer realm="regscribe"`
}

// LoadSources reads sources from YAML:
//
//	sources:
//	  - name: harbor
//	    format: harbor
//	    registry: harbor.example.com
//	    aliases: [harbor.example.com:443]
//	    auth: {bearer: "<token>"}
//	  - name: ghcr
//	    format: github
//	    registry: ghcr.io
//	    auth: {hmac_secret: "<webhook secret>"}
//	  - name: quay
//	    format: quay
//	    registry: quay.io
//	    auth: {user: regscribe, password: "<password>"}
//
// Unknown keys are errors, so a misspelt credential does not leave a source
// open. Every source is validated as [New] does.
func LoadSources(r io.Reader) ([]Source, error) {
	var doc struct {
		Sources []Source `yaml:"sources"`
	}
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("sources: %w", err)
	}
	seen := map[string]bool{}
	for i, s := range doc.Sources {
		if err := s.Validate(); err != nil {
			return nil, fmt.Errorf("sources[%d]: %w", i, err)
		}
		if seen[s.Name] {
			return nil, fmt.Errorf("sources[%d]: name %q is used twice", i, s.Name)
		}
		seen[s.Name] = true
	}
	return doc.Sources, nil
}
