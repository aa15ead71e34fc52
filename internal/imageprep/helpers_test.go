package imageprep_test

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/color/palette"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// Colours of the test patterns.
var (
	red   = color.RGBA{0xff, 0, 0, 0xff}
	green = color.RGBA{0, 0xff, 0, 0xff}
	blue  = color.RGBA{0, 0, 0xff, 0xff}
	white = color.RGBA{0xff, 0xff, 0xff, 0xff}
)

// fill returns a w×h image whose pixel (x, y) is c(x, y).
func fill(w, h int, c func(x, y int) color.RGBA) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			m.SetRGBA(x, y, c(x, y))
		}
	}
	return m
}

// halves is a w×h image whose left half is red and right half blue.
func halves(w, h int) *image.RGBA {
	return fill(w, h, func(x, _ int) color.RGBA {
		if x < w/2 {
			return red
		}
		return blue
	})
}

// quadrants is a w×h image: red, green on top; blue, white below.
func quadrants(w, h int) *image.RGBA {
	return fill(w, h, func(x, y int) color.RGBA {
		switch {
		case y < h/2 && x < w/2:
			return red
		case y < h/2:
			return green
		case x < w/2:
			return blue
		}
		return white
	})
}

// noisy is a w×h gradient with per-pixel noise of the given amplitude, like
// a photo as far as a JPEG encoder is concerned.
func noisy(w, h int, amp int, seed uint64) *image.RGBA {
	r := rand.New(rand.NewPCG(seed, seed))
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			n := func(base int) uint8 { return uint8(min(max(base+r.IntN(2*amp+1)-amp, 0), 255)) }
			i := m.PixOffset(x, y)
			m.Pix[i] = n(x * 200 / w)
			m.Pix[i+1] = n(y * 200 / h)
			m.Pix[i+2] = n((x + y) * 150 / (w + h))
			m.Pix[i+3] = 0xff
		}
	}
	return m
}

// gradient is a cheap w×h image (no noise) for large inputs.
func gradient(w, h int) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		row := m.Pix[y*m.Stride:]
		for x := range w {
			row[4*x], row[4*x+1], row[4*x+2], row[4*x+3] = uint8(x*255/w), uint8(y*255/h), 0x80, 0xff
		}
	}
	return m
}

func encodeJPEG(tb testing.TB, m image.Image, quality int) []byte {
	tb.Helper()
	var buf bytes.Buffer
	require.NoError(tb, jpeg.Encode(&buf, m, &jpeg.Options{Quality: quality}))
	return buf.Bytes()
}

func encodePNG(tb testing.TB, m image.Image) []byte {
	tb.Helper()
	var buf bytes.Buffer
	require.NoError(tb, png.Encode(&buf, m))
	return buf.Bytes()
}

// twoFrameGIF is an animated GIF whose first frame is red and second blue.
func twoFrameGIF(tb testing.TB, w, h int) []byte {
	tb.Helper()
	frame := func(c color.Color) *image.Paletted {
		p := image.NewPaletted(image.Rect(0, 0, w, h), palette.Plan9)
		idx := uint8(p.Palette.Index(c))
		for i := range p.Pix {
			p.Pix[i] = idx
		}
		return p
	}
	var buf bytes.Buffer
	require.NoError(tb, gif.EncodeAll(&buf, &gif.GIF{
		Image: []*image.Paletted{frame(red), frame(blue)},
		Delay: []int{10, 10},
	}))
	return buf.Bytes()
}

// byteOrder is binary.BigEndian or binary.LittleEndian.
type byteOrder interface {
	binary.ByteOrder
	binary.AppendByteOrder
}

// stillGIF is a one-frame red GIF.
func stillGIF(tb testing.TB, w, h int) []byte {
	tb.Helper()
	p := image.NewPaletted(image.Rect(0, 0, w, h), color.Palette{red, blue})
	var buf bytes.Buffer
	require.NoError(tb, gif.Encode(&buf, p, nil))
	return buf.Bytes()
}

