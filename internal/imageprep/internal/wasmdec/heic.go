package wasmdec

import (
	"context"
	"image"
)

// HEIC decodes the primary image of a HEIF file whose images are HEVC, with
// libheif and libde265, under limits, until ctx ends. libheif turns and
// mirrors the image by its irot and imir properties and crops it to its
// clean aperture (clap); samples of more than 8 bits are brought to 8. The
// image is a *image.YCbCr (its planes as coded, read as JFIF's), an
// *image.Gray, or for an image with alpha an *image.RGBA or *image.NRGBA, in
// Go memory.
func HEIC(ctx context.Context, data []byte, limits Limits) (image.Image, error) {
	in, err := instantiate(ctx, heicModule, limits)
	if err != nil {
		return nil, err
	}
	defer in.close()
	return in.run("heic_decode", "HEIF", data)
}
