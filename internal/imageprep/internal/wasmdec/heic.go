package wasmdec

import (
	"fmt"
	"image"
)

// What lib/heic/heif.c reports (libheif's enums).
const (
	heifColorspaceYCbCr      = 0
	heifColorspaceRGB        = 1
	heifColorspaceMonochrome = 2

	heifChroma420 = 1
	heifChroma422 = 2
	heifChroma444 = 3
)

// align16 rounds n up to a multiple of 16: the row stride the glue's
// caller assumes (libheif's own stride is larger for planes of 48 bytes a
// row or less, which then come out sheared: callers refuse such images).
func align16(n uint64) uint64 { return (n + 15) &^ 15 }

// HEIC decodes the primary image of a HEIF file whose images are HEVC, with
// libheif and libde265, in a module instance whose memory may grow to at
// most limit bytes. libheif turns and mirrors the image by its irot and
// imir properties and crops it to its clean aperture (clap). The image is
// a *image.YCbCr, *image.Gray, *image.RGBA or *image.NRGBA in Go memory.
func HEIC(data []byte, limit uint64) (image.Image, error) {
	// decode(in, size, config_only, *width, *height, *colorspace,
	// *chroma, *premultiplied, out): 1 on success.
	in, src, res, err := start(heicModule, limit, data, 5)
	if err != nil {
		return nil, err
	}
	defer in.close()
	args := func(configOnly, out uint32) []uint64 {
		return []uint64{uint64(src), uint64(len(data)), uint64(configOnly),
			uint64(res), uint64(res + 4), uint64(res + 8), uint64(res + 12), uint64(res + 16), uint64(out)}
	}
	if ok, err := in.call("decode", args(1, 0)...); err != nil || ok == 0 {
		return nil, in.failed(orDecode(err))
	}
	v, err := in.u32s(res, 5)
	if err != nil {
		return nil, err
	}
	width, height, colorspace, chroma, premultiplied := uint64(v[0]), uint64(v[1]), v[2], v[3], v[4]
	rect := image.Rect(0, 0, int(width), int(height))

	var size, stride, cstride, i0, i1 uint64
	var ratio image.YCbCrSubsampleRatio
	switch colorspace {
	case heifColorspaceYCbCr:
		cw, ch := (width+1)/2, (height+1)/2
		switch chroma {
		case heifChroma420:
			ratio = image.YCbCrSubsampleRatio420
		case heifChroma422:
			ratio, ch = image.YCbCrSubsampleRatio422, height
		case heifChroma444:
			ratio, cw, ch = image.YCbCrSubsampleRatio444, width, height
		default:
			return nil, fmt.Errorf("unsupported chroma %d", chroma)
		}
		stride, cstride = align16(width), align16(cw)
		i0 = stride * height
		i1 = i0 + cstride*ch
		size = i1 + cstride*ch
	case heifColorspaceMonochrome:
		stride = align16(width)
		size = stride * height
	case heifColorspaceRGB:
		stride = align16(4 * width)
		size = stride * height
	default:
		return nil, fmt.Errorf("unsupported colorspace %d", colorspace)
	}
	out, err := in.malloc(size)
	if err != nil {
		return nil, err
	}
	if ok, err := in.call("decode", args(0, out)...); err != nil || ok == 0 {
		return nil, in.failed(orDecode(err))
	}
	view, err := in.view(out, size)
	if err != nil {
		return nil, err
	}
	pix := make([]byte, size)
	copy(pix, view)

	switch {
	case colorspace == heifColorspaceYCbCr:
		return &image.YCbCr{
			Y: pix[:i0:i0], Cb: pix[i0:i1:i1], Cr: pix[i1:size:size],
			YStride: int(stride), CStride: int(cstride), SubsampleRatio: ratio, Rect: rect,
		}, nil
	case colorspace == heifColorspaceMonochrome:
		return &image.Gray{Pix: pix, Stride: int(stride), Rect: rect}, nil
	case premultiplied == 1:
		return &image.RGBA{Pix: pix, Stride: int(stride), Rect: rect}, nil
	}
	return &image.NRGBA{Pix: pix, Stride: int(stride), Rect: rect}, nil
}

// orDecode returns err, or ErrDecode for a decode that returned 0.
func orDecode(err error) error {
	if err != nil {
		return err
	}
	return ErrDecode
}
