package wasmdec

import (
	"context"
	"image"
)

// AVIF decodes the first image of an AVIF file with libavif and dav1d,
// under limits, until ctx ends. libavif applies none of irot, imir and
// clap. An 8-bit image without alpha coded as JFIF's (BT.601 matrix, full
// range) is a *image.YCbCr or *image.Gray of its planes as decoded; any
// other is converted to an *image.RGBA, or an *image.RGBA64 above 8 bits
// per channel, with premultiplied alpha. The image is in Go memory.
func AVIF(ctx context.Context, data []byte, limits Limits) (image.Image, error) {
	in, err := instantiate(ctx, avifModule, limits)
	if err != nil {
		return nil, err
	}
	defer in.close()
	return in.run("avif_decode", "AVIF", data)
}
