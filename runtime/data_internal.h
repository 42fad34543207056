/* data_internal.h: the data set shared by runtime/data*.c. A data set is
 * either dense (one tensor [n, ...], from NPY, IDX or CSV) or a list of
 * image files decoded per batch; labels are doubles [n, label_width]. */
#ifndef GR_DATA_INTERNAL_H
#define GR_DATA_INTERNAL_H

#include "runtime/gr_runtime.h"

/* One image of an image folder: its path and the size stbi_info gave. */
typedef struct {
    char *path;
    int width, height, channels;
} data_image;

struct gr_dataset {
    char *path;
    gr_data_format format;
    int64_t n;
    /* Dense samples: data [n, sample...]. */
    gr_tensor data;
    gr_shape sample;
    int64_t sample_numel;
    /* Image folders: n images; class k's name is class_names[k]. */
    data_image *images;
    char **class_names;
    int64_t n_folders;
    /* Labels: n * label_width values, from label_source. */
    double *labels;
    int64_t label_width;
    char *label_source;
};

char *data_strdup(const char *s); /* gr_malloc'd copy, NULL on failure */
/* Reads a whole (possibly gzip-compressed) file: *buf gr_malloc'd with a
 * NUL after *len bytes. */
gr_code data_read_all(const char *path, char **buf, size_t *len, gr_status *st);
/* Takes ownership of labels (n * width doubles) and names their source. */
gr_code data_set_labels(gr_dataset *d, double *labels, int64_t width, const char *source,
                        gr_status *st);

gr_code data_load_csv(gr_dataset *d, const char *text, size_t len, const gr_data_opts *opts,
                      gr_status *st);
gr_code data_load_images(gr_dataset *d, gr_status *st);
void data_free_images(gr_dataset *d);
/* Decodes image i with channels channels (0: as stored) into *pixels
 * ([h,w,c] u8, stbi_image_free'd by data_free_pixels). */
gr_code data_decode_image(const gr_dataset *d, int64_t i, int channels,
                          unsigned char **pixels, int *width, int *height, int *n_channels,
                          gr_status *st);
void data_free_pixels(unsigned char *pixels);

#endif /* GR_DATA_INTERNAL_H */
