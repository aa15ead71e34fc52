package wasmdec

import (
	"context"
	"errors"
	"image"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func testdata(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile("../../testdata/" + name)
	require.NoError(t, err)
	return data
}

// TestLimitedMemory grows a memory reserved up front and one grown as a Go
// slice: each keeps what was written, never grows past its limit, and
// remembers the largest size refused.
func TestLimitedMemory(t *testing.T) {
	t.Parallel()
	const page = 64 << 10
	for _, reserved := range []bool{true, false} {
		m := &limitedMemory{limit: 4 * page}
		if reserved {
			m.Allocate(page, 1<<32)
			require.NotNil(t, m.reserved, "mmap")
		}
		b := m.Reallocate(page)
		require.Len(t, b, page)
		b[page-1] = 7
		b = m.Reallocate(3 * page)
		require.Len(t, b, 3*page)
		require.Equal(t, byte(7), b[page-1], "contents kept")
		require.Nil(t, m.Reallocate(5*page))
		require.Nil(t, m.Reallocate(6*page))
		require.Nil(t, m.Reallocate(5*page))
		require.Equal(t, uint64(6*page), m.refused)
		require.Len(t, m.Reallocate(4*page), 4*page)
		m.Free()
		m.Free()
	}
	// The module's initial memory is always given; its declared maximum
	// caps the limit.
	m := &limitedMemory{limit: page}
	m.Allocate(2*page, 3*page)
	require.Equal(t, uint64(2*page), m.limit)
	require.Len(t, m.Reallocate(2*page), 2*page)
	m.Free()
}

// TestDecodeWithinLimit decodes small files, and refuses the 12 MP ones
// under a limit below what their decoders need, with a *LimitError naming
// the limit. A file the decoder cannot read is no LimitError.
func TestDecodeWithinLimit(t *testing.T) {
	t.Parallel()
	cases := []struct {
		file   string
		decode func(context.Context, []byte, Limits) (image.Image, error)
		limit  uint64
		bounds image.Rectangle // empty: refused
	}{
		{"quadrants.heic", HEIC, 8 << 20, image.Rect(0, 0, 256, 128)},
		{"quadrants.avif", AVIF, 8 << 20, image.Rect(0, 0, 64, 32)},
		{"photo12.heic", HEIC, 32 << 20, image.Rectangle{}},
		{"photo12.avif", AVIF, 32 << 20, image.Rectangle{}},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			m, err := tc.decode(context.Background(), testdata(t, tc.file), Limits{Memory: tc.limit, Pixels: 12e6})
			if !tc.bounds.Empty() {
				require.NoError(t, err)
				require.Equal(t, tc.bounds, m.Bounds())
				return
			}
			var le *LimitError
			require.ErrorAs(t, err, &le)
			require.Equal(t, tc.limit, le.Limit)
			require.Greater(t, le.Wanted, tc.limit)
			require.Contains(t, err.Error(), "over its limit of")
		})
	}
	for _, f := range []func(context.Context, []byte, Limits) (image.Image, error){HEIC, AVIF} {
		_, err := f(context.Background(), testdata(t, "quadrants.heic")[:400], Limits{Memory: 8 << 20, Pixels: 1e6})
		require.Error(t, err)
		require.False(t, errors.As(err, new(*LimitError)), "%v", err)
	}
}

// TestDecodeStops decodes 12 MP files under a context cancelled before the
// decode, and one cancelled 20 ms into it (a fraction of what these take):
// each ends with the context's cause, neither a LimitError nor a
// BudgetError.
func TestDecodeStops(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		file   string
		decode func(context.Context, []byte, Limits) (image.Image, error)
	}{{"photo12.heic", HEIC}, {"photo12.avif", AVIF}} {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			data := testdata(t, tc.file)
			lim := Limits{Memory: 256 << 20, Pixels: 12e6}
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			_, err := tc.decode(ctx, data, lim)
			require.ErrorIs(t, err, context.Canceled)

			ctx, cancelCause := context.WithCancelCause(context.Background())
			stop := errors.New("the job was cancelled")
			timer := time.AfterFunc(20*time.Millisecond, func() { cancelCause(stop) })
			defer timer.Stop()
			_, err = tc.decode(ctx, data, lim)
			require.ErrorIs(t, err, stop)
			require.False(t, errors.As(err, new(*LimitError)), "%v", err)
			require.False(t, errors.As(err, new(*BudgetError)), "%v", err)
		})
	}
}

// TestDecodeBudget decodes a 12 MP HEIC with a budget of 20 ms: it stops
// with a BudgetError naming the budget. Not parallel: it swaps budget
// (parallel tests run after it).
func TestDecodeBudget(t *testing.T) {
	saved := budget
	defer func() { budget = saved }()
	budget = func(uint64) time.Duration { return 20 * time.Millisecond }
	_, err := HEIC(context.Background(), testdata(t, "photo12.heic"), Limits{Memory: 256 << 20, Pixels: 12e6})
	var be *BudgetError
	require.ErrorAs(t, err, &be)
	require.Equal(t, 20*time.Millisecond, be.Budget)
	require.Contains(t, err.Error(), "ran past its budget of 20ms for 12000000 pixels")
	require.Equal(t, 29*time.Second, Budget(12e6))
}

// TestAVIFLayouts decodes AVIFs of each layout: one coded as JFIF's (8 bits,
// BT.601, full range) comes as its planes, any other converted to RGBA in
// the module, 16 bits a sample above 8.
func TestAVIFLayouts(t *testing.T) {
	t.Parallel()
	for file, want := range map[string]image.Image{
		"quadrants.avif":       &image.YCbCr{},
		"quadrants-10bit.avif": &image.RGBA64{},
		"quadrants-bt709.avif": &image.RGBA{},
	} {
		m, err := AVIF(context.Background(), testdata(t, file), Limits{Memory: 8 << 20, Pixels: 64 * 32})
		require.NoError(t, err, file)
		require.IsType(t, want, m, file)
		require.Equal(t, image.Rect(0, 0, 64, 32), m.Bounds(), file)
	}
}

// TestReplacementModule compiles a module from a file, as UseModules has
// decodes do: uncompressed (a gzipped one is the embedded case), it
// compiles and exports the entry point; a missing file is an error naming
// the replacement.
func TestReplacementModule(t *testing.T) {
	t.Parallel()
	bin, err := gunzip(heicWasm)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "heic.wasm")
	require.NoError(t, os.WriteFile(path, bin, 0o600))
	c, err := compile(&path, nil)
	require.NoError(t, err)
	require.Contains(t, c.mod.ExportedFunctions(), "heic_decode")

	missing := filepath.Join(t.TempDir(), "none.wasm")
	_, err = compile(&missing, heicWasm)
	require.ErrorContains(t, err, "replacement module")
}
