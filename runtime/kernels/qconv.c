/* Convolution helpers of the fast 8-bit path (see qgemm.h): the phase
 * planes of the implicit product (no im2col) and the int32 planes of the
 * direct depthwise kernels. Portable C (SSE2 where the compiler has it). */
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "qgemm.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

static size_t ceil_div(size_t a, size_t b) { return (a + b - 1) / b; }

bool oq_qconv_plan_init(oq_qconv_plan *p, size_t c, size_t h, size_t w, size_t kh, size_t kw,
                        size_t sh, size_t sw, size_t dh, size_t dw, size_t pt, size_t pl,
                        size_t oh, size_t ow)
{
    if (sh < 1 || sw < 1 || sh > 16 || sw > 16)
        return false;
    memset(p, 0, sizeof *p);
    p->c = c;
    p->c4 = ceil_div(c, 4);
    p->h = h;
    p->w = w;
    p->kh = kh;
    p->kw = kw;
    p->sh = sh;
    p->sw = sw;
    p->dh = dh;
    p->dw = dw;
    p->pt = pt;
    p->pl = pl;
    p->oh = oh;
    p->ow = ow;
    size_t hp = (oh - 1) * sh + (kh - 1) * dh + 1, wp = (ow - 1) * sw + (kw - 1) * dw + 1;
    p->hs = ceil_div(hp, sh);
    p->ws = ceil_div(wp, sw);
    for (int i = 0; i < 16 * 16; i++)
        p->phase_of[i] = -1;
    for (size_t ky = 0; ky < kh; ky++)
        for (size_t kx = 0; kx < kw; kx++) {
            size_t ph = ((ky * dh) % sh) * 16 + (kx * dw) % sw;
            if (p->phase_of[ph] < 0)
                p->phase_of[ph] = (int)p->nphase++;
        }
    size_t qx_max = (kw - 1) * dw / sw;
    p->plane = (p->hs * p->ws + qx_max + 16 + 15) & ~(size_t)15;
    p->k4 = kh * kw * p->c4;
    p->q = oh * p->ws;
    return true;
}

size_t oq_qconv_image_bytes(const oq_qconv_plan *p)
{
    return p->nphase * p->c4 * p->plane * 4;
}

void oq_qconv_offsets(const oq_qconv_plan *p, ptrdiff_t *boff)
{
    size_t kk = 0;
    for (size_t ky = 0; ky < p->kh; ky++)
        for (size_t kx = 0; kx < p->kw; kx++) {
            size_t cy = ky * p->dh, cx = kx * p->dw;
            size_t ph = (size_t)p->phase_of[(cy % p->sh) * 16 + cx % p->sw];
            size_t shift = (cy / p->sh) * p->ws + cx / p->sw;
            for (size_t c4 = 0; c4 < p->c4; c4++)
                boff[kk++] = (ptrdiff_t)(((ph * p->c4 + c4) * p->plane + shift) * 4);
        }
}

/* dst[4x + t] = r[t][x] ^ fl for x < n. */
static void interleave4(const uint8_t *r0, const uint8_t *r1, const uint8_t *r2,
                        const uint8_t *r3, size_t n, uint8_t fl, uint8_t *dst)
{
    size_t x = 0;
#if defined(__SSE2__)
    const __m128i f = _mm_set1_epi8((char)fl);
    for (; n >= 16; x += 16) {
        if (x + 16 > n)
            x = n - 16; /* the last vector overlaps the one before */
        __m128i a = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(r0 + x)), f);
        __m128i b = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(r1 + x)), f);
        __m128i c = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(r2 + x)), f);
        __m128i d = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(r3 + x)), f);
        __m128i ab0 = _mm_unpacklo_epi8(a, b), ab1 = _mm_unpackhi_epi8(a, b);
        __m128i cd0 = _mm_unpacklo_epi8(c, d), cd1 = _mm_unpackhi_epi8(c, d);
        _mm_storeu_si128((__m128i *)(dst + 4 * x), _mm_unpacklo_epi16(ab0, cd0));
        _mm_storeu_si128((__m128i *)(dst + 4 * x + 16), _mm_unpackhi_epi16(ab0, cd0));
        _mm_storeu_si128((__m128i *)(dst + 4 * x + 32), _mm_unpacklo_epi16(ab1, cd1));
        _mm_storeu_si128((__m128i *)(dst + 4 * x + 48), _mm_unpackhi_epi16(ab1, cd1));
        if (x + 16 >= n)
            return;
    }
