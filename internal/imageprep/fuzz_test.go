package imageprep_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"testing"

	"github.com/regscribe/regscribe/internal/fault"
	"github.com/regscribe/regscribe/internal/imageprep"
)

// FuzzPrepare checks Prepare never panics and keeps its promises on any
// input: a result is decodable and as large as it says, within MaxSide, and
// an error wraps a sentinel and is permanent. Run as an ordinary test it
// tries the seeds; `go test -fuzz FuzzPrepare ./internal/imageprep` explores.
func FuzzPrepare(f *testing.F) {
	small := encodeJPEG(f, quadrants(24, 12), 90)
	lossy := testdata(f, "halves-lossy.webp")
	seeds := [][]byte{
		nil,
		[]byte("not an image at all"),
		small,
		withOrientation(small, 6),
		withSegment(small, exifSegment(7, binary.LittleEndian, true)),
		small[:len(small)/2],
		small[:30],
		encodePNG(f, transparentRight(20, 10)),
		encodePNG(f, quadrants(70, 30))[:60],
		twoFrameGIF(f, 16, 8),
		testdata(f, "halves-lossless.webp"),
		testdata(f, "alpha-lossless.webp"),
		testdata(f, "alpha-lossy.webp"),
		lossy,
		lossy[:50],
		pngHeader(100000, 100000),
		pngHeader(3, 3),
		jpegHeader(2000, 2000),
		gifHeader(5, 5),
		webpHeader(64, 64),
		bmpHeader(4, 4),
		isoHeader("heic", "mif1"),
		isoHeader("avif"),
		testdata(f, "quadrants.heic"),
		testdata(f, "quadrants-irot3-exif6.heic"),
		testdata(f, "quadrants-irot3-exif6.heic")[:400],
		testdata(f, "gradient-96x40.heic"),
		testdata(f, "gradient-97x40.heic"),
		testdata(f, "quadrants-imir1.avif"),
		testdata(f, "quadrants-irot3.avif")[:300],
		withISPE(testdata(f, "quadrants.heic"), 300, 200),
		withISPE(testdata(f, "quadrants.avif"), 16, 8),
		withISPE(testdata(f, "photo12.heic"), 400, 300), // coded 4000x3000: refused by the memory limit
		withISPE(testdata(f, "photo12.avif"), 400, 300),
		testdata(f, "quadrants-progressive.jpg"),
		testdata(f, "quadrants-progressive.jpg")[:300],
		manyScans(f, 3),
		{0xff, 0xd8, 0xff, 0xe1, 0x00, 0x10, 'E', 'x', 'i', 'f', 0, 0, 'M', 'M', 0, 42, 0xff, 0xff, 0xff, 0xf0},
		{0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0xff, 0xff, 0xff, 0xff, 'e', 'X', 'I', 'f'},
		[]byte("RIFF\xff\xff\xff\xffWEBPEXIF\xff\xff\xff\xff"),
		[]byte("II*\x00\x08\x00\x00\x00\xff\xff"),
	}
	for _, s := range seeds {
		f.Add(s)
	}
	limits := []imageprep.Limits{
		{MaxSide: 16, MaxPixels: 1_000_000},
		{MaxSide: 4096, MaxPixels: 1_000_000, MaxBytes: 1 << 20, Accept: openAI},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, l := range limits {
			p, err := imageprep.Prepare(data, l)
			if err != nil {
				if !errors.Is(err, imageprep.ErrCorrupt) && !errors.Is(err, imageprep.ErrTooLarge) &&
					!errors.Is(err, imageprep.ErrUnsupported) {
					t.Fatalf("error wraps no sentinel: %v", err)
				}
				if !fault.Is(err, fault.KindPermanent) {
					t.Fatalf("error not permanent: %v", err)
				}
				continue
			}
			if p.Width <= 0 || p.Height <= 0 || p.Width > l.MaxSide || p.Height > l.MaxSide {
				t.Fatalf("bad size %dx%d for max side %d", p.Width, p.Height, l.MaxSide)
			}
			if !p.Converted {
				if !bytes.Equal(p.Data, data) || p.Reason != "" {
					t.Fatalf("pass-through changed the data or gave a reason %q", p.Reason)
				}
				continue
			}
			if p.MediaType != "image/jpeg" || p.Reason == "" {
				t.Fatalf("converted to %q for reason %q", p.MediaType, p.Reason)
			}
			cfg, _, err := image.DecodeConfig(bytes.NewReader(p.Data))
			if err != nil || cfg.Width != p.Width || cfg.Height != p.Height {
				t.Fatalf("output %dx%d, err %v; Photo says %dx%d", cfg.Width, cfg.Height, err, p.Width, p.Height)
			}
		}
	})
}