// offsetGIF is a 40x20 GIF whose first frame covers only the right half
// (red); the left half is left to the transparent background.
func offsetGIF(tb testing.TB) []byte {
	tb.Helper()
	p := image.NewPaletted(image.Rect(20, 0, 40, 20), color.Palette{red, color.RGBA{}})
	var buf bytes.Buffer
	require.NoError(tb, gif.EncodeAll(&buf, &gif.GIF{
		Image:  []*image.Paletted{p},
		Delay:  []int{0},
		Config: image.Config{ColorModel: p.Palette, Width: 40, Height: 20},
	}))
	return buf.Bytes()
}

// exifSegment returns a JPEG APP1 segment holding an EXIF IFD0 with the
// orientation o, stored as a SHORT (or a LONG, as some writers do).
func exifSegment(o int, order byteOrder, long bool) []byte {
	tiff := make([]byte, 0, 32)
	if order == binary.LittleEndian {
		tiff = append(tiff, "II"...)
	} else {
		tiff = append(tiff, "MM"...)
	}
	tiff = order.AppendUint16(tiff, 42)
	tiff = order.AppendUint32(tiff, 8) // IFD0 right after the header
	tiff = order.AppendUint16(tiff, 2) // two entries
	// An unrelated tag first (ImageDescription, ASCII, 4 bytes inline).
	tiff = order.AppendUint16(tiff, 0x010e)
	tiff = order.AppendUint16(tiff, 2)
	tiff = order.AppendUint32(tiff, 4)
	tiff = append(tiff, "abc\x00"...)
	tiff = order.AppendUint16(tiff, 0x0112)
	if long {
		tiff = order.AppendUint16(tiff, 4)
		tiff = order.AppendUint32(tiff, 1)
		tiff = order.AppendUint32(tiff, uint32(o))
	} else {
		tiff = order.AppendUint16(tiff, 3)
		tiff = order.AppendUint32(tiff, 1)
		tiff = order.AppendUint16(tiff, uint16(o))
		tiff = append(tiff, 0, 0)
	}
	tiff = order.AppendUint32(tiff, 0) // no next IFD
	payload := append([]byte("Exif\x00\x00"), tiff...)
	seg := []byte{0xff, 0xe1}
	seg = binary.BigEndian.AppendUint16(seg, uint16(len(payload)+2))
	return append(seg, payload...)
}

// withSegment splices seg into the JPEG j right after its SOI marker.
func withSegment(j, seg []byte) []byte {
	out := append([]byte{}, j[:2]...)
	out = append(out, seg...)
	return append(out, j[2:]...)
}

// withOrientation returns the JPEG j with a big-endian EXIF orientation o.
func withOrientation(j []byte, o int) []byte {
	return withSegment(j, exifSegment(o, binary.BigEndian, false))
}

// pngChunk encodes one PNG chunk with its CRC.
func pngChunk(typ string, data []byte) []byte {
	c := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	c = append(c, typ...)
	c = append(c, data...)
	return binary.BigEndian.AppendUint32(c, crc32.ChecksumIEEE(c[4:]))
}

// pngHeader is a PNG signature and an IHDR chunk (8-bit RGB) claiming w×h,
// then an IEND: all a decompression bomb needs to show.
func pngHeader(w, h uint32) []byte {
	return pngHeaderOf(w, h, 8, 2)
}

// pngHeaderOf is pngHeader with the given bit depth and colour type (2 for
// RGB, 6 for RGBA).
func pngHeaderOf(w, h uint32, depth, colorType byte) []byte {
	ihdr := binary.BigEndian.AppendUint32(nil, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, depth, colorType, 0, 0, 0)
	out := []byte("\x89PNG\r\n\x1a\n")
	out = append(out, pngChunk("IHDR", ihdr)...)
	return append(out, pngChunk("IEND", nil)...)
}

