/*
 * avif_decode: the AVIF decoder module's one entry point (with malloc and
 * free), run by package wasmdec.
 *
 *   int32_t avif_decode(const uint8_t *data, uint32_t size,
 *                       uint32_t max_pixels, struct result *out)
 *
 * decodes the first image of the AVIF file data[0:size] (by libavif and
 * dav1d, in one thread) and fills out (result.h). It applies none of irot,
 * imir and clap. An 8-bit image without alpha whose samples are what
 * JFIF's are (BT.601, full range) is handed back as its Y, Cb and Cr planes
 * (or Y alone), as decoded; any other is converted to interleaved RGBA with
 * premultiplied alpha, of 8 bits, or 16 for an image of more than 8. It
 * returns 0, or one of the ERR_* codes of result.h. An image of more than
 * max_pixels pixels (as its header declares) is refused before anything is
 * decoded; one coded larger, before it is converted (its coded frame is
 * allocated: the caller bounds the module's memory).
 *
 * The pixels stay in the module's memory: the caller copies them out, then
 * drops the whole instance (nothing is freed here).
 */
#include <stdint.h>

#include <avif/avif.h>

#include "result.h"

int32_t avif_decode(const uint8_t *data, uint32_t size, uint32_t max_pixels, struct result *out);

/* jfif returns the kind of img's planes if they can be handed back as they
 * are, else 0. */
static uint32_t jfif(const avifImage *img) {
	if (img->depth != 8 || img->alphaPlane != 0 || img->yuvRange != AVIF_RANGE_FULL) {
		return 0;
	}
	switch (img->matrixCoefficients) {
	case AVIF_MATRIX_COEFFICIENTS_BT601:
	case AVIF_MATRIX_COEFFICIENTS_BT470BG:
	case AVIF_MATRIX_COEFFICIENTS_UNSPECIFIED: /* libavif's reading too */
		break;
	default:
		return 0;
	}
	switch (img->yuvFormat) {
	case AVIF_PIXEL_FORMAT_YUV420: return KIND_YCBCR420;
	case AVIF_PIXEL_FORMAT_YUV422: return KIND_YCBCR422;
	case AVIF_PIXEL_FORMAT_YUV444: return KIND_YCBCR444;
	case AVIF_PIXEL_FORMAT_YUV400: return KIND_GRAY;
	default: return 0;
	}
}

int32_t avif_decode(const uint8_t *data, uint32_t size, uint32_t max_pixels, struct result *out) {
	*out = (struct result){0};
	avifDecoder *dec = avifDecoderCreate();
	if (dec == 0) {
		return ERR_DECODE;
	}
	dec->maxThreads = 1;
	dec->imageCountLimit = 1;
	dec->ignoreExif = AVIF_TRUE;
	dec->ignoreXMP = AVIF_TRUE;
	if (avifDecoderSetIOMemory(dec, data, size) != AVIF_RESULT_OK) {
		return ERR_DECODE;
	}
	if (avifDecoderParse(dec) != AVIF_RESULT_OK) {
		return ERR_FORMAT;
	}
	uint64_t w = dec->image->width, h = dec->image->height;
	if (w == 0 || h == 0 || w * h > max_pixels) {
		return ERR_TOO_LARGE;
	}
	if (avifDecoderNextImage(dec) != AVIF_RESULT_OK) {
		return ERR_DECODE;
	}
	avifImage *img = dec->image;
	w = img->width, h = img->height;
	if (w == 0 || h == 0 || w * h > max_pixels) {
		return ERR_TOO_LARGE;
	}
	out->width = img->width;
	out->height = img->height;

	if ((out->kind = jfif(img)) != 0) {
		int planes = out->kind == KIND_GRAY ? 1 : 3;
		for (int i = 0; i < planes; i++) {
			if (img->yuvPlanes[i] == 0) {
				return ERR_LAYOUT;
			}
			out->plane[i] = (uint32_t)(uintptr_t)img->yuvPlanes[i];
			out->stride[i] = img->yuvRowBytes[i];
		}
		return 0;
	}

	avifRGBImage rgb;
	avifRGBImageSetDefaults(&rgb, img);
	rgb.format = AVIF_RGB_FORMAT_RGBA;
	rgb.depth = img->depth > 8 ? 16 : 8;
	rgb.alphaPremultiplied = AVIF_TRUE;
	if (avifRGBImageAllocatePixels(&rgb) != AVIF_RESULT_OK || avifImageYUVToRGB(img, &rgb) != AVIF_RESULT_OK) {
		return ERR_LAYOUT;
	}
	out->kind = rgb.depth == 16 ? KIND_RGBA64 : KIND_RGBA;
	out->plane[0] = (uint32_t)(uintptr_t)rgb.pixels;
	out->stride[0] = rgb.rowBytes;
	return 0;
}
