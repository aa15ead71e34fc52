package wasmdec

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestModulesReproducible rebuilds the modules with build/build.sh, from
// Debian's source packages, and checks each is byte for byte the one
// committed under modules/. It runs only where the toolchain the modules
// were built with is installed, the sources can be fetched, and the test
// has the time (4 minutes on two idle cores, more on busy ones: go test
// -timeout 30m);
// otherwise it is skipped, saying why.
func TestModulesReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("rebuilding the modules takes minutes; skipped with -short")
	}
	for _, cmd := range []string{"apt-get", "dpkg-parsechangelog", "patch", "clang", "wasm-ld", "cmake", "meson", "ninja", "pkg-config", "llvm-ar-14"} {
		if _, err := exec.LookPath(cmd); err != nil {
			t.Skipf("the modules' toolchain is not installed: no %s (see build/build.sh)", cmd)
		}
	}
	script, err := filepath.Abs("build/build.sh")
	require.NoError(t, err)
	src, err := os.ReadFile(script)
	require.NoError(t, err)
	pinned := regexp.MustCompile(`(?m)^TOOLCHAIN="([^"]*)"`).FindSubmatch(src)
	require.NotNil(t, pinned, "build.sh pins no TOOLCHAIN")
	installed, err := exec.Command("sh", script, "toolchain").Output()
	require.NoError(t, err)
	if got := strings.TrimSpace(string(installed)); got != string(pinned[1]) {
		t.Skipf("the installed toolchain is not the one the modules were built with:\n  pinned:    %s\n  installed: %s", pinned[1], got)
	}
	if deadline, ok := t.Deadline(); ok && time.Until(deadline) < 20*time.Minute {
		t.Skipf("rebuilding the modules takes minutes; %s left: run with -timeout 30m", time.Until(deadline).Round(time.Second))
	}

	out := t.TempDir()
	cmd := exec.Command("nice", "-n", "10", "sh", script, out)
	cmd.Env = append(os.Environ(), "WASMDEC_WORK="+t.TempDir(), "JOBS=2")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 3 {
		t.Skipf("the sources cannot be fetched: %s", lastLine(stderr.String()))
	}
	require.NoError(t, err, "build.sh: %s", tail(stderr.String(), 4000))

	for _, m := range []string{"heic.wasm.gz", "avif.wasm.gz"} {
		committed, err := os.ReadFile(filepath.Join("modules", m))
		require.NoError(t, err)
		rebuilt, err := os.ReadFile(filepath.Join(out, m))
		require.NoError(t, err)
		require.Equal(t, wasmSum(t, committed), wasmSum(t, rebuilt), "%s differs from its rebuild", m)
	}
}

// wasmSum returns the hex sha256 of a gzipped module, decompressed.
func wasmSum(t *testing.T, gz []byte) string {
	t.Helper()
	bin, err := gunzip(gz)
	require.NoError(t, err)
	sum := sha256.Sum256(bin)
	return hex.EncodeToString(sum[:])
}

// lastLine returns the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	return s[max(0, len(s)-n):]
}
