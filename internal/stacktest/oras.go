package stacktest

import (
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

var (
	orasOnce sync.Once
	orasPath string
	orasErr  error
)

// Oras runs the real oras CLI pinned as a tool in go.mod (what `go tool
// oras` runs, built once) in dir, with a credential store of its own, and
// returns what it printed; it fails the test when oras fails.
func Oras(t testing.TB, dir string, args ...string) string {
	t.Helper()
	orasOnce.Do(func() {
		var out []byte
		out, orasErr = exec.Command("go", "tool", "-n", "oras").Output()
		orasPath = strings.TrimSpace(string(out))
	})
	require.NoError(t, orasErr, "go tool -n oras")
	cmd := exec.Command(orasPath, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+t.TempDir())
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "oras %v: %s", args, out)
	return string(out)
}
