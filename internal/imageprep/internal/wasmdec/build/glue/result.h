/*
 * The result both modules' entry points fill, and their error codes: the
 * ABI package wasmdec reads (decode.go).
 */
#ifndef REGSCRIBE_RESULT_H
#define REGSCRIBE_RESULT_H

#include <stdint.h>

enum {
	ERR_FORMAT = -1,    /* not a file the decoder reads */
	ERR_DECODE = -2,    /* the coded image could not be decoded */
	ERR_TOO_LARGE = -3, /* more pixels than max_pixels */
	ERR_LAYOUT = -4,    /* a decoded layout the glue does not hand back */
};

/* What result.kind says the planes are. Samples are 8 bits but for
 * KIND_RGBA64. */
enum {
	KIND_YCBCR420 = 1, /* Y, Cb, Cr (JFIF: BT.601, full range); chroma half as wide and high */
	KIND_YCBCR422 = 2, /* chroma half as wide */
	KIND_YCBCR444 = 3,
	KIND_GRAY = 4,   /* Y only */
	KIND_RGBA = 5,   /* one interleaved plane, alpha premultiplied */
	KIND_NRGBA = 6,  /* one interleaved plane, alpha not premultiplied */
	KIND_RGBA64 = 7, /* KIND_RGBA of 16-bit little-endian samples */
};

struct result {
	uint32_t width, height, kind;
	uint32_t stride[3]; /* bytes from one row of each plane to the next */
	uint32_t plane[3];  /* address of each plane's first row, or 0 */
};

#endif
