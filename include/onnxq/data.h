/* onnxq: calibration data readers.
 *
 * A reader streams batches for a model's inputs from a file or a folder; it
 * holds one sample per input (and the batch it is building), never the whole
 * data set. What the path holds is detected:
 *
 *  - FILE.npy (or FILE.pb): one model input. The array is one sample (the
 *    input's rank minus the batch axis) or many along axis 0 (the input's
 *    rank); .npy files are read a sample at a time, a .pb file whole.
 *  - a single image (.png, .jpg, .jpeg): one sample of an image input.
 *  - a folder of .npy/.pb files: one model input; files are taken in byte
 *    order of their names, each one sample or a batch as above.
 *  - a folder with one sub-folder per model input, named after it (x/, mask/):
 *    files of each sub-folder in name order (.npy/.pb, or images for an image
 *    input); the K-th files of all inputs belong together and must hold the
 *    same number of samples.
 *  - a folder of per-sample sub-folders (sorted by name), each holding one file
 *    per input: NAME.npy or NAME.pb after the input's name, or input_K.npy /
 *    input_K.pb after its position K among the inputs given to oq_data_open
 *    (the ONNX test data layout, test_data_set_N/input_K.pb; files named
 *    output_* are ignored there); NAME.png/.jpg/.jpeg for an image input.
 *  - one such sample folder given directly: a folder whose .npy/.pb files are
 *    all named input_K or output_K (a test_data_set_N folder) is one sample.
 *  - a folder of images (.png, .jpg, .jpeg, any case; name order) for a model
 *    with one image input (4-D, C = 1 or 3); preprocessed as described at
 *    oq_data_options.
 * A tensor's name stored in a .pb file is not used for matching. Names
 * starting with '.' and files with other extensions are ignored; a
 * folder that mixes image and tensor files, or files and sub-folders of
 * tensors, is refused as ambiguous.
 *
 * Samples are grouped into batches of batch_size regardless of file
 * boundaries; the last batch may be smaller. A batch holds samples of one
 * shape: when a sample's shape differs from the first of its batch (possible
 * only with symbolic dimensions), the batch ends early and the next one starts
 * with that sample. Axis 0 of a model input is its batch axis; an input
 * declared without a shape takes every file as a batch along axis 0.
 *
 * Checks, each an error whose message names the file: the dtype must equal the
 * input's (no conversion, e.g. float64 .npy for a float input is refused);
 * the rank must be the input's (a batch) or one less (one sample); every fixed
 * dimension but the batch one must match (the message shows the expected shape
 * with symbolic names, e.g. [batch,3,224,224], and the actual shape); a fixed
 * batch dimension B requires batches of exactly B; NaN or Inf in float data is
 * an error naming the element's index in the file; an empty folder, a folder
 * without usable files, a missing input file, and an unreadable, truncated or
 * corrupt image (with the decoder's message) are errors. */
#ifndef ONNXQ_DATA_H
#define ONNXQ_DATA_H

#include <stddef.h>

#include "onnxq/graph.h"
#include "onnxq/status.h"
#include "onnxq/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum oq_data_layout {
    OQ_LAYOUT_AUTO = 0, /* NCHW when dim 1 is fixed at 1 or 3, else NHWC when dim 3
                           is, else NCHW */
    OQ_LAYOUT_NCHW,
    OQ_LAYOUT_NHWC
} oq_data_layout;

typedef enum oq_data_color {
    OQ_COLOR_AUTO = 0, /* GRAY when the input's channel dimension is 1, else RGB */
    OQ_COLOR_RGB,
    OQ_COLOR_BGR,
    OQ_COLOR_GRAY
} oq_data_color;

