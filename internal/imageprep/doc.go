// Package imageprep turns the bytes of an image blob into the bytes a vision
// model is sent.
//
// It owns one step and nothing around it: image bytes in, model-ready bytes
// out. It does no network or registry I/O, knows nothing of manifests or
// providers beyond the media types a provider takes as-is ([Limits.Accept]),
// and keeps no state between calls.
//
// [Prepare] sniffs the format from the content (never from a declared media
// type), reads only the header and the EXIF orientation first, refuses
// decompression bombs before any pixel is allocated, and passes acceptable
// images through byte for byte. Anything else is decoded, turned upright per
// its EXIF orientation, downscaled so its long side fits [Limits.MaxSide],
// flattened on white and encoded as JPEG.
//
// Every error it returns wraps one of [ErrUnsupported], [ErrTooLarge] or
// [ErrCorrupt] and is marked permanent with fault.Permanent: no retry can fix
// the bytes of a photo.
package imageprep
