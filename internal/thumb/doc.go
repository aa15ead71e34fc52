// Package thumb makes and keeps the gallery's thumbnails.
//
// A thumbnail is made by regscribe from the photo's image layer, fetched from
// a configured registry through the registry client, decoded and re-encoded
// as a small JPEG with package imageprep: the bytes a registry holds are never
// served as they are (an SVG or HTML layer pushed as image/png would run in
// the gallery's origin; here it just fails to decode). The layer must be one
// of the named manifest's layers in the named repository, and no bigger than
// the configured blob limit.
//
// Thumbnails are cached on disk by blob digest and size, under a bounded total
// size (least recently used ones are evicted first), and each blob is made at
// most once at a time however many requests ask for it.
//
// The package does no HTTP serving and decides nothing about who may ask: the
// web server checks that first.
package thumb
