package wasmdec

import (
	"context"
	"fmt"
	"image"
)

// What heic_decode (build/glue/heic.c) says the planes are.
const (
	heicYCbCr420 = 1
	heicYCbCr422 = 2
	heicYCbCr444 = 3
	heicGray     = 4
	heicRGBA     = 5
	heicNRGBA    = 6
)

// codeError maps the error codes the glue of both modules returns.
func codeError(format string) func(int32) error {
	return func(rc int32) error {
		switch rc {
		case -1:
			return fmt.Errorf("%w: not a %s file it reads", ErrDecode, format)
		case -3:
			return ErrPixels
		case -4:
			return fmt.Errorf("%w: a decoded layout it does not hand back", ErrDecode)
		}
		return fmt.Errorf("%w (code %d)", ErrDecode, rc)
	}
}

// HEIC decodes the primary image of a HEIF file whose images are HEVC, with
// libheif and libde265, under limits, until ctx ends. libheif turns and
// mirrors the image by its irot and imir properties and crops it to its
// clean aperture (clap); samples of more than 8 bits are brought to 8. The
// image is a *image.YCbCr, *image.Gray, or for an image with alpha an
// *image.RGBA or *image.NRGBA, in Go memory.
func HEIC(ctx context.Context, data []byte, limits Limits) (image.Image, error) {
	in, err := instantiate(ctx, heicModule, limits)
	if err != nil {
		return nil, err
	}
	defer in.close()
	// struct heic_result { width, height, kind, stride[3], plane[3] }
	v, err := in.decode("heic_decode", data, 9, codeError("HEIF"))
	if err != nil {
		return nil, err
	}
	w, h, kind := int(v[0]), int(v[1]), v[2]
	stride, plane := v[3:6], v[6:9]
	rect := image.Rect(0, 0, w, h)
	switch kind {
	case heicYCbCr420, heicYCbCr422, heicYCbCr444:
		ratio, cw, ch := image.YCbCrSubsampleRatio420, (w+1)/2, (h+1)/2
		switch kind {
		case heicYCbCr422:
			ratio, ch = image.YCbCrSubsampleRatio422, h
		case heicYCbCr444:
			ratio, cw, ch = image.YCbCrSubsampleRatio444, w, h
		}
		m := image.NewYCbCr(rect, ratio)
		err := in.plane(m.Y, m.YStride, plane[0], stride[0], w, h)
		if err == nil {
			err = in.plane(m.Cb, m.CStride, plane[1], stride[1], cw, ch)
		}
		if err == nil {
			err = in.plane(m.Cr, m.CStride, plane[2], stride[2], cw, ch)
		}
		return m, err
	case heicGray:
		m := image.NewGray(rect)
		return m, in.plane(m.Pix, m.Stride, plane[0], stride[0], w, h)
	case heicRGBA:
		m := image.NewRGBA(rect)
		return m, in.plane(m.Pix, m.Stride, plane[0], stride[0], 4*w, h)
	case heicNRGBA:
		m := image.NewNRGBA(rect)
		return m, in.plane(m.Pix, m.Stride, plane[0], stride[0], 4*w, h)
	}
	return nil, fmt.Errorf("%w: unknown layout %d", ErrDecode, kind)
}
