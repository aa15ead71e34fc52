package imageprep

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"strings"

	"github.com/regscribe/regscribe/internal/fault"
	"github.com/regscribe/regscribe/internal/imageprep/internal/jpegenc"
	"github.com/regscribe/regscribe/internal/imageprep/internal/wasmdec"
)

// Defaults used for the zero values of [Limits].
const (
	// DefaultMaxSide is the longest side, in pixels, sent to the model.
	DefaultMaxSide = 1536
	// DefaultMaxPixels bounds width*height as read from an image's header.
	DefaultMaxPixels = 100_000_000
	// DefaultMaxBytes is the largest encoded image passed through unchanged.
	DefaultMaxBytes = 20 << 20
	// DefaultJPEGQuality is the quality of the JPEGs Prepare encodes.
	DefaultJPEGQuality = 85
	// DefaultMaxDecodeBytes bounds the memory one image decodes to: 512 MiB
	// fits a 33 MP HEIC, a 16 MP AVIF, a 40 MP progressive JPEG, any
	// baseline JPEG within MaxPixels, and refuses a 9999x9999 16-bit PNG
	// (800 MB).
	DefaultMaxDecodeBytes = 512 << 20
)

// maxJPEGScans bounds the scans of a JPEG that Prepare decodes. Encoders
// write one (baseline) or about ten (progressive); each scan makes the
// decoder walk every block, so thousands of tiny scans are a CPU bomb.
const maxJPEGScans = 100

// The sentinel errors of [Prepare]. Returned errors wrap exactly one of them
// together with context, and are marked permanent (see package fault).
var (
	// ErrUnsupported is a recognised image format, or a kind of image
	// within one, that is not decoded here: JPEG XL, JPEG 2000, an
	// arithmetic-coded JPEG.
	ErrUnsupported = errors.New("unsupported image format")
	// ErrTooLarge is an image whose header claims more pixels than
	// [Limits.MaxPixels] (a decompression bomb) or that is otherwise too
	// costly to decode.
	ErrTooLarge = errors.New("image too large")
	// ErrCorrupt is input that is no image, or an image that fails to
	// decode.
	ErrCorrupt = errors.New("corrupt image")
)

// Limits configure [Prepare]. The zero value is usable: each zero (or
// negative) field takes the default documented on it.
type Limits struct {
	// MaxSide is the longest side sent to the model, in pixels; 0 means
	// [DefaultMaxSide] (1536).
	MaxSide int
	// MaxPixels guards against decompression bombs: an image whose header
	// claims more than MaxPixels (width*height) is refused before anything
	// is decoded or allocated; 0 means [DefaultMaxPixels] (100 million).
	MaxPixels int64
	// MaxBytes is the largest encoded image passed through unchanged;
	// larger ones are re-encoded; 0 means [DefaultMaxBytes] (20 MiB).
	MaxBytes int64
	// Accept lists the media types the provider takes as-is, for example
	// {"image/jpeg", "image/png"} for Ollama or {"image/jpeg", "image/png",
	// "image/webp", "image/gif"} for OpenAI. Matching ignores case;
	// "image/jpg" counts as "image/jpeg". Empty (nil) means JPEG and PNG.
	// Converted images are always JPEG, whatever Accept says.
	Accept []string
	// JPEGQuality is the quality (1-100) of converted images; 0 means
	// [DefaultJPEGQuality] (85).
	JPEGQuality int
	// MaxDecodeBytes bounds the bytes an image decodes to, reckoned from
	// its header before anything is decoded: width × height (at the
	// reduced scale a JPEG is decoded at) × the bytes per pixel of the
	// decoder's output (1 for grey, 3 for a YCbCr JPEG, 8 for 16-bit RGBA
	// PNG, …), plus what the decoder keeps besides (a progressive JPEG's
	// coefficients, 4 bytes per sample; the WebAssembly memory of the HEIF
	// and AVIF decoders, which may not grow past its charge and a fixed
	// overhead, whatever the coded stream needs). An image over it is
	// refused with [ErrTooLarge].
	// A preparation's peak memory is this plus the working images at twice
	// MaxSide at most (4 × (2·MaxSide)² bytes, 36 MiB by default) and the
	// output. 0 means [DefaultMaxDecodeBytes] (512 MiB).
	MaxDecodeBytes int64
}

