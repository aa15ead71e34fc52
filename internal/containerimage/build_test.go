package containerimage_test

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/buildinfo"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/containerimage"
	"github.com/regscribe/regscribe/internal/embedded"
	"github.com/regscribe/regscribe/internal/modeltest"
	"github.com/regscribe/regscribe/internal/stacktest"
)

// TestImage builds the image index for both platforms, pushes it to an
// embedded Distribution registry (the one `regscribe up` runs), pulls it back
// by digest and checks each image; then, as root on Linux, it runs the
// image of this machine's architecture from its own root file system.
func TestImage(t *testing.T) {
	ctx := t.Context()
	idx, err := containerimage.Build(ctx, containerimage.Options{})
	require.NoError(t, err)

	reg, err := embedded.StartRegistry(ctx, embedded.RegistryOptions{Listen: "127.0.0.1:0"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = reg.Stop(context.Background()) })
	tag, err := name.ParseReference(reg.Addr() + "/regscribe:test")
	require.NoError(t, err)
	require.NoError(t, remote.WriteIndex(tag, idx, remote.WithContext(ctx)))
	digest, err := idx.Digest()
	require.NoError(t, err)
	pulled, err := remote.Index(tag.Context().Digest(digest.String()), remote.WithContext(ctx))
	require.NoError(t, err)

	im, err := pulled.IndexManifest()
	require.NoError(t, err)
	require.Equal(t, types.OCIImageIndex, im.MediaType)
	var platforms []string
	images := map[string]v1.Image{}
	for _, d := range im.Manifests {
		require.NotNil(t, d.Platform)
		p := d.Platform.OS + "/" + d.Platform.Architecture
		platforms = append(platforms, p)
		img, err := pulled.Image(d.Digest)
		require.NoError(t, err)
		images[d.Platform.Architecture] = img
		t.Run(strings.ReplaceAll(p, "/", "-"), func(t *testing.T) { checkImage(t, img, *d.Platform, im.Annotations) })
	}
	require.Equal(t, containerimage.DefaultPlatforms, platforms)

	t.Run("runs", func(t *testing.T) {
		if runtime.GOOS != "linux" || os.Geteuid() != 0 {
			t.Skip("running the image needs chroot: root on Linux (CI runs as root)")
		}
		img, ok := images[runtime.GOARCH]
		if !ok {
			t.Skipf("the index has no image for this machine's %s", runtime.GOARCH)
		}
		runImage(t, img, im.Annotations[containerimage.LabelVersion])
	})
}

// checkImage: OCI media types, the labels on the config and as annotations,
// user, entrypoint, and one layer holding the binary of the platform's
// architecture and nothing else.
func checkImage(t *testing.T, img v1.Image, p v1.Platform, indexLabels map[string]string) {
	m, err := img.Manifest()
	require.NoError(t, err)
	require.Equal(t, types.OCIManifestSchema1, m.MediaType)
	require.Equal(t, types.OCIConfigJSON, m.Config.MediaType)
	cf, err := img.ConfigFile()
	require.NoError(t, err)
	require.Equal(t, p.OS, cf.OS)
	require.Equal(t, p.Architecture, cf.Architecture)
	require.Equal(t, "65532:65532", cf.Config.User)
	require.Equal(t, []string{"/regscribe"}, cf.Config.Entrypoint)
	require.Equal(t, "/data", cf.Config.WorkingDir)
	for _, l := range []string{containerimage.LabelSource, containerimage.LabelVersion, containerimage.LabelRevision,
		containerimage.LabelLicenses, containerimage.LabelDescription} {
		require.NotEmpty(t, cf.Config.Labels[l], l)
	}
	require.Equal(t, cf.Config.Labels, m.Annotations, "the manifest's annotations are the labels")
	require.Equal(t, cf.Config.Labels, indexLabels, "the index's annotations are the labels")

	layers, err := img.Layers()
	require.NoError(t, err)
	require.Len(t, layers, 1)
	mt, err := layers[0].MediaType()
	require.NoError(t, err)
	require.Equal(t, types.OCILayer, mt)
	files := map[string]*tar.Header{}
	var bin []byte
	eachFile(t, img, func(h *tar.Header, r io.Reader) {
		files[h.Name] = h
		if h.Name == "regscribe" {
			var err error
			bin, err = io.ReadAll(r)
			require.NoError(t, err)
		}
	})
	require.ElementsMatch(t, []string{"regscribe", "data", "tmp"}, slices.Collect(maps.Keys(files)), "the binary, its working directory and /tmp: nothing else")
	require.Equal(t, 65532, files["data"].Uid, "the user owns its working directory")

	f, err := elf.NewFile(bytes.NewReader(bin))
	require.NoError(t, err)
	require.Equal(t, map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[p.Architecture], f.Machine)
	for _, s := range f.Progs {
		require.NotEqual(t, elf.PT_INTERP, s.Type, "a static binary has no dynamic loader")
	}
	bi, err := buildinfo.Read(bytes.NewReader(bin))
	require.NoError(t, err)
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	require.Equal(t, "0", settings["CGO_ENABLED"])
	require.Equal(t, "true", settings["-trimpath"], "no path of the build machine in the binary")
	if head, err := exec.Command("git", "rev-parse", "HEAD").Output(); err == nil {
		require.Equal(t, strings.TrimSpace(string(head)), cf.Config.Labels[containerimage.LabelRevision], "the commit built")
	}
	require.True(t, slices.ContainsFunc(bi.Deps, func(d *debug.Module) bool { return d.Path == "golang.org/x/crypto/x509roots/fallback" }),
		"the binary carries root certificates for https registries and model APIs: the image has no /etc/ssl")
}

