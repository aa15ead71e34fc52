package wasmdec

import (
	"context"
	"encoding/binary"
	"fmt"
	"image"
)

// AVIF decodes the first image of an AVIF file with libavif and dav1d,
// under limits, until ctx ends. libavif applies none of irot, imir and
// clap. The image is an *image.RGBA, or an *image.RGBA64 above 8 bits per
// channel, with premultiplied alpha, in Go memory.
func AVIF(ctx context.Context, data []byte, limits Limits) (image.Image, error) {
	in, err := instantiate(ctx, avifModule, limits)
	if err != nil {
		return nil, err
	}
	defer in.close()
	// struct avif_result { width, height, depth, stride, pixels }
	v, err := in.decode("avif_decode", data, 5, codeError("AVIF"))
	if err != nil {
		return nil, err
	}
	w, h, depth, stride, pixels := int(v[0]), int(v[1]), v[2], v[3], v[4]
	rect := image.Rect(0, 0, w, h)
	switch depth {
	case 8:
		m := image.NewRGBA(rect)
		return m, in.plane(m.Pix, m.Stride, pixels, stride, 4*w, h)
	case 16:
		m := image.NewRGBA64(rect)
		if err := in.plane(m.Pix, m.Stride, pixels, stride, 8*w, h); err != nil {
			return nil, err
		}
		// 16-bit samples in the module's (little-endian) order; Go's are
		// big-endian.
		for i := 0; i+1 < len(m.Pix); i += 2 {
			binary.BigEndian.PutUint16(m.Pix[i:], binary.LittleEndian.Uint16(m.Pix[i:]))
		}
		return m, nil
	}
	return nil, fmt.Errorf("%w: unknown depth %d", ErrDecode, depth)
}
