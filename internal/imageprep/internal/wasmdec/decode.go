package wasmdec

import (
	"encoding/binary"
	"fmt"
	"image"
)

// The kinds of image a module's entry point hands back (build/glue/result.h).
const (
	kindYCbCr420 = 1
	kindYCbCr422 = 2
	kindYCbCr444 = 3
	kindGray     = 4
	kindRGBA     = 5
	kindNRGBA    = 6
	kindRGBA64   = 7
)

// resultWords is the size of the modules' struct result, in 32-bit words:
// width, height, kind, stride[3], plane[3].
const resultWords = 9

// codeError maps the error codes of the modules' entry points
// (build/glue/result.h).
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

// run decodes data with the module's entry point fn and copies the image it
// hands back into Go memory.
func (in *instance) run(fn, format string, data []byte) (image.Image, error) {
	v, err := in.decode(fn, data, resultWords, codeError(format))
	if err != nil {
		return nil, err
	}
	w, h, kind := int(v[0]), int(v[1]), v[2]
	stride, plane := v[3:6], v[6:9]
	rect := image.Rect(0, 0, w, h)
	switch kind {
	case kindYCbCr420, kindYCbCr422, kindYCbCr444:
		ratio, cw, ch := image.YCbCrSubsampleRatio420, (w+1)/2, (h+1)/2
		switch kind {
		case kindYCbCr422:
			ratio, ch = image.YCbCrSubsampleRatio422, h
		case kindYCbCr444:
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
	case kindGray:
		m := image.NewGray(rect)
		return m, in.plane(m.Pix, m.Stride, plane[0], stride[0], w, h)
	case kindRGBA:
		m := image.NewRGBA(rect)
		return m, in.plane(m.Pix, m.Stride, plane[0], stride[0], 4*w, h)
	case kindNRGBA:
		m := image.NewNRGBA(rect)
		return m, in.plane(m.Pix, m.Stride, plane[0], stride[0], 4*w, h)
	case kindRGBA64:
		m := image.NewRGBA64(rect)
		if err := in.plane(m.Pix, m.Stride, plane[0], stride[0], 8*w, h); err != nil {
			return nil, err
		}
		// 16-bit samples in the module's (little-endian) order; Go's are
		// big-endian.
		for i := 0; i+1 < len(m.Pix); i += 2 {
			binary.BigEndian.PutUint16(m.Pix[i:], binary.LittleEndian.Uint16(m.Pix[i:]))
		}
		return m, nil
	}
	return nil, fmt.Errorf("%w: unknown layout %d", ErrDecode, kind)
}
