package imageprep_test

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"

	"github.com/regscribe/regscribe/internal/imageprep"
)

// TestSniff: every format Prepare decodes is named by its first bytes, as
// real files of it start; a header cut short, or text that shares the
// first bytes of a format, is not; what is not an image says what it is.
func TestSniff(t *testing.T) {
	t.Parallel()
	encoded := func(encode func(*bytes.Buffer) error) []byte {
		var buf bytes.Buffer
		require.NoError(t, encode(&buf))
		return buf.Bytes()
	}
	bmpFile := encoded(func(b *bytes.Buffer) error { return bmp.Encode(b, halves(40, 20)) })
	tiffFile := encoded(func(b *bytes.Buffer) error { return tiff.Encode(b, halves(40, 20), nil) })
	for _, tc := range []struct {
		name      string
		data      []byte
		mediaType string // "" for no image Prepare decodes
		looks     string // in Looks
		image     bool
	}{
		{"jpeg", encodeJPEG(t, halves(40, 20), 90), "image/jpeg", "JPEG image", true},
		{"progressive jpeg", testdata(t, "photo12-progressive.jpg"), "image/jpeg", "JPEG image", true},
		{"png", encodePNG(t, halves(40, 20)), "image/png", "PNG image", true},
		{"gif", stillGIF(t, 40, 20), "image/gif", "GIF image", true},
		{"webp lossy", testdata(t, "halves-lossy.webp"), "image/webp", "WebP image", true},
		{"webp lossless", testdata(t, "alpha-lossless.webp"), "image/webp", "WebP image", true},
		{"bmp", bmpFile, "image/bmp", "BMP image", true},
		{"tiff little-endian", tiffFile, "image/tiff", "TIFF image", true},
		{"tiff big-endian", []byte("MM\x00*\x00\x00\x00\x08"), "image/tiff", "TIFF image", true},
		{"heic", testdata(t, "photo12.heic"), "image/heic", "HEIC image", true},
		{"heix", isoHeader("heix", "mif1"), "image/heic", "HEIC image", true},
		{"heif mif1", isoHeader("mif1", "miaf"), "image/heic", "HEIC image", true},
		{"avif", testdata(t, "photo12.avif"), "image/avif", "AVIF image", true},
		{"avif as a compatible brand", isoHeader("mif1", "avif"), "image/avif", "AVIF image", true},

		{"jpeg cut after two bytes", []byte("\xff\xd8"), "", "binary data (first bytes ff d8)", false},
		{"png cut in its signature", []byte("\x89PNG\r\n"), "", "", false},
		{"webp without its form type", []byte("RIFF\x10\x00\x00\x00WE"), "", "", false},
		{"gif cut in its version", []byte("GIF8"), "", "", false},
		{"bmp cut before its header size", bmpFile[:16], "", "", false},
		{"ftyp cut before its brand", []byte("\x00\x00\x00\x18ftyp"), "", "", false},
		{"empty", nil, "", "empty", false},

		{"text starting like a BMP", []byte("BMW is a car maker from Munich.\n"), "", "text (text/plain; charset=utf-8)", false},
		{"text", []byte("Dune is a 1965 novel by Frank Herbert.\n"), "", "text (text/plain; charset=utf-8)", false},
		{"utf-8 text cut inside a character", []byte("Grüße")[:3], "", "text (text/plain; charset=utf-8)", false},
		{"latin-1 bytes", []byte("caf\xe9 au lait"), "", "binary data", false},
		{"pdf", []byte("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"), "", "PDF document", false},
		{"json", []byte(`{"schemaVersion": 2}`), "", "JSON document", false},
		{"gzip (a tar.gz layer)", []byte("\x1f\x8b\x08\x00\x00\x00\x00\x00"), "", "gzip data", false},
		{"mp4 video", isoHeader("mp42", "isom"), "", `brand "mp42"`, false},
		{"jpeg xl", []byte("\xff\x0a\xfa\x7f\x01\x90\x08"), "", "JPEG XL", true},
		{"jpeg 2000", []byte("\x00\x00\x00\x0cjP  \r\n\x87\n\x00\x00\x00\x14ftypjp2 "), "", "JPEG 2000", true},
		{"an icon", []byte("\x00\x00\x01\x00\x01\x00\x10\x10\x00\x00\x01\x00\x20\x00"), "", "image/x-icon", true},
		{"random bytes", []byte{0x13, 0x37, 0xc0, 0xde, 0x00, 0x01, 0x02, 0x03, 0x04}, "", "binary data (first bytes 13 37 c0 de 00 01 02 03)", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			head := tc.data[:min(len(tc.data), imageprep.SniffLen)]
			got := imageprep.Sniff(head)
			require.Equal(t, tc.mediaType, got.MediaType, "looks like %q", got.Looks)
			require.Contains(t, got.Looks, tc.looks)
			require.NotEmpty(t, got.Looks)
			require.Equal(t, tc.image, got.Image, "looks like %q", got.Looks)
			if tc.mediaType != "" {
				require.Contains(t, imageprep.MediaTypes(), tc.mediaType, "a format Prepare decodes")
			}
		})
	}
}
