package imageprep

import (
	"fmt"
	"image"
	"image/color"

	"github.com/regscribe/regscribe/internal/imageprep/internal/jpegdec"
)

// jpegShift returns the log2 of the smallest DCT scale (1, 1/2, 1/4, 1/8)
// at which a w×h JPEG still has a long side of at least maxSide, so that
// the resampling filter finishes the job from more pixels than it makes.
func jpegShift(w, h, maxSide int) uint {
	long := max(w, h)
	shift := uint(0)
	for shift < 3 && scaled(long, shift+1) >= maxSide {
		shift++
	}
	return shift
}

// scaled returns n pixels at scale 1/2^shift, rounded up as the decoder
// does.
func scaled(n int, shift uint) int {
	return (n + 1<<shift - 1) >> shift
}

// decodeJPEG decodes a JPEG at scale 1/2^shift, its chroma at the same
// scale as its luma (a 4:2:0 one stays 4:2:0): the pipeline makes 4:2:0
// (renderYCbCr), for which jpegShift's scale leaves chroma enough.
func decodeJPEG(data []byte, shift uint) (img image.Image, err error) {
	defer recoverDecoder(&err)
	img, err = jpegdec.DecodeScaled(data, shift)
	if err == nil && img == nil {
		err = fmt.Errorf("decoder returned no image")
	}
	return img, err
}

// HEIF and AVIF are decoded by C libraries compiled to WebAssembly (package
// wasmdec): their memory is the module's linear memory, which holds the
// input, the decoder's frames and the output, copied out to Go at the end.
// A 12 MP HEIC ends with 52 MiB of linear memory (4.5 B/px), a 12 MP AVIF
// (4:4:4, handed back as its planes) with 44 MiB (3.8 B/px); an AVIF
// converted to RGBA takes about twice that. The bytes per pixel charged,
// well above those, are also what the linear memory of each decode
// may grow to, plus wasmdec.Overhead (16 MiB and twice the file). A file
// whose coded stream is larger than its header says is refused
// (ErrTooLarge) when its decoder asks for more, with nothing beyond the
// limit allocated. More than 8 bits per channel counts twice.
const (
	heicBytesPerPixel = 16
	avifBytesPerPixel = 32
)

// decodeCost returns the bytes the decoder of f allocates for the image
// whose header is cfg, decoded at scale 1/2^shift, and how that was
// reckoned.
func decodeCost(f *format, cfg image.Config, data []byte, shift uint) (int64, string) {
	w, h := int64(scaled(cfg.Width, shift)), int64(scaled(cfg.Height, shift))
	px := w * h
	switch f {
	case &formatJPEG:
		comps := int64(3)
		switch cfg.ColorModel {
		case color.GrayModel:
			comps = 1
		case color.CMYKModel:
			comps = 4 + 4 // the planes, then the CMYK image
		}
		cost := px * comps
		what := fmt.Sprintf("%d B/px at 1/%d", comps, 1<<shift)
		if jpegProgressive(data) {
			// The coefficients kept across scans: at most every one of
			// every block as int32, and a mask of 8 bytes per block
			// (fewer at a reduced scale, which keeps only those it
			// uses; charged alike).
			full := int64(cfg.Width) * int64(cfg.Height)
			cost += full*min(comps, 4)*4 + full*min(comps, 4)/8
			what += fmt.Sprintf(" + progressive coefficients %d B/px", min(comps, 4)*4)
		}
		return cost, what
	case &formatHEIC, &formatAVIF:
		bpp := int64(heicBytesPerPixel)
		if f == &formatAVIF {
			bpp = avifBytesPerPixel
		}
		if cfg.ColorModel == color.RGBA64Model { // more than 8 bits
			bpp *= 2
		}
		return px * bpp, fmt.Sprintf("%d B/px in the WebAssembly decoder", bpp)
	}
	bpp := bytesPerPixel(cfg.ColorModel)
	return px * bpp, fmt.Sprintf("%d B/px", bpp)
}

// bytesPerPixel returns the bytes per pixel of the image a decoder returns
// for an image of colour model m, 8 when unknown.
func bytesPerPixel(m color.Model) int64 {
	switch m {
	case color.GrayModel, color.AlphaModel:
		return 1
	case color.Gray16Model, color.Alpha16Model:
		return 2
	case color.YCbCrModel:
		return 3
	case color.RGBAModel, color.NRGBAModel, color.CMYKModel, color.NYCbCrAModel:
		return 4
	case color.RGBA64Model, color.NRGBA64Model:
		return 8
	}
	if _, ok := m.(color.Palette); ok {
		return 1
	}
	return 8
}

// jpegProgressive reports whether the JPEG data has a progressive frame
// header (SOF2).
func jpegProgressive(data []byte) bool {
	prog := false
	walkJPEG(data, func(marker byte, _ []byte) bool {
		if marker >= 0xc0 && marker <= 0xcf && marker != 0xc4 && marker != 0xc8 && marker != 0xcc {
			prog = marker == 0xc2
			return false
		}
		return true
	})
	return prog
}
