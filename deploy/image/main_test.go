package main

import (
	"bytes"
	"context"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/embedded"
)

// The README's command pushes the index and prints it by digest; a wrong
// command line is one clear error. (internal/containerimage tests the image.)
func TestPushPrintsTheIndexByDigest(t *testing.T) {
	ctx := t.Context()
	reg, err := embedded.StartRegistry(ctx, embedded.RegistryOptions{Listen: "127.0.0.1:0"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = reg.Stop(context.Background()) })
	t.Setenv("DOCKER_CONFIG", t.TempDir())

	var stdout, stderr bytes.Buffer
	platform := "linux/" + runtime.GOARCH
	require.NoError(t, run(ctx, []string{"-platform", platform, "-version", "v9.9.9-test", reg.Addr() + "/regscribe:dev"}, &stdout, &stderr), stderr.String())
	printed := strings.TrimSpace(stdout.String())
	require.True(t, strings.HasPrefix(printed, reg.Addr()+"/regscribe@sha256:"), printed)

	ref, err := name.ParseReference(printed)
	require.NoError(t, err)
	idx, err := remote.Index(ref, remote.WithContext(ctx))
	require.NoError(t, err)
	im, err := idx.IndexManifest()
	require.NoError(t, err)
	require.Len(t, im.Manifests, 1)
	require.Equal(t, runtime.GOARCH, im.Manifests[0].Platform.Architecture)
	require.Equal(t, "v9.9.9-test", im.Annotations["org.opencontainers.image.version"])
	tagged, err := name.ParseReference(reg.Addr() + "/regscribe:dev")
	require.NoError(t, err)
	desc, err := remote.Head(tagged, remote.WithContext(ctx))
	require.NoError(t, err)
	require.Equal(t, ref.Identifier(), desc.Digest.String(), "the tag names the printed index")

	for _, args := range [][]string{{}, {"a", "b"}, {"-platform", "windows/amd64", reg.Addr() + "/x:y"}, {"Not A Reference"}} {
		err := run(ctx, args, &stdout, &stderr)
		require.Error(t, err, "%v", args)
	}
}