#endif
    for (; x < n; x++) {
        dst[4 * x] = r0[x] ^ fl;
        dst[4 * x + 1] = r1[x] ^ fl;
        dst[4 * x + 2] = r2[x] ^ fl;
        dst[4 * x + 3] = r3[x] ^ fl;
    }
}

/* dst[i] = src[i * stride] ^ fl for i < n (reads nothing past
 * src[(n - 1) * stride]). */
static void gather(const uint8_t *src, size_t stride, size_t n, uint8_t fl, uint8_t *dst)
{
    size_t i = 0;
    if (stride == 1 && !fl) {
        memcpy(dst, src, n);
        return;
    }
#if defined(__SSE2__)
    const __m128i f = _mm_set1_epi8((char)fl);
    if (stride == 1) {
        for (; i + 16 <= n; i += 16)
            _mm_storeu_si128((__m128i *)(dst + i),
                             _mm_xor_si128(_mm_loadu_si128((const __m128i *)(src + i)), f));
    } else if (stride == 2) {
        const __m128i lo = _mm_set1_epi16(0x00ff);
        for (; i + 17 <= n; i += 16) {
            __m128i a = _mm_and_si128(_mm_loadu_si128((const __m128i *)(src + 2 * i)), lo);
            __m128i b = _mm_and_si128(_mm_loadu_si128((const __m128i *)(src + 2 * i + 16)), lo);
            _mm_storeu_si128((__m128i *)(dst + i), _mm_xor_si128(_mm_packus_epi16(a, b), f));
        }
    }
#endif
    for (; i < n; i++)
        dst[i] = src[i * stride] ^ fl;
}

static void fill_pad(uint8_t *d, uint8_t pad, size_t n)
{
    if (n > 16)
        memset(d, pad, n);
    else
        for (size_t i = 0; i < n; i++)
            d[i] = pad;
}

/* Stride 2: the two phase rows d0, d1 (pw columns each) of one input row
 * straight from the row (w bytes, pl padding columns on the left): phase q
 * column X holds input column 2X + q - pl, or pad outside the row. Reading
 * the input directly avoids loading vectors over bytes just stored one by
 * one (a store-forwarding stall on every vector). */
static void dw_row_s2(const uint8_t *row, size_t w, size_t pl, size_t pw, uint8_t fl,
                      uint8_t pad, uint8_t *d0, uint8_t *d1)
{
    /* X in [xa, xb): both phases inside the row */
    size_t xa = (pl + 1) / 2, xb = (w + pl) / 2;
    xb = xb < pw ? xb : pw;
    size_t X = 0;
    for (; X < pw; X++) {
        if (X == xa && xb >= xa + 16)
            break;
        for (size_t q = 0; q < 2; q++) {
            size_t c = 2 * X + q;
            uint8_t v = c >= pl && c - pl < w ? row[c - pl] ^ fl : pad;
            (q ? d1 : d0)[X] = v;
        }
    }
    if (X == pw)
        return;
#if defined(__SSE2__)
    const __m128i lo = _mm_set1_epi16(0x00ff), f = _mm_set1_epi8((char)fl);
    for (size_t i = xa;; i += 16) {
        if (i + 16 > xb)
            i = xb - 16; /* the last vector overlaps the one before */
        const uint8_t *s = row + 2 * i - pl;
        __m128i a = _mm_loadu_si128((const __m128i *)s);
        __m128i b = _mm_loadu_si128((const __m128i *)(s + 16));
        __m128i e = _mm_packus_epi16(_mm_and_si128(a, lo), _mm_and_si128(b, lo));
        __m128i o = _mm_packus_epi16(_mm_srli_epi16(a, 8), _mm_srli_epi16(b, 8));
        _mm_storeu_si128((__m128i *)(d0 + i), _mm_xor_si128(e, f));
        _mm_storeu_si128((__m128i *)(d1 + i), _mm_xor_si128(o, f));
        if (i + 16 >= xb)
            break;
    }
#else
    for (size_t i = xa; i < xb; i++) {
        d0[i] = row[2 * i - pl] ^ fl;
        d1[i] = row[2 * i + 1 - pl] ^ fl;
    }
#endif
    for (X = xb; X < pw; X++)
        for (size_t q = 0; q < 2; q++) {
            size_t c = 2 * X + q;
            (q ? d1 : d0)[X] = c >= pl && c - pl < w ? row[c - pl] ^ fl : pad;
        }
}

