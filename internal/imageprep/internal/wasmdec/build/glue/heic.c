/*
 * heic_decode: the HEIC decoder module's one entry point (with malloc and
 * free), run by package wasmdec.
 *
 *   int32_t heic_decode(const uint8_t *data, uint32_t size,
 *                       uint32_t max_pixels, struct result *out)
 *
 * decodes the primary image of the HEIF file data[0:size] (HEVC coded, by
 * libheif and libde265), turned, mirrored and cropped by its irot, imir and
 * clap properties, with samples of 8 bits, and fills out. It returns 0, or
 * one of the ERR_* codes. An image of more than max_pixels pixels (as
 * its header declares) is refused before anything is decoded.
 *
 * The planes stay in the module's memory: the caller copies them out, then
 * drops the whole instance (nothing is freed here).
 */
#include <stdint.h>

#include <libheif/heif.h>

#include "result.h"

int32_t heic_decode(const uint8_t *data, uint32_t size, uint32_t max_pixels, struct result *out);

static int32_t plane(const struct heif_image *img, enum heif_channel c, struct result *out, int i) {
	int stride = 0;
	const uint8_t *p = heif_image_get_plane_readonly(img, c, &stride);
	if (p == 0 || stride <= 0 || heif_image_get_bits_per_pixel_range(img, c) != 8) {
		return ERR_LAYOUT;
	}
	out->plane[i] = (uint32_t)(uintptr_t)p;
	out->stride[i] = (uint32_t)stride;
	return 0;
}

int32_t heic_decode(const uint8_t *data, uint32_t size, uint32_t max_pixels, struct result *out) {
	*out = (struct result){0};
	if (heif_check_filetype(data, (int)size) != heif_filetype_yes_supported) {
		return ERR_FORMAT;
	}
	struct heif_context *ctx = heif_context_alloc();
	if (ctx == 0) {
		return ERR_DECODE;
	}
	heif_context_set_max_decoding_threads(ctx, 0);
	struct heif_image_handle *handle = 0;
	if (heif_context_read_from_memory_without_copy(ctx, data, size, 0).code != heif_error_Ok ||
	    heif_context_get_primary_image_handle(ctx, &handle).code != heif_error_Ok) {
		return ERR_FORMAT;
	}
	uint64_t w = (uint64_t)heif_image_handle_get_ispe_width(handle);
	uint64_t h = (uint64_t)heif_image_handle_get_ispe_height(handle);
	if (w == 0 || h == 0 || w * h > max_pixels) {
		return ERR_TOO_LARGE;
	}

	/* The coded layout, but for an image with alpha: RGBA. */
	enum heif_colorspace colorspace = heif_colorspace_undefined;
	enum heif_chroma chroma = heif_chroma_undefined;
	int alpha = heif_image_handle_has_alpha_channel(handle);
	if (alpha) {
		colorspace = heif_colorspace_RGB;
		chroma = heif_chroma_interleaved_RGBA;
	}
	struct heif_decoding_options *options = heif_decoding_options_alloc();
	if (options == 0) {
		return ERR_DECODE;
	}
	options->convert_hdr_to_8bit = 1;
	struct heif_image *img = 0;
	if (heif_decode_image(handle, &img, colorspace, chroma, options).code != heif_error_Ok) {
		return ERR_DECODE;
	}
	/* The image as turned and cropped. */
	w = (uint64_t)heif_image_get_primary_width(img);
	h = (uint64_t)heif_image_get_primary_height(img);
	if (w == 0 || h == 0 || w * h > max_pixels) {
		return ERR_TOO_LARGE;
	}
	out->width = (uint32_t)w;
	out->height = (uint32_t)h;

	int32_t err = ERR_LAYOUT;
	switch (heif_image_get_colorspace(img)) {
	case heif_colorspace_YCbCr:
		switch (heif_image_get_chroma_format(img)) {
		case heif_chroma_420: out->kind = KIND_YCBCR420; break;
		case heif_chroma_422: out->kind = KIND_YCBCR422; break;
		case heif_chroma_444: out->kind = KIND_YCBCR444; break;
		default: return ERR_LAYOUT;
		}
		if ((err = plane(img, heif_channel_Y, out, 0)) == 0 && (err = plane(img, heif_channel_Cb, out, 1)) == 0) {
			err = plane(img, heif_channel_Cr, out, 2);
		}
		break;
	case heif_colorspace_monochrome:
		out->kind = KIND_GRAY;
		err = plane(img, heif_channel_Y, out, 0);
		break;
	case heif_colorspace_RGB:
		if (heif_image_get_chroma_format(img) != heif_chroma_interleaved_RGBA) {
			return ERR_LAYOUT;
		}
		out->kind = heif_image_handle_is_premultiplied_alpha(handle) ? KIND_RGBA : KIND_NRGBA;
		err = plane(img, heif_channel_interleaved, out, 0);
		break;
	default:
		break;
	}
	return err;
}
