package imageprep_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/regscribe/regscribe/internal/imageprep"
)

// The 12 MP benchmarks report, besides ns/op and B/op (the bytes allocated
// on the Go heap; the WebAssembly decoders' memory is reserved outside it,
// 52 MiB for the 12 MP HEIC and 44 MiB for the AVIF, and counted by
// TestPrepareHeaderUnderstatesSize's measure), "cpu-ms/op": the CPU time of
// the process per photo, all goroutines counted. When vipsthumbnail,
// heif-convert or avifdec is on PATH, the same file goes through it too, in the same
// run: "tool-cpu-ms/op" is that tool's CPU time per photo (process start
// included) and "ratio" is ours over the tool's. Without the tools those
// two are not reported.

// BenchmarkPrepare12MP is the common heavy case: a 4000x3000 camera JPEG
// (noise on a gradient, about 4 MB, baseline) decoded at 1/2 and
// downscaled to 1536 px.
func BenchmarkPrepare12MP(b *testing.B) {
	in := encodeJPEG(b, noisy(4000, 3000, 20, 12), 90)
	benchmarkPrepare(b, in, true, "photo.jpg", "vipsthumbnail", "-s", "1536")
}

// BenchmarkPrepare12MPProgressive is a 4000x3000 progressive JPEG.
func BenchmarkPrepare12MPProgressive(b *testing.B) {
	benchmarkPrepare(b, testdata(b, "photo12-progressive.jpg"), true, "photo.jpg", "vipsthumbnail", "-s", "1536")
}

// BenchmarkPrepare12MPHEIC is a 4000x3000 HEIC, against heif-convert (a
// full decode to JPEG: libheif has no reduced decode).
func BenchmarkPrepare12MPHEIC(b *testing.B) {
	benchmarkPrepare(b, testdata(b, "photo12.heic"), true, "photo.heic", "heif-convert")
}

// BenchmarkPrepare12MPAVIF is a 4000x3000 AVIF, against avifdec.
func BenchmarkPrepare12MPAVIF(b *testing.B) {
	benchmarkPrepare(b, testdata(b, "photo12.avif"), true, "photo.avif", "avifdec")
}

// BenchmarkPreparePassThrough is a 1 MP JPEG within every limit: only the
// header is read and the input is returned as is.
func BenchmarkPreparePassThrough(b *testing.B) {
	in := encodeJPEG(b, noisy(1152, 864, 20, 1), 90)
	benchmarkPrepare(b, in, false, "")
}

func benchmarkPrepare(b *testing.B, in []byte, converted bool, name string, tool ...string) {
	b.Logf("input: %d bytes", len(in))
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	if _, err := imageprep.Prepare(in, imageprep.Limits{}); err != nil { // compile decoders first
		b.Fatal(err)
	}
	b.ResetTimer()
	cpu0 := cpuTime()
	n := 0
	for b.Loop() {
		p, err := imageprep.Prepare(in, imageprep.Limits{})
		if err != nil || p.Converted != converted {
			b.Fatalf("Prepare: converted %v, err %v", p.Converted, err)
		}
		n++
	}
	ours := float64(cpuTime()-cpu0) / float64(time.Millisecond) / float64(n)
	b.ReportMetric(ours, "cpu-ms/op")
	if len(tool) == 0 {
		return
	}
	if _, err := exec.LookPath(tool[0]); err != nil {
		b.Logf("%s not on PATH: no comparison", tool[0])
		return
	}
	theirs := toolCPU(b, in, name, tool)
	b.ReportMetric(theirs, "tool-cpu-ms/op")
	b.ReportMetric(ours/theirs, "ratio")
}

// toolCPU runs the tool on the input written to a file, a few times, and
// returns its mean CPU time per run in milliseconds.
func toolCPU(b *testing.B, in []byte, name string, tool []string) float64 {
	dir := b.TempDir()
	src := filepath.Join(dir, name)
	if err := os.WriteFile(src, in, 0o600); err != nil {
		b.Fatal(err)
	}
	const runs = 5
	var total time.Duration
	for i := range runs {
		out := filepath.Join(dir, "out.jpg")
		args := append(append([]string{}, tool[1:]...), src)
		if tool[0] == "vipsthumbnail" {
			args = append(args, "-o", out)
		} else {
			args = append(args, out)
		}
		cmd := exec.Command(tool[0], args...)
		if msg, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%s: %v: %s", tool[0], err, msg)
		}
		if i > 0 { // the first run warms the page cache
			total += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		}
	}
	return float64(total) / float64(time.Millisecond) / (runs - 1)
}