/* One padded row of channel c: padded row py (input row py - pt), columns
 * 0..n (input column - pl), flipped; zeros for channels past the last. */
static void padded_row(const oq_qconv_plan *p, const uint8_t *x, size_t c, size_t py, size_t n,
                       uint8_t fl, uint8_t pad, uint8_t *out)
{
    if (c >= p->c) {
        memset(out, 0, n);
        return;
    }
    if (py < p->pt || py - p->pt >= p->h) {
        memset(out, pad, n);
        return;
    }
    size_t left = p->pl < n ? p->pl : n, mid = p->w < n - left ? p->w : n - left;
    fill_pad(out, pad, left);
    gather(x + (c * p->h + py - p->pt) * p->w, 1, mid, fl, out + left);
    fill_pad(out + left + mid, pad, n - left - mid);
}

size_t oq_qconv_row_bytes(const oq_qconv_plan *p)
{
    return (4 * (p->ws * p->sw + 64) + 8 * (p->ws + 32) + 63) & ~(size_t)63;
}

/* Horizontal stride 1: each plane row straight from 4 input rows (a row
 * outside the image, or of a channel past the last, reads padrow: len bytes
 * of pad ^ fl; a channel past the last may hold anything, its weights being
 * zero), the padding columns written as pad. When the planes are the image
 * itself (no padding, whole rows), each channel group is one interleave. */
static void image_c4_s1(const oq_qconv_plan *p, const uint8_t *x, size_t c4, size_t py0,
                        size_t py1, uint8_t fl, uint8_t pad, const uint8_t *padrow, uint8_t *img)
{
    size_t ws = p->ws, sh = p->sh, hw = p->h * p->w;
    size_t left = p->pl < ws ? p->pl : ws, mid = p->w < ws - left ? p->w : ws - left;
    size_t right = ws - left - mid;
    const uint8_t *ch[4];
    for (size_t t = 0; t < 4; t++)
        ch[t] = c4 * 4 + t < p->c ? x + (c4 * 4 + t) * hw : NULL;
    if (sh == 1 && p->pt == 0 && left == 0 && right == 0 && mid == p->w && p->hs <= p->h) {
        uint8_t *dst = img + (c4 * p->plane + py0 * ws) * 4; /* the one phase */
        size_t o = py0 * ws;
        interleave4(ch[0] + o, (ch[1] ? ch[1] : ch[0]) + o, (ch[2] ? ch[2] : ch[0]) + o,
                    (ch[3] ? ch[3] : ch[0]) + o, (py1 - py0) * ws, fl, dst);
        return;
    }
    for (size_t py = py0; py < py1; py++) {
        int ph = p->phase_of[(py % sh) * 16];
        if (ph < 0)
            continue;
        bool in = py >= p->pt && py - p->pt < p->h;
        const uint8_t *r[4];
        for (size_t t = 0; t < 4; t++)
            r[t] = in && ch[t] ? ch[t] + (py - p->pt) * p->w : padrow;
        uint8_t *dst = img + (((size_t)ph * p->c4 + c4) * p->plane + py / sh * ws) * 4;
        memset(dst, pad, 4 * left);
        interleave4(r[0], r[1], r[2], r[3], mid, fl, dst + 4 * left);
        memset(dst + 4 * (left + mid), pad, 4 * right);
    }
}

/* Other strides: 4 padded rows (or 4 x 2 phase rows for stride 2, straight
 * from the input), then each phase row interleaved. */
