package imageprep_test

import (
	"testing"

	"github.com/regscribe/regscribe/internal/imageprep"
)

// BenchmarkPrepare12MP is the common heavy case: a 4000x3000 camera JPEG
// (noise on a gradient, about 4 MB) decoded and downscaled to 1536 px.
func BenchmarkPrepare12MP(b *testing.B) {
	in := encodeJPEG(b, noisy(4000, 3000, 20, 12), 90)
	b.Logf("input: %d bytes", len(in))
	benchmarkPrepare(b, in, true)
}

// BenchmarkPreparePassThrough is a 1 MP JPEG within every limit: only the
// header is read and the input is returned as is.
func BenchmarkPreparePassThrough(b *testing.B) {
	in := encodeJPEG(b, noisy(1152, 864, 20, 1), 90)
	b.Logf("input: %d bytes", len(in))
	benchmarkPrepare(b, in, false)
}

func benchmarkPrepare(b *testing.B, in []byte, converted bool) {
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		p, err := imageprep.Prepare(in, imageprep.Limits{})
		if err != nil || p.Converted != converted {
			b.Fatalf("Prepare: converted %v, err %v", p.Converted, err)
		}
	}
}
