/*
 * The fast path's PNG layer over the system's libpng (the library
 * ImageMagick links): decoding an 8-bit RGB or gray PNG whose chunks the
 * Rust side has already vetted, and writing 8-bit RGB or gray as
 * ImageMagick's PNG writer (coders/png.c) does for the native profile:
 * zlib level 4, all filters (libpng's adaptive choice per row; for 8-bit
 * gray too, where ImageMagick's "no filters" leaves libpng's default, all),
 * memory level 9, a 32 KiB compression
 * buffer (IDAT chunks of 32 KiB), and no chunk but IHDR, orNT, IDAT and
 * IEND.
 *
 * libpng's errors longjmp back here; every function returns 0 on success
 * and 1 with a message of at most 200 bytes on failure, and never unwinds
 * into Rust. Warnings are counted: the caller hands such files to
 * ImageMagick. Memory comes from malloc, which is jemalloc in this process.
 */
#include <png.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IMP_MESSAGE 200

struct imp_state {
  char message[IMP_MESSAGE];
  long warnings;
  /* reading */
  const uint8_t *data;
  size_t len;
  size_t at;
  /* writing */
  uint8_t *out;
  size_t out_len;
  size_t out_cap;
};

static void imp_error(png_structp png, png_const_charp message) {
  struct imp_state *s = png_get_error_ptr(png);
  snprintf(s->message, IMP_MESSAGE, "%s", message);
  png_longjmp(png, 1);
}

static void imp_warning(png_structp png, png_const_charp message) {
  struct imp_state *s = png_get_error_ptr(png);
  (void)message;
  s->warnings++;
}

static void imp_read(png_structp png, png_bytep out, png_size_t n) {
  struct imp_state *s = png_get_io_ptr(png);
  if (n > s->len - s->at)
    png_error(png, "truncated PNG");
  memcpy(out, s->data + s->at, n);
  s->at += n;
}

/* Decodes an 8-bit RGB (components 3) or gray (1) PNG of width x height
 * (interlaced or not) into `rgb` (width * height * components bytes).
 * *warnings gets libpng's warning count. */
int imp_decode(const uint8_t *data, size_t len, uint32_t width, uint32_t height, int components, uint8_t *rgb,
               size_t rgb_len, long *warnings, char *message) {
  struct imp_state s;
  memset(&s, 0, sizeof s);
  s.data = data;
  s.len = len;
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &s, imp_error, imp_warning);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  png_bytep *rows = NULL;
  if (info == NULL) {
    snprintf(message, IMP_MESSAGE, "out of memory");
    png_destroy_read_struct(&png, NULL, NULL);
    return 1;
  }
  if (setjmp(png_jmpbuf(png))) {
    snprintf(message, IMP_MESSAGE, "%s", s.message);
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    return 1;
  }
  png_set_read_fn(png, &s, imp_read);
  /* The Rust side checked the size against the limits; libpng checks too. */
  png_set_user_limits(png, width, height);
  png_read_info(png, info);
  int type = components == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY;
  if (png_get_image_width(png, info) != width || png_get_image_height(png, info) != height ||
      png_get_bit_depth(png, info) != 8 || png_get_color_type(png, info) != type)
    png_error(png, "not the 8-bit PNG its header promised");
  if ((size_t)width * height * components > rgb_len)
    png_error(png, "pixel buffer too small");
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  rows = malloc(sizeof(png_bytep) * height);
  if (rows == NULL)
    png_error(png, "out of memory");
  for (uint32_t y = 0; y < height; y++)
    rows[y] = rgb + (size_t)y * width * components;
  png_read_image(png, rows);
  png_read_end(png, NULL);
  free(rows);
  rows = NULL;
  *warnings = s.warnings;
  png_destroy_read_struct(&png, &info, NULL);
  return 0;
}

static void imp_write(png_structp png, png_bytep data, png_size_t n) {
  struct imp_state *s = png_get_io_ptr(png);
  if (n > s->out_cap - s->out_len) {
    size_t cap = s->out_cap ? s->out_cap : 65536;
    while (n > cap - s->out_len)
      cap *= 2;
    uint8_t *grown = realloc(s->out, cap);
    if (grown == NULL)
      png_error(png, "out of memory");
    s->out = grown;
    s->out_cap = cap;
  }
  memcpy(s->out + s->out_len, data, n);
  s->out_len += n;
}

static void imp_flush(png_structp png) { (void)png; }

/* Writes width x height 8-bit RGB (components 3) or gray (1). A nonzero
 * `orientation` (an EXIF value)
 * is written in an orNT chunk right after IHDR, as ImageMagick writes one
 * for an image whose orientation it knows. On success *out (free with
 * imp_free) and *out_len hold the file. */
int imp_encode(const uint8_t *rgb, uint32_t width, uint32_t height, int components, int level, int orientation,
               uint8_t **out, size_t *out_len, char *message) {
  struct imp_state s;
  memset(&s, 0, sizeof s);
  *out = NULL;
  *out_len = 0;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &s, imp_error, imp_warning);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  if (info == NULL) {
    snprintf(message, IMP_MESSAGE, "out of memory");
    png_destroy_write_struct(&png, NULL);
    return 1;
  }
  if (setjmp(png_jmpbuf(png))) {
    snprintf(message, IMP_MESSAGE, "%s", s.message);
    free(s.out);
    png_destroy_write_struct(&png, &info);
    return 1;
  }
  png_set_write_fn(png, &s, imp_write, imp_flush);
  png_set_compression_buffer_size(png, 32768L);
  png_set_compression_mem_level(png, 9);
  png_set_compression_level(png, level);
  png_set_filter(png, PNG_FILTER_TYPE_BASE, PNG_ALL_FILTERS);
  png_set_IHDR(png, info, width, height, 8, components == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_BASE,
               PNG_FILTER_TYPE_BASE);
  png_write_info(png, info);
  if (orientation != 0) {
    png_byte value = (png_byte)orientation;
    png_write_chunk(png, (png_const_bytep) "orNT", &value, 1);
  }
  for (uint32_t y = 0; y < height; y++)
    png_write_row(png, (png_const_bytep)(rgb + (size_t)y * width * components));
  png_write_end(png, info);
  png_destroy_write_struct(&png, &info);
  *out = s.out;
  *out_len = s.out_len;
  return 0;
}

void imp_free(uint8_t *bytes) { free(bytes); }
