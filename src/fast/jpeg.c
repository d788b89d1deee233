/*
 * The fast path's JPEG codec: a thin layer over the system's libjpeg (the
 * same libjpeg-turbo shared library ImageMagick links, so there is one copy
 * of every jpeg_* symbol in the process), with libjpeg's longjmp error
 * handling kept on this side of the FFI boundary: every function returns 0
 * on success and -1 with a message on failure, and never unwinds into Rust.
 *
 * Memory: libjpeg allocates with malloc, which in this process is jemalloc,
 * so it is counted and profiled like everything else; pixel buffers are
 * Rust's.
 */
#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jpeglib.h>

#define IMJ_MESSAGE 200

struct imj_error {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    char message[IMJ_MESSAGE];
};

static void imj_error_exit(j_common_ptr cinfo)
{
    struct imj_error *err = (struct imj_error *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, err->message);
    longjmp(err->jump, 1);
}

/* Warnings (corrupt data that libjpeg recovers from) are counted; the
 * caller hands such files to ImageMagick, whose handling of them (a warning,
 * or an error past its limit) is the service's. */
static void imj_emit_message(j_common_ptr cinfo, int level)
{
    if (level < 0)
        cinfo->err->num_warnings++;
}

struct imj_decoder {
    struct jpeg_decompress_struct cinfo;
    struct imj_error err;
    int started;
    JOCTET *icc;
    unsigned int icc_len;
};

/* What the header says, after scaling. */
struct imj_header {
    unsigned int width, height;          /* as stored, full size */
    unsigned int out_width, out_height;  /* after the scale chosen */
    int components;                      /* of the output: 1 or 3 */
    int jpeg_color_space;                /* J_COLOR_SPACE of the file */
    int saw_jfif, density_unit, x_density, y_density;
    int saw_adobe;
    int progressive;
    const unsigned char *exif;           /* APP1 payload, or NULL */
    unsigned int exif_len;
    const unsigned char *icc;            /* reassembled APP2 ICC profile, or NULL */
    unsigned int icc_len;
    int samp[6];                         /* h, v sampling factors of the first three components */
    const unsigned char *photoshop;      /* the first Photoshop APP13 payload after "Photoshop 3.0\0", or NULL */
    unsigned int photoshop_len;
    int photoshop_count;                 /* APP13 markers ImageMagick reads as Photoshop resources */
    int xmp_tiff;                        /* an XMP packet names tiff: properties */
};

struct imj_decoder *imj_decoder_new(void)
{
    struct imj_decoder *volatile d = calloc(1, sizeof *d);
    if (d == NULL)
        return NULL;
    d->cinfo.err = jpeg_std_error(&d->err.mgr);
    d->err.mgr.error_exit = imj_error_exit;
    d->err.mgr.emit_message = imj_emit_message;
    if (setjmp(d->err.jump)) {
        free(d);
        return NULL;
    }
    jpeg_create_decompress(&d->cinfo);
    return d;
}

void imj_decoder_free(struct imj_decoder *d)
{
    if (d == NULL)
        return;
    jpeg_destroy_decompress(&d->cinfo);
    free(d->icc);
    free(d);
}

const char *imj_decoder_message(const struct imj_decoder *d)
{
    return d->err.message;
}

long imj_decoder_warnings(const struct imj_decoder *d)
{
    return d->err.mgr.num_warnings;
}

/* Reads the header of `data` (which must outlive the decoder) and asks for
 * RGB or grayscale output at full size. */
int imj_decoder_header(struct imj_decoder *d, const unsigned char *data, unsigned long len,
                       struct imj_header *h)
{
    struct jpeg_decompress_struct *c = &d->cinfo;
    jpeg_saved_marker_ptr m;
    if (setjmp(d->err.jump))
        return -1;
    jpeg_mem_src(c, data, len);
    jpeg_save_markers(c, JPEG_APP0 + 1, 0xFFFF);
    jpeg_save_markers(c, JPEG_APP0 + 2, 0xFFFF);
    jpeg_save_markers(c, JPEG_APP0 + 13, 0xFFFF);
    if (jpeg_read_header(c, TRUE) != JPEG_HEADER_OK) {
        snprintf(d->err.message, IMJ_MESSAGE, "no JPEG image in the data");
        return -1;
    }
    memset(h, 0, sizeof *h);
    h->width = c->image_width;
    h->height = c->image_height;
    h->jpeg_color_space = c->jpeg_color_space;
    h->saw_jfif = c->saw_JFIF_marker;
    h->density_unit = c->density_unit;
    h->x_density = c->X_density;
    h->y_density = c->Y_density;
    h->saw_adobe = c->saw_Adobe_marker;
    h->progressive = c->progressive_mode;
    {
        int i;
        for (i = 0; i < 3 && i < c->num_components; i++) {
            h->samp[2 * i] = c->comp_info[i].h_samp_factor;
            h->samp[2 * i + 1] = c->comp_info[i].v_samp_factor;
        }
    }
    for (m = c->marker_list; m != NULL; m = m->next) {
        if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 && memcmp(m->data, "Exif\0\0", 6) == 0 &&
            h->exif == NULL) {
            h->exif = m->data;
            h->exif_len = m->data_length;
        }
        if (m->marker == JPEG_APP0 + 1 && m->data_length >= 29 &&
            memcmp(m->data, "http://ns.adobe.com/xap/1.0/", 28) == 0 &&
            memmem(m->data, m->data_length, "tiff:", 5) != NULL)
            h->xmp_tiff = 1;
        /* ImageMagick's test (ReadIPTCProfile): more than 25 bytes, "Photoshop "
           in any case, then a 4-byte version before the resource blocks. */
        if (m->marker == JPEG_APP0 + 13 && m->data_length > 25 &&
            strncasecmp((const char *)m->data, "Photoshop ", 10) == 0) {
            if (h->photoshop_count++ == 0) {
                h->photoshop = m->data + 14;
                h->photoshop_len = m->data_length - 14;
            }
        }
    }
    if (jpeg_read_icc_profile(c, &d->icc, &d->icc_len)) {
        h->icc = d->icc;
        h->icc_len = d->icc_len;
    }
    switch (c->jpeg_color_space) {
    case JCS_GRAYSCALE:
        c->out_color_space = JCS_GRAYSCALE;
        break;
    case JCS_YCbCr:
    case JCS_RGB:
        c->out_color_space = JCS_RGB;
        break;
    default:
        /* CMYK, YCCK and others: not for this path. */
        h->components = c->num_components;
        return 0;
    }
    jpeg_calc_output_dimensions(c);
    h->out_width = c->output_width;
    h->out_height = c->output_height;
    h->components = c->output_components;
    return 0;
}

