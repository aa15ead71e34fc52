package containerimage

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/buildinfo"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image's fixed facts.
const (
	// Entrypoint is the binary, the image's only program.
	Entrypoint = "/regscribe"
	// User is the image's user and group: distroless's "nonroot", which
	// Kubernetes' runAsNonRoot accepts because it is numeric.
	User = 65532
	// WorkDir is the working directory, owned by User: `regscribe up` keeps
	// its data in regscribe-data below it, and deployments mount a volume
	// there (or at REGSCRIBE_INDEX_DIR for `regscribe web`).
	WorkDir = "/data"
	// DockerConfig is where the image looks for registry credentials (a
	// config.json as `oras login` and `docker login` write it): the image has
	// no home directory.
	DockerConfig = "/etc/regscribe/docker"
	// Source is the repository the image is built from.
	Source = "https://github.com/regscribe/regscribe"
	// Description is the image's one-line description.
	Description = "regscribe: AI descriptions of photos in OCI registries, written back and searchable"
	// Licenses is the SPDX expression of the image's licence (LICENSE).
	Licenses = "Apache-2.0"
	// Package is the main package built into the image.
	Package = "./cmd/regscribe"
)

// The OCI annotation keys the image carries as labels and annotations
// (image-spec, annotations.md).
const (
	LabelSource      = "org.opencontainers.image.source"
	LabelVersion     = "org.opencontainers.image.version"
	LabelRevision    = "org.opencontainers.image.revision"
	LabelLicenses    = "org.opencontainers.image.licenses"
	LabelDescription = "org.opencontainers.image.description"
	LabelCreated     = "org.opencontainers.image.created"
)

// DefaultPlatforms are the platforms of the image index.
var DefaultPlatforms = []string{"linux/amd64", "linux/arm64"}

// Options say what to build. The zero value builds [DefaultPlatforms] from the
// module the working directory is in, with the version Go stamps.
type Options struct {
	// Dir is the module's root directory. Empty: the module of the working
	// directory (`go env GOMOD`).
	Dir string
	// Platforms are os/arch pairs. Empty: [DefaultPlatforms].
	Platforms []string
	// Version, if set, is the version `regscribe version` prints and the
	// image's version label (go build -X main.version). Empty: what
	// `git describe --tags --always --dirty` says of the checkout, else the
	// module version Go stamps into the binary.
	Version string
	// Log receives `go build`'s output. Nil: discarded.
	Log io.Writer
}

// Build cross-compiles the binary for every platform and returns the image
// index holding one image per platform.
func Build(ctx context.Context, opts Options) (v1.ImageIndex, error) {
	dir, err := moduleRoot(ctx, opts.Dir)
	if err != nil {
		return nil, err
	}
	platforms := opts.Platforms
	if len(platforms) == 0 {
		platforms = DefaultPlatforms
	}
	st := stampOf(ctx, dir, opts.Version)
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	var labels map[string]string
	for _, p := range platforms {
		platform, err := v1.ParsePlatform(p)
		if err != nil || platform.OS != "linux" || platform.Architecture == "" {
			return nil, fmt.Errorf("platform %q: want linux/ARCH, e.g. linux/arm64", p)
		}
		bin, err := compile(ctx, dir, *platform, st.Version, opts.Log)
		if err != nil {
			return nil, err
		}
		img, l, err := Image(bin, *platform, st)
		if err != nil {
			return nil, fmt.Errorf("image for %s: %w", p, err)
		}
		if labels == nil {
			labels = l
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: platform}})
	}
	return mutate.Annotations(idx, labels).(v1.ImageIndex), nil
}

func moduleRoot(ctx context.Context, dir string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside a Go module: run from the regscribe checkout or set the module directory")
	}
	return filepath.Dir(gomod), nil
}

// compile builds the static binary for platform and returns its bytes.
func compile(ctx context.Context, dir string, platform v1.Platform, version string, logTo io.Writer) ([]byte, error) {
	tmp, err := os.MkdirTemp("", "regscribe-image")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "regscribe")
	ldflags := "-s -w"
	if version != "" {
		ldflags += " -X main.version=" + version
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", ldflags, "-o", out, Package)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+platform.OS, "GOARCH="+platform.Architecture)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if logTo != nil {
		cmd.Stdout, cmd.Stderr = io.MultiWriter(&log, logTo), io.MultiWriter(&log, logTo)
	}
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go build for %s/%s: %w\n%s", platform.OS, platform.Architecture, err, log.Bytes())
	}
	return os.ReadFile(out)
}

