/*
 * The fast path's AVIF layer: AVIF from 8-bit RGB or gray through libheif,
 * as ImageMagick's HEIC writer (coders/heic.c, WriteHEICImage) calls it for
 * an opaque sRGB or gray image: the AV1 encoder libheif prefers, the plan's
 * lossy quality, `speed` and `chroma` as the native profile sets them
 * (heic:speed, heic:chroma), interleaved RGB (or a monochrome plane) handed
 * to libheif, which converts to YCbCr itself, and the default encoding
 * options with the orientation ImageMagick passes after auto-orienting
 * (normal). No metadata is written (the plan strips).
 *
 * One difference on purpose: the encoder runs on one thread ("threads" 1).
 * The worker pool already runs one job per core; libaom's own threads only
 * contend with the other workers.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libheif/heif.h>

struct buffer {
  uint8_t *data;
  size_t len;
};

static struct heif_error write_all(struct heif_context *ctx, const void *data, size_t size, void *userdata) {
  (void)ctx;
  struct buffer *b = userdata;
  struct heif_error ok = {heif_error_Ok, heif_suberror_Unspecified, "ok"};
  struct heif_error oom = {heif_error_Memory_allocation_error, heif_suberror_Unspecified, "out of memory"};
  uint8_t *grown = realloc(b->data, b->len + size);
  if (grown == NULL)
    return oom;
  memcpy(grown + b->len, data, size);
  b->data = grown;
  b->len += size;
  return ok;
}

static int failed(struct heif_error e, char *message) {
  if (e.code == heif_error_Ok)
    return 0;
  snprintf(message, 200, "%s", e.message ? e.message : "libheif error");
  return 1;
}

/* Encodes height rows of width x components (1 or 3) bytes. On success
 * returns 0 and out and out_len hold the file (free with ima_free); else
 * returns 1 and a NUL-terminated message of at most 200 bytes. */
int ima_encode(const uint8_t *pixels, int width, int height, int components, int quality, const char *speed,
               const char *chroma, uint8_t **out, size_t *out_len, char *message) {
  struct heif_context *ctx = heif_context_alloc();
  struct heif_encoder *encoder = NULL;
  struct heif_image *image = NULL;
  struct heif_encoding_options *options = NULL;
  struct buffer b = {NULL, 0};
  int rc = 1;
  *out = NULL;
  *out_len = 0;
  if (ctx == NULL) {
    snprintf(message, 200, "out of memory");
    return 1;
  }
  if (failed(heif_context_get_encoder_for_format(ctx, heif_compression_AV1, &encoder), message))
    goto done;
  if (failed(heif_encoder_set_lossy_quality(encoder, quality), message) ||
      failed(heif_encoder_set_parameter(encoder, "speed", speed), message) ||
      failed(heif_encoder_set_parameter(encoder, "chroma", chroma), message) ||
      failed(heif_encoder_set_parameter_integer(encoder, "threads", 1), message))
    goto done;
  int gray = components == 1;
  if (failed(heif_image_create(width, height, gray ? heif_colorspace_monochrome : heif_colorspace_RGB,
                               gray ? heif_chroma_monochrome : heif_chroma_interleaved_RGB, &image),
             message))
    goto done;
  enum heif_channel channel = gray ? heif_channel_Y : heif_channel_interleaved;
  if (failed(heif_image_add_plane(image, channel, width, height, 8), message))
    goto done;
  int stride = 0;
  uint8_t *plane = heif_image_get_plane(image, channel, &stride);
  if (plane == NULL) {
    snprintf(message, 200, "libheif gave no image plane");
    goto done;
  }
  size_t row = (size_t)width * (size_t)components;
  for (int y = 0; y < height; y++)
    memcpy(plane + (size_t)y * (size_t)stride, pixels + (size_t)y * row, row);
  options = heif_encoding_options_alloc();
  options->image_orientation = heif_orientation_normal;
  if (failed(heif_context_encode_image(ctx, image, encoder, options, NULL), message))
    goto done;
  struct heif_writer writer;
  writer.writer_api_version = 1;
  writer.write = write_all;
  if (failed(heif_context_write(ctx, &writer, &b), message))
    goto done;
  *out = b.data;
  *out_len = b.len;
  b.data = NULL;
  rc = 0;
done:
  free(b.data);
  if (options)
    heif_encoding_options_free(options);
  if (image)
    heif_image_release(image);
  if (encoder)
    heif_encoder_release(encoder);
  heif_context_free(ctx);
  return rc;
}

void ima_free(uint8_t *bytes) { free(bytes); }