/* Asks for a 1/scale_denom decode: libjpeg picks the smallest M/8 at least
 * that large, exactly as it does for ImageMagick's jpeg:size hint. */
int imj_decoder_scale(struct imj_decoder *d, unsigned int scale_denom, unsigned int *width,
                      unsigned int *height)
{
    struct jpeg_decompress_struct *c = &d->cinfo;
    if (setjmp(d->err.jump))
        return -1;
    c->scale_num = 1;
    c->scale_denom = scale_denom < 1 ? 1 : scale_denom;
    jpeg_calc_output_dimensions(c);
    *width = c->output_width;
    *height = c->output_height;
    return 0;
}

/* Decodes into `pixels` (out_height rows of out_width * components bytes). */
int imj_decoder_pixels(struct imj_decoder *d, unsigned char *pixels, unsigned long len)
{
    struct jpeg_decompress_struct *c = &d->cinfo;
    if (setjmp(d->err.jump))
        return -1;
    if (!jpeg_start_decompress(c))
        return -1;
    d->started = 1;
    {
        unsigned long stride = (unsigned long)c->output_width * (unsigned long)c->output_components;
        if (stride * c->output_height > len) {
            snprintf(d->err.message, IMJ_MESSAGE, "pixel buffer too small");
            return -1;
        }
        while (c->output_scanline < c->output_height) {
            JSAMPROW row = pixels + (unsigned long)c->output_scanline * stride;
            jpeg_read_scanlines(c, &row, 1);
        }
    }
    jpeg_finish_decompress(c);
    return 0;
}

/* Encodes `pixels` (components 1 or 3) the way ImageMagick's JPEG writer
 * does: the sampling factors `samp` (h, v for the first three components)
 * when given, else 4:2:0 below quality 90 and 4:4:4 from it; the fast
 * integer DCT up to quality 90; Huffman tables optimised; a JFIF header
 * carrying the resolution. *out is malloc'ed: free it with imj_free. */
int imj_encode(const unsigned char *pixels, unsigned int width, unsigned int height, int components,
               int quality, int progressive, int density_unit, int x_density, int y_density,
               const int *samp, unsigned char **out, unsigned long *out_len, char *message)
{
    struct jpeg_compress_struct c;
    struct imj_error err;
    int i;
    memset(&c, 0, sizeof c);
    *out = NULL;
    *out_len = 0;
    c.err = jpeg_std_error(&err.mgr);
    err.mgr.error_exit = imj_error_exit;
    err.mgr.emit_message = imj_emit_message;
    err.message[0] = 0;
    if (setjmp(err.jump)) {
        memcpy(message, err.message, IMJ_MESSAGE);
        jpeg_destroy_compress(&c);
        free(*out);
        *out = NULL;
        return -1;
    }
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, out, out_len);
    c.image_width = width;
    c.image_height = height;
    c.input_components = components;
    c.in_color_space = components == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&c);
    if (x_density > 0 && y_density > 0 && x_density < 32767 && y_density < 32767) {
        c.write_JFIF_header = TRUE;
        c.X_density = (UINT16)x_density;
        c.Y_density = (UINT16)y_density;
        c.density_unit = (UINT8)density_unit;
    }
    c.optimize_coding = TRUE;
    if (progressive)
        jpeg_simple_progression(&c);
    jpeg_set_quality(&c, quality, TRUE);
    if (quality <= 90)
        c.dct_method = JDCT_IFAST;
    for (i = 0; i < MAX_COMPONENTS; i++) {
        if (samp != NULL && i < 3) {
            c.comp_info[i].h_samp_factor = samp[2 * i];
            c.comp_info[i].v_samp_factor = samp[2 * i + 1];
        } else if (samp != NULL || quality >= 90) {
            c.comp_info[i].h_samp_factor = 1;
            c.comp_info[i].v_samp_factor = 1;
        }
    }
    jpeg_start_compress(&c, TRUE);
    {
        unsigned long stride = (unsigned long)width * (unsigned long)components;
        while (c.next_scanline < c.image_height) {
            JSAMPROW row = (JSAMPROW)(pixels + (unsigned long)c.next_scanline * stride);
            jpeg_write_scanlines(&c, &row, 1);
        }
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    return 0;
}

void imj_free(void *p)
{
    free(p);
}