// runImage unpacks img and runs it chrooted into its root file system as its
// user, with its environment and working directory and nothing else of this
// machine's: `regscribe version`, then `regscribe up`, which describes a
// photo pushed with the oras CLI against the fake model.
func runImage(t *testing.T, img v1.Image, version string) {
	root := unpack(t, img)
	// A container runtime gives every container /etc/hosts (Docker,
	// containerd and Kubernetes write one naming localhost); the image
	// carries none, so the run gives it one as they do.
	require.NoError(t, os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "etc", "hosts"), []byte("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"), 0o644))
	cf, err := img.ConfigFile()
	require.NoError(t, err)
	chrooted := func(args []string, env ...string) *exec.Cmd {
		cmd := exec.Command(cf.Config.Entrypoint[0], args...)
		cmd.Dir = cf.Config.WorkingDir
		cmd.Env = append(slices.Clone(cf.Config.Env), env...)
		var uid, gid uint32
		_, err := fmt.Sscanf(cf.Config.User, "%d:%d", &uid, &gid)
		require.NoError(t, err)
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root, Credential: &syscall.Credential{Uid: uid, Gid: gid}}
		return cmd
	}

	out, err := chrooted([]string{"version"}).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.True(t, strings.HasPrefix(string(out), "regscribe "+version+"\n"), "prints the version of the label %q: %s", version, out)

	model := modeltest.NewOllama(stacktest.Model)
	t.Cleanup(model.Close)
	regAddr := freeAddr(t)
	up := chrooted([]string{"up"},
		"REGSCRIBE_LISTEN="+freeAddr(t),
		"REGSCRIBE_NATS_LISTEN="+freeAddr(t),
		"REGSCRIBE_WEB_LISTEN="+freeAddr(t),
		"REGSCRIBE_REGISTRY_ADDR="+regAddr,
		"OLLAMA_HOST="+model.URL,
		"REGSCRIBE_MODEL="+stacktest.Model,
	)
	p := stacktest.StartProcess(t, up)
	p.WaitLog(t, "model ready")

	oras := filepath.Join(t.TempDir(), "oras")
	out, err = exec.Command("go", "build", "-o", oras, "oras.land/oras/cmd/oras").CombinedOutput()
	require.NoError(t, err, "%s", out)
	work := t.TempDir()
	photo := stacktest.JPEG(t, 640, 480, 7)
	require.NoError(t, os.WriteFile(filepath.Join(work, "harbour.jpg"), photo, 0o644))
	_, port, _ := net.SplitHostPort(regAddr)
	ref := "localhost:" + port + "/photos/harbour:latest"
	orasCLI := func(args ...string) []byte {
		cmd := exec.Command(oras, args...)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+t.TempDir())
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "oras %v: %s", args, out)
		return out
	}
	orasCLI("push", ref, "harbour.jpg:image/jpeg")
	var manifest struct {
		Annotations map[string]string `json:"annotations"`
	}
	require.Eventually(t, func() bool {
		require.NoError(t, json.Unmarshal(orasCLI("manifest", "fetch", ref), &manifest))
		return manifest.Annotations["io.regscribe.description"] != ""
	}, time.Minute, 100*time.Millisecond)
	require.Equal(t, "A test photo "+modeltest.Digest(photo)[:19]+".", manifest.Annotations["io.regscribe.description"])
	require.Empty(t, model.Problems())

	p.Stop(t)
	_, err = os.Stat(filepath.Join(root, cf.Config.WorkingDir, "regscribe-data"))
	require.NoError(t, err, "up keeps its data in the working directory the image's user owns")
}

// unpack writes img's file system into a new directory, with the owners
// and modes of its layer.
func unpack(t *testing.T, img v1.Image) string {
	root := t.TempDir()
	require.NoError(t, os.Chmod(root, 0o755))
	eachFile(t, img, func(h *tar.Header, r io.Reader) {
		require.True(t, filepath.IsLocal(h.Name), "layer entry %q", h.Name)
		p := filepath.Join(root, h.Name)
		switch h.Typeflag {
		case tar.TypeDir:
			require.NoError(t, os.MkdirAll(p, 0o700))
		case tar.TypeReg:
			f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
			require.NoError(t, err)
			_, err = io.Copy(f, r)
			require.NoError(t, errors.Join(err, f.Close()))
		default:
			t.Fatalf("layer entry %q of type %c: the image has only files and directories", h.Name, h.Typeflag)
		}
		require.NoError(t, os.Lchown(p, h.Uid, h.Gid))
		require.NoError(t, os.Chmod(p, h.FileInfo().Mode()))
	})
	return root
}

// eachFile calls fn for every entry of img's flattened file system.
func eachFile(t *testing.T, img v1.Image, fn func(*tar.Header, io.Reader)) {
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		require.NoError(t, err)
		fn(h, tr)
	}
}

// freeAddr is a loopback address nobody listens on.
func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}