// Stamp is what the image says of its build.
type Stamp struct {
	// Version is what `regscribe version` prints (go build -X main.version).
	// Empty: the module version Go stamped into the binary.
	Version string
	// Revision is the commit built.
	Revision string
	// Created is the commit's time; zero: the Unix epoch, so that a build
	// is reproducible.
	Created time.Time
}

// stampOf asks git about the checkout in dir: the commit, its time and,
// unless version is given, `git describe --tags --always --dirty`. Go's own
// VCS stamp is not used: it is off wherever GOFLAGS has -buildvcs=false and
// in git worktrees. Without git the stamp has only the version given.
func stampOf(ctx context.Context, dir, version string) Stamp {
	st := Stamp{Version: version}
	if out, err := exec.CommandContext(ctx, "git", "-C", dir, "show", "-s", "--format=%H %cI", "HEAD").Output(); err == nil {
		if rev, at, ok := strings.Cut(strings.TrimSpace(string(out)), " "); ok {
			st.Revision = rev
			st.Created, _ = time.Parse(time.RFC3339, at)
		}
	}
	if st.Version == "" {
		if out, err := exec.CommandContext(ctx, "git", "-C", dir, "describe", "--tags", "--always", "--dirty").Output(); err == nil {
			st.Version = strings.TrimSpace(string(out))
		}
	}
	return st
}

// Image returns the image of one platform around bin, a static regscribe
// binary built with st.Version, and its labels. Without a version in st,
// the label is the module version stamped in bin.
func Image(bin []byte, platform v1.Platform, st Stamp) (v1.Image, map[string]string, error) {
	labels := map[string]string{
		LabelSource:      Source,
		LabelVersion:     st.Version,
		LabelLicenses:    Licenses,
		LabelDescription: Description,
	}
	if st.Version == "" {
		bi, err := buildinfo.Read(bytes.NewReader(bin))
		if err != nil {
			return nil, nil, fmt.Errorf("reading the binary's build information: %w", err)
		}
		labels[LabelVersion] = bi.Main.Version
	}
	if st.Revision != "" {
		labels[LabelRevision] = st.Revision
	}
	created := time.Unix(0, 0).UTC()
	if !st.Created.IsZero() {
		created = st.Created.UTC()
	}
	labels[LabelCreated] = created.Format(time.RFC3339)

	fs, err := rootFS(bin, created)
	if err != nil {
		return nil, nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(fs)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, nil, fmt.Errorf("layer: %w", err)
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{
		Created: v1.Time{Time: created}, CreatedBy: "go build -trimpath " + Package, Comment: "regscribe " + labels[LabelVersion],
	}})
	if err != nil {
		return nil, nil, fmt.Errorf("layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = platform.OS, platform.Architecture, platform.Variant
	cf.Created = v1.Time{Time: created}
	cf.Config = v1.Config{
		User:       fmt.Sprintf("%d:%d", User, User),
		Entrypoint: []string{Entrypoint},
		WorkingDir: WorkDir,
		Env:        []string{"DOCKER_CONFIG=" + DockerConfig},
		Labels:     labels,
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, nil, err
	}
	return mutate.Annotations(img, labels).(v1.Image), labels, nil
}

// rootFS is the layer's tar: /regscribe, /data owned by [User], and /tmp
// (`regscribe reprocess` keeps its batch state there).
func rootFS(bin []byte, mod time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	entries := []struct {
		hdr  tar.Header
		body []byte
	}{
		{tar.Header{Typeflag: tar.TypeDir, Name: "data/", Mode: 0o755, Uid: User, Gid: User}, nil},
		{tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(Entrypoint, "/"), Mode: 0o755, Size: int64(len(bin))}, bin},
		{tar.Header{Typeflag: tar.TypeDir, Name: "tmp/", Mode: 0o1777}, nil},
	}
	for _, e := range entries {
		e.hdr.ModTime = mod
		if err := tw.WriteHeader(&e.hdr); err != nil {
			return nil, fmt.Errorf("layer %s: %w", e.hdr.Name, err)
		}
		if _, err := tw.Write(e.body); err != nil {
			return nil, fmt.Errorf("layer %s: %w", e.hdr.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	return buf.Bytes(), nil
}
