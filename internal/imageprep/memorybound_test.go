package imageprep_test

import (
	"bufio"
	"bytes"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/fault"
	"github.com/regscribe/regscribe/internal/imageprep"
	"github.com/regscribe/regscribe/internal/imageprep/internal/wasmdec"
)

// TestPrepareHeaderUnderstatesSize prepares the 12 MP HEIC and AVIF with
// their ispe boxes rewritten to say 400x300: the header is charged for
// 400x300 while the coded stream (HEVC SPS, AV1 sequence header) is
// 4000x3000, whose frames the decoders allocate. Each is refused as too
// large, naming the size and the limit, and the memory the preparation took
// — bytes allocated on the Go heap plus the growth of the process's peak
// resident memory, both measured — stays within the limit: the image's
// charge (16 B/px for HEIC, 32 for AVIF) plus the decoder's overhead, plus
// 8 MiB for the Go side. Unbounded, the decoders grow their WebAssembly
// memory to what the coded stream needs (hundreds of MiB here, up to 4 GiB).
// Not parallel: the measures are process-wide.
func TestPrepareHeaderUnderstatesSize(t *testing.T) {
	// Compile the decoders first: their code is no part of a decode.
	for _, f := range []string{"quadrants.heic", "quadrants.avif"} {
		_, err := imageprep.Prepare(testdata(t, f), imageprep.Limits{})
		require.NoError(t, err)
	}
	cases := []struct {
		file string
		bpp  uint64
		name string
	}{
		{"photo12.heic", 16, "HEIC"},
		{"photo12.avif", 32, "AVIF"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := withISPE(testdata(t, tc.file), 400, 300)
			limit := 400*300*tc.bpp + wasmdec.Overhead(len(in))

			used, err := memoryUsed(t, func() error {
				_, err := imageprep.Prepare(in, imageprep.Limits{})
				return err
			})
			t.Logf("%s: %v; took %d MiB, limit %d MiB", tc.name, err, used>>20, limit>>20)
			require.ErrorIs(t, err, imageprep.ErrTooLarge)
			require.True(t, fault.Is(err, fault.KindPermanent), "must be permanent: %v", err)
			require.Contains(t, err.Error(), "decode "+tc.name+": the decoder's memory would grow to")
			require.Contains(t, err.Error(), "for the 400x300 its header declares")
			require.Contains(t, err.Error(), "over its limit of "+strconv.FormatUint(limit>>20, 10)+" MiB")
			require.Less(t, used, limit+8<<20, "memory taken by a decode refused at %d MiB", limit>>20)
		})
	}
	// The measure sees the decoder's memory: the HEIC as it was made
	// decodes (52 MiB of WebAssembly memory, 18 MiB copied out).
	used, err := memoryUsed(t, func() error {
		_, err := imageprep.Prepare(testdata(t, "photo12.heic"), imageprep.Limits{})
		return err
	})
	require.NoError(t, err)
	t.Logf("photo12.heic took %d MiB", used>>20)
	require.Greater(t, used, uint64(80<<20))
}

// memoryUsed runs f and returns what it took: the bytes it allocated on
// the Go heap, plus how far the process's peak resident memory rose above
// what was resident before (memory outside the Go heap, the WebAssembly
// decoders' included). The peak is Linux's (VmHWM, reset through
// /proc/self/clear_refs): elsewhere the test is skipped.
func memoryUsed(t *testing.T, f func() error) (uint64, error) {
	t.Helper()
	runtime.GC()
	debug.FreeOSMemory() // freed heap pages leave the resident set: reusing them counts again
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Skipf("peak resident memory cannot be measured here: %v", err)
	}
	var before, after runtime.MemStats
	resident := procStatus(t, "VmRSS")
	runtime.ReadMemStats(&before)
	err := f()
	runtime.ReadMemStats(&after)
	used := after.TotalAlloc - before.TotalAlloc
	if peak := procStatus(t, "VmHWM"); peak > resident {
		used += peak - resident
	}
	return used, err
}

// procStatus returns a size in /proc/self/status, in bytes; 0 if there is
// none.
func procStatus(t *testing.T, field string) uint64 {
	t.Helper()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		require.NoError(t, err, "%s in /proc/self/status", field)
		return kb << 10
	}
	return 0
}
