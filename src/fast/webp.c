/*
 * The fast path's WebP layer: lossy WebP from 8-bit RGB, with the settings
 * ImageMagick's WebP writer (coders/webp.c, WriteWEBPImage) uses for a plan
 * without alpha: WebPConfigInit's defaults, the quality, the method the
 * native profile sets (webp:method), and ARGB input (use_argb), so libwebp
 * makes the same RGB to YUV conversion for both engines. No metadata chunk
 * is written (the plan strips; ImageMagick writes none then).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <webp/encode.h>

static void say(char *message, const char *what, int code) {
  snprintf(message, 200, "%s (libwebp error %d)", what, code);
}

/* Encodes height rows of width x 3 bytes. On success returns 0 and
 * out and out_len hold the file (free with imw_free); else returns 1 and a
 * NUL-terminated message of at most 200 bytes. */
int imw_encode(const uint8_t *rgb, int width, int height, int quality, int method, uint8_t **out, size_t *out_len,
               char *message) {
  WebPConfig config;
  WebPPicture picture;
  WebPMemoryWriter writer;
  *out = NULL;
  *out_len = 0;
  if (!WebPConfigInit(&config) || !WebPPictureInit(&picture)) {
    say(message, "libwebp version mismatch", 0);
    return 1;
  }
  config.quality = (float)quality;
  config.method = method;
  if (!WebPValidateConfig(&config)) {
    say(message, "invalid WebP settings", 0);
    return 1;
  }
  picture.width = width;
  picture.height = height;
  picture.use_argb = 1;
  if (!WebPPictureImportRGB(&picture, rgb, width * 3)) {
    say(message, "out of memory importing pixels", picture.error_code);
    WebPPictureFree(&picture);
    return 1;
  }
  WebPMemoryWriterInit(&writer);
  picture.writer = WebPMemoryWrite;
  picture.custom_ptr = &writer;
  int ok = WebPEncode(&config, &picture);
  int code = picture.error_code;
  WebPPictureFree(&picture);
  if (!ok) {
    WebPMemoryWriterClear(&writer);
    say(message, "WebP encoding failed", code);
    return 1;
  }
  *out = writer.mem;
  *out_len = writer.size;
  return 0;
}

void imw_free(uint8_t *bytes) { WebPFree(bytes); }
