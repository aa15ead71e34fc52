package wasmdec

import (
	"errors"
	"image"
	"os"
	"testing"

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
		decode func([]byte, uint64) (image.Image, error)
		limit  uint64
		bounds image.Rectangle // empty: refused
	}{
		{"quadrants.heic", HEIC, 8 << 20, image.Rect(0, 0, 256, 128)},
		{"quadrants.avif", AVIF, 8 << 20, image.Rect(0, 0, 64, 32)},
		{"photo12.heic", HEIC, 32 << 20, image.Rectangle{}},
		{"photo12.avif", AVIF, 64 << 20, image.Rectangle{}},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			m, err := tc.decode(testdata(t, tc.file), tc.limit)
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
	for _, f := range []func([]byte, uint64) (image.Image, error){HEIC, AVIF} {
		_, err := f(testdata(t, "quadrants.heic")[:400], 8<<20)
		require.Error(t, err)
		require.False(t, errors.As(err, new(*LimitError)), "%v", err)
	}
}
