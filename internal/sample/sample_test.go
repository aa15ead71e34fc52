package sample_test

import (
	"bytes"
	"image/jpeg"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/sample"
)

// The picture is the same every time, a JPEG of its size, and Write keeps
// one already there.
func TestSamplePicture(t *testing.T) {
	t.Parallel()
	a := sample.JPEG()
	require.Equal(t, a, sample.JPEG())
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(a))
	require.NoError(t, err)
	require.Equal(t, [2]int{sample.Width, sample.Height}, [2]int{cfg.Width, cfg.Height})

	dir := filepath.Join(t.TempDir(), "data")
	p, err := sample.Write(dir)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, sample.Name), p)
	got, err := os.ReadFile(p)
	require.NoError(t, err)
	require.Equal(t, a, got)
	require.NoError(t, os.WriteFile(p, []byte("mine"), 0o644))
	_, err = sample.Write(dir)
	require.NoError(t, err)
	got, _ = os.ReadFile(p)
	require.Equal(t, "mine", string(got), "a file of the person's is not overwritten")
}
