/*
 * avif_decode: the AVIF decoder module's one entry point (with malloc and
 * free), run by package wasmdec.
 *
 *   int32_t avif_decode(const uint8_t *data, uint32_t size,
 *                       uint32_t max_pixels, struct avif_result *out)
 *
 * decodes the first image of the AVIF file data[0:size] (by libavif and
 * dav1d, in one thread) into interleaved RGBA with premultiplied alpha, 8
 * bits a sample, or 16 (little-endian) for an image of more than 8 bits,
 * and fills out. It applies none of irot, imir and clap. It returns 0, or
 * one of the AVIF_ERR_* codes. An image of more than max_pixels pixels (as
 * its header declares) is refused before anything is decoded, one coded
 * larger before it is converted to RGBA (its coded frame is allocated: the
 * caller bounds the module's memory).
 *
 * The pixels stay in the module's memory: the caller copies them out, then
 * drops the whole instance (nothing is freed here).
 */
#include <stdint.h>

#include <avif/avif.h>

enum {
	AVIF_ERR_FORMAT = -1,    /* not an AVIF file libavif can read */
	AVIF_ERR_DECODE = -2,    /* the coded image could not be decoded */
	AVIF_ERR_TOO_LARGE = -3, /* more pixels than max_pixels */
	AVIF_ERR_CONVERT = -4,   /* the conversion to RGBA failed */
};

struct avif_result {
	uint32_t width, height;
	uint32_t depth;  /* bits a sample: 8 or 16 */
	uint32_t stride; /* bytes from one row to the next */
	uint32_t pixels; /* address of the first row */
};

int32_t avif_decode(const uint8_t *data, uint32_t size, uint32_t max_pixels, struct avif_result *out);

int32_t avif_decode(const uint8_t *data, uint32_t size, uint32_t max_pixels, struct avif_result *out) {
	*out = (struct avif_result){0};
	avifDecoder *dec = avifDecoderCreate();
	if (dec == 0) {
		return AVIF_ERR_DECODE;
	}
	dec->maxThreads = 1;
	dec->imageCountLimit = 1;
	dec->ignoreExif = AVIF_TRUE;
	dec->ignoreXMP = AVIF_TRUE;
	if (avifDecoderSetIOMemory(dec, data, size) != AVIF_RESULT_OK) {
		return AVIF_ERR_DECODE;
	}
	if (avifDecoderParse(dec) != AVIF_RESULT_OK) {
		return AVIF_ERR_FORMAT;
	}
	uint64_t w = dec->image->width, h = dec->image->height;
	if (w == 0 || h == 0 || w * h > max_pixels) {
		return AVIF_ERR_TOO_LARGE;
	}
	if (avifDecoderNextImage(dec) != AVIF_RESULT_OK) {
		return AVIF_ERR_DECODE;
	}
	avifImage *img = dec->image;
	w = img->width, h = img->height;
	if (w == 0 || h == 0 || w * h > max_pixels) {
		return AVIF_ERR_TOO_LARGE;
	}
	avifRGBImage rgb;
	avifRGBImageSetDefaults(&rgb, img);
	rgb.format = AVIF_RGB_FORMAT_RGBA;
	rgb.depth = img->depth > 8 ? 16 : 8;
	rgb.alphaPremultiplied = AVIF_TRUE;
	if (avifRGBImageAllocatePixels(&rgb) != AVIF_RESULT_OK || avifImageYUVToRGB(img, &rgb) != AVIF_RESULT_OK) {
		return AVIF_ERR_CONVERT;
	}
	out->width = rgb.width;
	out->height = rgb.height;
	out->depth = rgb.depth;
	out->stride = rgb.rowBytes;
	out->pixels = (uint32_t)(uintptr_t)rgb.pixels;
	return 0;
}