// jpegHeader is an SOI, a JFIF APP0 and a baseline SOF0 claiming w×h with 3
// components.
func jpegHeader(w, h uint16) []byte {
	return jpegFrameHeader(0xc0, 8, w, h)
}

// jpegFrameHeader is an SOI, a JFIF APP0 and a frame header of the given SOF
// marker and sample precision, claiming w×h with 3 components.
func jpegFrameHeader(sof, precision byte, w, h uint16) []byte {
	out := []byte{0xff, 0xd8, 0xff, 0xe0, 0, 16}
	out = append(out, "JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"...)
	out = append(out, 0xff, sof, 0, 17, precision)
	out = binary.BigEndian.AppendUint16(out, h)
	out = binary.BigEndian.AppendUint16(out, w)
	out = append(out, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1)
	return out
}

// gifHeader is a GIF89a header claiming a w×h logical screen.
func gifHeader(w, h uint16) []byte {
	out := []byte("GIF89a")
	out = binary.LittleEndian.AppendUint16(out, w)
	out = binary.LittleEndian.AppendUint16(out, h)
	return append(out, 0, 0, 0, 0x3b)
}

// webpHeader is a lossless WebP header claiming w×h (at most 16384 each).
func webpHeader(w, h uint32) []byte {
	bits := (w - 1) | (h-1)<<14
	vp8l := append([]byte{0x2f}, binary.LittleEndian.AppendUint32(nil, bits)...)
	out := []byte("RIFF")
	out = binary.LittleEndian.AppendUint32(out, uint32(4+8+len(vp8l)))
	out = append(out, "WEBPVP8L"...)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(vp8l)))
	return append(out, vp8l...)
}

// bmpHeader is a 24-bit BMP header claiming w×h.
func bmpHeader(w, h uint32) []byte {
	out := []byte("BM")
	out = binary.LittleEndian.AppendUint32(out, 54+w*h*3)
	out = binary.LittleEndian.AppendUint32(out, 0)
	out = binary.LittleEndian.AppendUint32(out, 54)
	out = binary.LittleEndian.AppendUint32(out, 40)
	out = binary.LittleEndian.AppendUint32(out, w)
	out = binary.LittleEndian.AppendUint32(out, h)
	out = binary.LittleEndian.AppendUint16(out, 1)
	out = binary.LittleEndian.AppendUint16(out, 24)
	return append(out, make([]byte, 24)...)
}

// isoHeader is an ISO media "ftyp" box with the given major and compatible
// brands, as HEIC and AVIF files start.
func isoHeader(major string, compat ...string) []byte {
	body := []byte("ftyp" + major + "\x00\x00\x00\x00")
	for _, c := range compat {
		body = append(body, c...)
	}
	out := binary.BigEndian.AppendUint32(nil, uint32(4+len(body)))
	out = append(out, body...)
	return append(out, make([]byte, 64)...)
}

// testdata reads a file from testdata/.
func testdata(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(tb, err)
	return b
}

// decode decodes an output of Prepare, checking it matches what Photo says.
func decode(t *testing.T, data []byte, mediaType string, w, h int) image.Image {
	t.Helper()
	m, format, err := image.Decode(bytes.NewReader(data))
	require.NoError(t, err)
	require.Equal(t, mediaType, "image/"+format)
	require.Equal(t, image.Rect(0, 0, w, h), m.Bounds())
	return m
}

// requireColor asserts m's pixel at (x, y) is within tol of want per channel.
func requireColor(t *testing.T, m image.Image, x, y int, want color.RGBA, tol int) {
	t.Helper()
	got := color.RGBAModel.Convert(m.At(x, y)).(color.RGBA)
	d := func(a, b uint8) int { return max(int(a)-int(b), int(b)-int(a)) }
	require.Truef(t, d(got.R, want.R) <= tol && d(got.G, want.G) <= tol && d(got.B, want.B) <= tol,
		"pixel (%d,%d) = %v, want %v ± %d", x, y, got, want, tol)
}