// withDefaults returns l with every unset field filled in.
func (l Limits) withDefaults() Limits {
	if l.MaxSide <= 0 {
		l.MaxSide = DefaultMaxSide
	}
	if l.MaxPixels <= 0 {
		l.MaxPixels = DefaultMaxPixels
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxDecodeBytes <= 0 {
		l.MaxDecodeBytes = DefaultMaxDecodeBytes
	}
	if len(l.Accept) == 0 {
		l.Accept = []string{"image/jpeg", "image/png"}
	}
	switch {
	case l.JPEGQuality <= 0:
		l.JPEGQuality = DefaultJPEGQuality
	case l.JPEGQuality > 100:
		l.JPEGQuality = 100
	}
	return l
}

// accepts reports whether media type mt is in l.Accept.
func (l Limits) accepts(mt string) bool {
	for _, a := range l.Accept {
		a = strings.ToLower(strings.TrimSpace(a))
		if a == "image/jpg" {
			a = "image/jpeg"
		}
		if a == mt {
			return true
		}
	}
	return false
}

// Photo is an image ready for a model.
type Photo struct {
	// Data is the encoded image to send.
	Data []byte
	// MediaType is the media type of Data: "image/jpeg", "image/png", ...
	MediaType string
	// Width and Height are the dimensions of Data as sent, in pixels,
	// upright.
	Width, Height int
	// Converted is false when Data is the input byte for byte.
	Converted bool
	// Reason says why the image was converted, for example "exif
	// orientation 6", "6000x4000 over 1536 px" or "webp not accepted"; ";"
	// joins several. It is empty when the image is passed through.
	Reason string
}

// UseDecoderModules makes HEIC and AVIF decodes run the WebAssembly modules
// in the files heic and avif (as internal/imageprep/internal/wasmdec/build
// builds them) instead of the built-in ones; "" keeps the built-in one.
// Call it before the first decode.
func UseDecoderModules(heic, avif string) { wasmdec.UseModules(heic, avif) }

// Prepare turns the bytes of an image blob into what the model gets.
//
// The format is sniffed from data. The image is passed through unchanged when
// its format is in limits.Accept, both sides are within limits.MaxSide, it is
// no larger than limits.MaxBytes and its EXIF orientation is 1 or absent;
// also it must not be a CMYK JPEG or an animated GIF, and a JPEG, PNG or
// WebP must be structurally whole (not truncated). That path reads the header
// and walks the file's segments but decodes no pixels. Otherwise the image is
// decoded (a GIF's first frame), turned upright, downscaled so the long side
// is limits.MaxSide, flattened on white and encoded as JPEG.
//
// Errors wrap [ErrUnsupported], [ErrTooLarge] or [ErrCorrupt] and are marked
// with fault.Permanent.
func Prepare(data []byte, limits Limits) (Photo, error) {
	return PrepareContext(context.Background(), data, limits)
}

// PrepareContext is [Prepare] whose HEIC and AVIF decodes stop when ctx
// ends: it then returns an error wrapping ctx's cause, not marked
// permanent (the image was not at fault). Such a decode also stops, with
// [ErrTooLarge], when it runs past a time budget reckoned from the image's
// pixels.
func PrepareContext(ctx context.Context, data []byte, limits Limits) (Photo, error) {
	l := limits.withDefaults()

	f, err := sniff(data)
	if err != nil {
		return Photo{}, err
	}
	cfg, err := f.config(data)
	if err != nil {
		if f == &formatJPEG {
			if what := jpegUnsupported(data); what != "" {
				return Photo{}, fail(ErrUnsupported, "%s is not supported: convert to baseline JPEG", what)
			}
		}
		return Photo{}, fail(classify(err), "%s header: %w", f.name, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return Photo{}, fail(ErrCorrupt, "%s header: invalid dimensions %dx%d", f.name, cfg.Width, cfg.Height)
	}
	if px := int64(cfg.Width) * int64(cfg.Height); px > l.MaxPixels {
		return Photo{}, fail(ErrTooLarge, "%s header says %dx%d = %d px, limit %d",
			f.name, cfg.Width, cfg.Height, px, l.MaxPixels)
	}
	orient := 1
	if f.orientation != nil {
		orient = f.orientation(data)
	}

	var reasons []string
	if !l.accepts(f.mediaType) {
		reasons = append(reasons, f.short+" not accepted")
	}
	if cfg.Width > l.MaxSide || cfg.Height > l.MaxSide {
		reasons = append(reasons, fmt.Sprintf("%dx%d over %d px", cfg.Width, cfg.Height, l.MaxSide))
	}
	if int64(len(data)) > l.MaxBytes {
		reasons = append(reasons, fmt.Sprintf("%d bytes over %d", len(data), l.MaxBytes))
	}
	if orient != 1 {
		reasons = append(reasons, fmt.Sprintf("exif orientation %d", orient))
	}
	if f == &formatJPEG && cfg.ColorModel == color.CMYKModel {
		reasons = append(reasons, "cmyk jpeg")
	}
	if len(reasons) == 0 && f.check != nil {
		if why := f.check(data); why != "" {
			reasons = append(reasons, why)
		}
	}
	if len(reasons) == 0 {
		return Photo{
			Data:      data,
			MediaType: f.mediaType,
			Width:     cfg.Width,
			Height:    cfg.Height,
		}, nil
	}

	if f == &formatJPEG {
		if n := jpegScans(data, maxJPEGScans); n > maxJPEGScans {
			return Photo{}, fail(ErrTooLarge, "JPEG has more than %d scans", maxJPEGScans)
		}
	}
	shift := uint(0)
	if f == &formatJPEG {
		shift = jpegShift(cfg.Width, cfg.Height, l.MaxSide)
	}
	cost, what := decodeCost(f, cfg, data, shift)
	if cost > l.MaxDecodeBytes {
		return Photo{}, fail(ErrTooLarge, "%s of %dx%d would decode to %d MiB (%s), limit %d MiB",
			f.name, cfg.Width, cfg.Height, cost>>20, what, l.MaxDecodeBytes>>20)
	}
	var img image.Image
	if f == &formatJPEG {
		img, err = decodeJPEG(data, shift)
	} else {
		img, err = f.decode(ctx, data, cost)
	}
	if err != nil && ctx.Err() != nil {
		return Photo{}, fmt.Errorf("imageprep: decode %s: %w", f.name, err)
	}
	if err != nil {
		return Photo{}, fail(classify(err), "decode %s: %w", f.name, err)
	}
	// The decoded size is the header's, reduced by a JPEG's scale (a GIF's
	// first frame may cover part of its canvas: it is drawn on it). libheif
	// crops a HEIC to its clean aperture (clap), if it has one.
	w, h := scaled(cfg.Width, shift), scaled(cfg.Height, shift)
	if b := img.Bounds(); f != &formatGIF && (b.Dx() != w || b.Dy() != h) {
		if f != &formatHEIC || b.Dx() > w || b.Dy() > h || b.Min != (image.Point{}) {
			return Photo{}, fail(ErrCorrupt, "decode %s: decoded %dx%d, header says %dx%d",
				f.name, b.Dx(), b.Dy(), cfg.Width, cfg.Height)
		}
		w, h = b.Dx(), b.Dy()
	}
	out := render(img, w, h, l.MaxSide, orient)
	ob := out.Bounds()
	data, err = encodeOutput(out, l.JPEGQuality)
	if err != nil {
		// Encoding an in-memory image cannot fail on I/O; a failure here
		// is about the image itself.
		return Photo{}, fail(ErrCorrupt, "encode JPEG: %w", err)
	}
	return Photo{
		Data:      data,
		MediaType: formatJPEG.mediaType,
		Width:     ob.Dx(),
		Height:    ob.Dy(),
		Converted: true,
		Reason:    strings.Join(reasons, "; "),
	}, nil
}

// render turns a decoded image with header dimensions w×h into the upright,
// downscaled, opaque image that gets encoded: Y'CbCr 4:2:0 for a Y'CbCr
// image (renderYCbCr), else RGBA.
func render(img image.Image, w, h, maxSide, orient int) image.Image {
	if y, ok := img.(*image.YCbCr); ok {
		if out := renderYCbCr(y, w, h, maxSide, orient); out != nil {
			return out
		}
	}
	return renderRGBA(img, w, h, maxSide, orient)
}

// renderRGBA is render through RGBA, for any image.
func renderRGBA(img image.Image, w, h, maxSide, orient int) *image.RGBA {
	dw, dh := fit(w, h, maxSide)
	rgba := shrink(img, w, h, boxFactor(w, h, dw, dh))
	rgba = resample(rgba, dw, dh)
	rgba = orientImage(rgba, orient)
	flatten(rgba)
	return rgba
}

// encodeOutput encodes what render made: a Y'CbCr 4:2:0 image with the
// package's own encoder (jpegenc), anything else with image/jpeg.
func encodeOutput(m image.Image, quality int) ([]byte, error) {
	if y, ok := m.(*image.YCbCr); ok && y.SubsampleRatio == image.YCbCrSubsampleRatio420 {
		return jpegenc.Encode(y, quality)
	}
	var buf bytes.Buffer
	b := m.Bounds()
	buf.Grow(b.Dx() * b.Dy() / 4)
	if err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: quality}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// fit returns the size of a w×h image scaled so its long side is at most
// maxSide, keeping the aspect ratio; no side is less than 1.
func fit(w, h, maxSide int) (int, int) {
	long, short := w, h
	if h > w {
		long, short = h, w
	}
	if long <= maxSide {
		return w, h
	}
	s := int((int64(short)*int64(maxSide) + int64(long)/2) / int64(long))
	s = max(s, 1)
	if w >= h {
		return maxSide, s
	}
	return s, maxSide
}

// fail returns a permanent error wrapping sentinel, with context formatted
// from format and args (which may use %w once more).
func fail(sentinel error, format string, args ...any) error {
	return fault.Permanent(fmt.Errorf("imageprep: %w: "+format, append([]any{sentinel}, args...)...))
}