static void image_c4_strided(const oq_qconv_plan *p, const uint8_t *x, size_t c4, size_t py0,
                             size_t py1, uint8_t fl, uint8_t pad, uint8_t *buf, uint8_t *img)
{
    size_t sh = p->sh, sw = p->sw, ws = p->ws, len = ws * sw;
    size_t rl = len + 64, pl2 = ws + 32;
    uint8_t *ex = buf + 4 * rl;
    for (size_t py = py0; py < py1; py++) {
        size_t ry = py % sh, Y = py / sh;
        bool used = false;
        for (size_t rx = 0; rx < sw; rx++)
            used |= p->phase_of[ry * 16 + rx] >= 0;
        if (!used)
            continue;
        if (sw == 2) { /* both phase rows straight from the input */
            for (size_t t = 0; t < 4; t++) {
                size_t c = c4 * 4 + t;
                uint8_t *e0 = ex + (2 * t) * pl2, *e1 = ex + (2 * t + 1) * pl2;
                if (c >= p->c || py < p->pt || py - p->pt >= p->h) {
                    uint8_t v = c >= p->c ? 0 : pad;
                    memset(e0, v, ws);
                    memset(e1, v, ws);
                } else {
                    dw_row_s2(x + (c * p->h + py - p->pt) * p->w, p->w, p->pl, ws, fl, pad, e0,
                              e1);
                }
            }
        } else {
            for (size_t t = 0; t < 4; t++)
                padded_row(p, x, c4 * 4 + t, py, len, fl, pad, buf + t * rl);
        }
        for (size_t rx = 0; rx < sw; rx++) {
            int ph = p->phase_of[ry * 16 + rx];
            if (ph < 0)
                continue;
            const uint8_t *r[4];
            for (size_t t = 0; t < 4; t++) {
                if (sw == 2) {
                    r[t] = ex + (2 * t + rx) * pl2;
                } else {
                    uint8_t *d = ex + t * pl2;
                    for (size_t i = 0; i < ws; i++)
                        d[i] = buf[t * rl + i * sw + rx];
                    r[t] = d;
                }
            }
            uint8_t *dst = img + ((size_t)ph * p->c4 + c4) * p->plane * 4;
            interleave4(r[0], r[1], r[2], r[3], ws, 0, dst + Y * ws * 4);
        }
    }
}

void oq_qconv_image(const oq_qconv_plan *p, const uint8_t *x, bool flip, uint8_t pad,
                    uint8_t *img, uint8_t *rows, int threads)
{
    uint8_t fl = flip ? 0x80 : 0;
    bool par = threads > 1 && p->c4 * p->nphase * p->plane >= 4096;
    /* tasks: channel groups, each in bands of padded rows when there are
     * fewer groups than threads (a first layer's 3 channels) */
    size_t rows_all = p->hs * p->sh, bands = par && p->c4 < (size_t)threads ? (size_t)threads : 1;
    (void)threads;
#pragma omp parallel for schedule(static) num_threads(threads) if (par)
    for (size_t t = 0; t < p->c4 * bands; t++) {
        size_t c4 = t / bands, band = t % bands;
        /* whole stride rows per band: a plane row is one padded row */
        size_t py0 = rows_all / p->sh * band / bands * p->sh;
        size_t py1 = band + 1 == bands ? rows_all : rows_all / p->sh * (band + 1) / bands * p->sh;
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        uint8_t *buf = rows + (size_t)tid * oq_qconv_row_bytes(p);
        if (p->sw == 1) {
            memset(buf, pad ^ fl, p->ws);
            image_c4_s1(p, x, c4, py0, py1, fl, pad, buf, img);
        } else {
            image_c4_strided(p, x, c4, py0, py1, fl, pad, buf, img);
        }
        if (band + 1 < bands)
            continue;
        size_t used = p->hs * p->ws;
        for (size_t ph = 0; ph < p->nphase; ph++)
            memset(img + (ph * p->c4 + c4) * p->plane * 4 + used * 4, 0,
                   (p->plane - used) * 4);
    }
}