/* Image preprocessing, in this order (that of torchvision's Resize,
 * CenterCrop, ToTensor, Normalize), computed in float without rounding:
 *
 *  1. decode to 8-bit gray or RGB: PNG through libpng (palettes expanded,
 *     16-bit samples scaled to 8 bits with rounding, alpha dropped without
 *     compositing), JPEG through libjpeg-turbo (CMYK refused). The format is
 *     detected from the file's first bytes, not its extension. Data errors in
 *     a JPEG that libjpeg reports as warnings (truncation, corrupt data) are
 *     errors here. EXIF orientation is not applied (as with PIL's
 *     Image.open); decoded images over 1 GiB are refused.
 *  2. resize (optional): resize_short = R scales the shorter side to R and the
 *     longer one to floor(R * long / short); resize_w x resize_h scales to
 *     exactly that size. Bilinear with antialiasing: output pixel x takes the
 *     triangle filter centred at (x + 0.5) * in / out, widened by in / out when
 *     shrinking (the filter of PIL and of torchvision with antialias=True).
 *  3. center crop (optional) to crop_w x crop_h, offset round_half_even((size -
 *     crop) / 2) on each axis as torchvision; a crop larger than the image is
 *     an error.
 *  4. color: a gray image feeds RGB/BGR by repeating it; an RGB image feeds
 *     GRAY as 0.299 R + 0.587 G + 0.114 B; BGR reverses the channel order.
 *  5. normalise: value = (p * scale - mean[c]) / std[c], where p is the pixel
 *     in 0..255 and c the channel in the output's order (mean[0] is B for BGR;
 *     only mean[0] and std[0] are used for GRAY). scale 0 means p / 255, so
 *     mean and std are in [0, 1] units as torchvision's (ImageNet: mean 0.485,
 *     0.456, 0.406, std 0.229, 0.224, 0.225); scale 1 keeps pixel units.
 *  6. layout NCHW or NHWC; the input's dtype must be float.
 * The final height and width must match the input's fixed dimensions. */
typedef struct oq_data_options {
    size_t batch_size; /* samples per batch; 0: the input's fixed batch dimension, else 1 */
    size_t samples;    /* use at most this many samples; 0: all */
    int resize_short;  /* > 0: shorter side to this length, aspect ratio kept */
    int resize_w, resize_h; /* > 0 (both): exactly this size; excludes resize_short */
    int crop_w, crop_h;     /* > 0 (both): center crop */
    float mean[3];
    float std[3];
    float scale;            /* pixel scale; 0: 1/255 (applied as a division by 255) */
    oq_data_layout layout;
    oq_data_color color;
} oq_data_options;

/* Defaults: batch size from the model, all samples, no resize or crop, mean 0,
 * std 1, scale 1/255, layout and color automatic. */
void oq_data_options_default(oq_data_options *o);

/* Sets one option from text, as the command line spells it:
 *   "batch-size" N, "samples" N, "resize" R or WxH, "crop" S or WxH (both
 *   width first), "mean" and "std" one value or three comma-separated, or
 *   "imagenet" for the usual ImageNet values, "scale" S (a number or 1/N),
 *   "layout" auto|nchw|nhwc, "color" auto|rgb|bgr|gray.
 * The message names the option and the bad value. */
oq_status oq_data_options_set(oq_data_options *o, const char *key, const char *value);

typedef struct oq_data_reader oq_data_reader;

/* Opens path for the model inputs (the graph inputs that are not
 * initializers, in order; names and types with their dims, symbolic dims
 * allowed). Options are checked, the kind of source is detected, files are
 * listed and the headers of .npy files are checked against the inputs (up to
 * the samples limit) before this returns. opts may be NULL for the defaults.
 * The reader keeps pointers to inputs: they must outlive it. */
oq_status oq_data_open(const char *path, const oq_data_options *opts,
                       const oq_value_info *const *inputs, size_t n_inputs,
                       oq_data_reader **out);

/* The next batch: *batch points to one tensor per model input (in the order of
 * inputs, each named after its input), owned by the reader and valid until the
 * next call or oq_data_close; *n_samples is the number of samples in it (axis 0
 * of every tensor). At the end *n_samples is 0 and *batch NULL. After an error
 * the reader can only be closed. */
oq_status oq_data_next(oq_data_reader *r, oq_tensor ***batch, size_t *n_samples);

/* Samples the reader will deliver, when known in advance (.npy and images;
 * capped by the samples option), else 0. */
size_t oq_data_total(const oq_data_reader *r);
/* The batch size in use (after resolving 0). */
size_t oq_data_batch_size(const oq_data_reader *r);
/* A short description of the detected source ("folder of 100 images", ...). */
const char *oq_data_describe(const oq_data_reader *r);
/* The file the last sample came from (or the one that failed); "" before the
 * first. */
const char *oq_data_current_file(const oq_data_reader *r);

void oq_data_close(oq_data_reader *r);

#ifdef __cplusplus
}
#endif
#endif
