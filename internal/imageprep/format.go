package imageprep

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"slices"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
	"golang.org/x/image/webp"

	"github.com/regscribe/regscribe/internal/imageprep/internal/jpegdec"
	"github.com/regscribe/regscribe/internal/imageprep/internal/wasmdec"
)

// format is an image format Prepare can read.
type format struct {
	name      string // for messages: "JPEG"
	short     string // for reasons: "jpeg"
	mediaType string
	// configFn and decodeFn are the format's decoder; call them through
	// config and decode, which turn a decoder's panic into an error.
	// decodeFn is given the bytes the image is charged (decodeCost): a
	// decoder that can be held to it is; one that can be stopped stops
	// when ctx ends.
	configFn func(io.Reader) (image.Config, error)
	decodeFn func(ctx context.Context, data []byte, charge int64) (image.Image, error)
	// orientation returns the EXIF orientation (1-8) of the image, 1 when
	// it has none; nil for formats that carry none.
	orientation func([]byte) int
	// check walks the file's structure, without reading pixels, for what
	// a header does not show; it returns why the file cannot be passed
	// through ("incomplete jpeg structure", "animated gif") or "". Such a
	// file is decoded instead, which catches truncation. Nil for formats
	// not checked.
	check func([]byte) string
}

// The formats Prepare decodes. Decoders are called directly, not through
// image.Decode, so the format is the one sniffed here and not whatever
// another package happens to have registered.
var (
	formatJPEG = format{"JPEG", "jpeg", "image/jpeg", jpeg.DecodeConfig, reading(jpeg.Decode), jpegOrientation, jpegCheck}
	formatPNG  = format{"PNG", "png", "image/png", png.DecodeConfig, reading(png.Decode), pngOrientation, pngCheck}
	formatGIF  = format{"GIF", "gif", "image/gif", gif.DecodeConfig, reading(gif.Decode), nil, gifCheck}
	formatWebP = format{"WebP", "webp", "image/webp", webp.DecodeConfig, reading(webp.Decode), webpOrientation, webpCheck}
	formatBMP  = format{"BMP", "bmp", "image/bmp", bmp.DecodeConfig, reading(bmp.Decode), nil, nil}
	formatTIFF = format{"TIFF", "tiff", "image/tiff", tiff.DecodeConfig, reading(tiff.Decode), exifOrientation, nil}
)

// reading makes a decodeFn of a decoder that reads, and that allocates what
// it decodes to (which the charge reckons) but cannot be held to a limit.
func reading(decode func(io.Reader) (image.Image, error)) func(context.Context, []byte, int64) (image.Image, error) {
	return func(_ context.Context, data []byte, _ int64) (image.Image, error) {
		return decode(bytes.NewReader(data))
	}
}

// config reads the header of data.
func (f *format) config(data []byte) (cfg image.Config, err error) {
	defer recoverDecoder(&err)
	return f.configFn(bytes.NewReader(data))
}

// decode decodes the pixels of data (for GIF, of its first frame), charged
// charge bytes, until ctx ends.
func (f *format) decode(ctx context.Context, data []byte, charge int64) (img image.Image, err error) {
	defer recoverDecoder(&err)
	img, err = f.decodeFn(ctx, data, charge)
	if err == nil && img == nil {
		err = fmt.Errorf("decoder returned no image")
	}
	return img, err
}

// recoverDecoder turns a panic in a third-party decoder into *err: Prepare
// must not panic on any input, whatever bugs its decoders have.
func recoverDecoder(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("decoder panicked: %v", r)
	}
}