void oq_qconv_compact(const oq_qconv_plan *p, const uint8_t *img, const ptrdiff_t *boff,
                      uint8_t *dst, int threads)
{
    size_t row = p->ow * 4, n = p->oh * row, chunks = (row + 15) / 16;
    bool par = threads > 1 && p->k4 * n >= ((size_t)1 << 16);
    (void)threads;
#pragma omp parallel for schedule(static) num_threads(threads) if (par)
    for (size_t kk = 0; kk < p->k4; kk++) {
        const uint8_t *src = img + boff[kk];
        uint8_t *d = dst + kk * n;
        /* whole 16-byte chunks: a row's last one runs into the next row,
         * written after it; the last row's ends exactly */
        for (size_t oy = 0; oy + 1 < p->oh; oy++)
            for (size_t c = 0; c < chunks; c++)
                memcpy(d + oy * row + 16 * c, src + oy * p->ws * 4 + 16 * c, 16);
        const uint8_t *s = src + (p->oh - 1) * p->ws * 4;
        uint8_t *e = d + (p->oh - 1) * row;
        if (row < 16) {
            memcpy(e, s, row);
            continue;
        }
        for (size_t c = 0; c + 1 < chunks; c++)
            memcpy(e + 16 * c, s + 16 * c, 16);
        memcpy(e + row - 16, s + row - 16, 16);
    }
}

void oq_qconv_reorder(const oq_qconv_plan *p, size_t m, const uint8_t *w, bool ones, bool flip,
                      uint8_t *dst)
{
    uint8_t fl = flip ? 0x80 : 0;
    size_t kd = p->k4 * 4, ks = p->kh * p->kw;
    for (size_t i = 0; i < m; i++) {
        uint8_t *d = dst + i * kd;
        memset(d, 0, kd);
        for (size_t ky = 0; ky < p->kh; ky++)
            for (size_t kx = 0; kx < p->kw; kx++)
                for (size_t c = 0; c < p->c; c++)
                    d[(ky * p->kw + kx) * p->c4 * 4 + c] =
                        ones ? 1 : w[(i * p->c + c) * ks + ky * p->kw + kx] ^ fl;
    }
}

/* ---- depthwise planes ---- */

void oq_qdw_plan_init(oq_qdw_plan *p, size_t h, size_t w, size_t kh, size_t kw, size_t sh,
                      size_t sw, size_t dh, size_t dw, size_t pt, size_t pl, size_t oh,
                      size_t ow)
{
    p->h = h;
    p->w = w;
    p->kh = kh;
    p->kw = kw;
    p->sh = sh;
    p->sw = sw;
    p->dh = dh;
    p->dw = dw;
    p->pt = pt;
    p->pl = pl;
    p->oh = oh;
    p->ow = ow;
    size_t wp = (ow - 1) * sw + (kw - 1) * dw + 1;
    p->ph = (oh - 1) * sh + (kh - 1) * dh + 1;
    p->pw = ceil_div(wp, sw);
}

/* The planes, then one padded input row (sw * pw + 64 bytes), then the 64
 * readable bytes the kernels may touch past the planes. */
size_t oq_qdw_plane_bytes(const oq_qdw_plan *p)
{
    return p->sw * p->ph * p->pw + p->sw * p->pw + 128;
}

void oq_qdw_planes(const oq_qdw_plan *p, const uint8_t *x, bool flip, uint8_t pad,
                   uint8_t *planes)
{
    uint8_t fl = flip ? 0x80 : 0;
    size_t sw = p->sw, pw = p->pw, len = sw * pw, plane = p->ph * pw;
    uint8_t *tmp = planes + sw * plane;
    /* padded column c holds input column c - pl */
    size_t left = p->pl < len ? p->pl : len;
    size_t mid = p->w < len - left ? p->w : len - left;
    for (size_t r = 0; r < p->ph; r++) {
        bool inside = r >= p->pt && r - p->pt < p->h;
        uint8_t *row = sw == 1 ? planes + r * pw : tmp;
        if (!inside) {
            for (size_t ph = 0; ph < sw; ph++)
                memset(planes + ph * plane + r * pw, pad, pw);
            continue;
        }
        if (sw == 2) {
            dw_row_s2(x + (r - p->pt) * p->w, p->w, p->pl, pw, fl, pad, planes + r * pw,
                      planes + plane + r * pw);
            continue;
        }
        fill_pad(row, pad, left);
        gather(x + (r - p->pt) * p->w, 1, mid, fl, row + left);
        fill_pad(row + left + mid, pad, len - left - mid);
        if (sw > 2)
            for (size_t ph = 0; ph < sw; ph++) {
                uint8_t *d = planes + ph * plane + r * pw;
                for (size_t i = 0; i < pw; i++)
                    d[i] = tmp[i * sw + ph];
            }
    }
    memset(planes + sw * plane + len, pad, 64);
}