// classify returns the sentinel for a decoder's error: ErrTooLarge when a
// WebAssembly decoder outgrew its memory limit, its time budget or the
// pixels its header declared, ErrUnsupported when the
// decoder says the file is valid but uses a feature it lacks, else
// ErrCorrupt. JPEG's "unknown marker" is left corrupt: it is what garbage in
// a damaged file usually looks like (unsupported JPEG kinds are named by
// jpegUnsupported instead).
func classify(err error) error {
	var je jpeg.UnsupportedError
	var se jpegdec.UnsupportedError
	var pe png.UnsupportedError
	var te tiff.UnsupportedError
	var le *wasmdec.LimitError
	var be *wasmdec.BudgetError
	switch {
	case errors.As(err, &le), errors.As(err, &be), errors.Is(err, wasmdec.ErrPixels):
		return ErrTooLarge
	case errors.As(err, &je) && je != "unknown marker", errors.As(err, &se) && se != "unknown marker",
		errors.As(err, &pe), errors.As(err, &te), errors.Is(err, bmp.ErrUnsupported):
		return ErrUnsupported
	}
	return ErrCorrupt
}

// sniff finds the format of data from its first bytes. Formats it recognises
// but cannot decode give ErrUnsupported; anything else ErrCorrupt.
func sniff(data []byte) (*format, error) {
	has := func(prefix string) bool { return bytes.HasPrefix(data, []byte(prefix)) }
	switch {
	case len(data) == 0:
		return nil, fail(ErrCorrupt, "empty input")
	case has("\xff\xd8\xff"):
		return &formatJPEG, nil
	case has("\x89PNG\r\n\x1a\n"):
		return &formatPNG, nil
	case has("GIF87a"), has("GIF89a"):
		return &formatGIF, nil
	case len(data) >= 12 && has("RIFF") && string(data[8:12]) == "WEBP":
		return &formatWebP, nil
	case has("BM"):
		return &formatBMP, nil
	case has("II*\x00"), has("MM\x00*"):
		return &formatTIFF, nil
	case len(data) >= 12 && string(data[4:8]) == "ftyp":
		return isoMedia(data)
	case has("\xff\x0a"), has("\x00\x00\x00\x0cJXL \r\n\x87\n"):
		return nil, fail(ErrUnsupported, "JPEG XL is not supported: convert to JPEG")
	case has("\x00\x00\x00\x0cjP  \r\n\x87\n"), has("\xff\x4f\xff\x51"):
		return nil, fail(ErrUnsupported, "JPEG 2000 is not supported: convert to JPEG")
	}
	for _, m := range notImages {
		if has(m.magic) {
			return nil, fail(ErrCorrupt, "%s, not an image", m.name)
		}
	}
	return nil, fail(ErrCorrupt, "unrecognised format (first bytes % x)", data[:min(len(data), 8)])
}

// notImages names common non-image contents so the error says what was found.
var notImages = []struct{ magic, name string }{
	{"%PDF-", "PDF document"},
	{"<svg", "SVG (vector) document"},
	{"<?xml", "XML document"},
	{"\x1f\x8b", "gzip data"},
	{"PK\x03\x04", "zip archive"},
	{"{", "JSON document"},
	{"8BPS", "Photoshop document"},
}

// isoMedia classifies an ISO base media file (data[4:8] is "ftyp") by its
// major and compatible brands: HEIC (and other HEIF) or AVIF; anything else
// (a video, say) is unsupported.
func isoMedia(data []byte) (*format, error) {
	size := int(min(binary.BigEndian.Uint32(data), uint32(len(data)), 4096))
	brands := []string{string(data[8:12])}
	for i := 16; i+4 <= size; i += 4 {
		brands = append(brands, string(data[i:i+4]))
	}
	for _, k := range heifKinds {
		for _, b := range brands {
			if slices.Contains(k.brands, b) {
				return k.f, nil
			}
		}
	}
	return nil, fail(ErrUnsupported, "ISO media file of brand %q is not an image format supported here", brands[0])
}

// MediaTypes returns the media types of the image formats Prepare decodes,
// for callers that pick photos by a layer's declared media type (Prepare
// itself sniffs the content). "image/heif" is HEIF in general: Prepare
// decodes those whose images are HEVC (HEIC) or AV1 (AVIF).
func MediaTypes() []string {
	return []string{
		"image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp", "image/tiff",
		"image/heic", "image/heif", "image/avif",
	}
}
