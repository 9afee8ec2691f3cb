#include "viz/canvas.hpp"
#include "viz/font.hpp"

#include <vkattn/error.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace vkattn::viz {

Canvas::Canvas(int width, int height) {
    if (width < 1 || height < 1 || (long long)width * height > kMaxPixels) {
        throw Error("an attention map of " + std::to_string(width) + " x " + std::to_string(height) +
                    " pixels is above the limit of 100 megapixels; draw fewer heads, fewer tokens or smaller cells");
    }
    image_.width = width;
    image_.height = height;
    image_.rgb.resize(size_t(width) * size_t(height) * 3);
    for (size_t i = 0; i < image_.rgb.size(); i += 3) std::copy(kBackground.begin(), kBackground.end(), &image_.rgb[i]);
}

void Canvas::fill(int x, int y, int w, int h, Rgb colour) {
    const int x0 = std::max(x, 0), y0 = std::max(y, 0);
    const int x1 = std::min(x + w, image_.width), y1 = std::min(y + h, image_.height);
    for (int r = y0; r < y1; ++r) {
        uint8_t* row = &image_.rgb[(size_t(r) * size_t(image_.width)) * 3];
        for (int c = x0; c < x1; ++c) std::copy(colour.begin(), colour.end(), row + size_t(c) * 3);
    }
}

void Canvas::outline(int x, int y, int w, int h, Rgb colour) {
    fill(x, y, w, 1, colour);
    fill(x, y + h - 1, w, 1, colour);
    fill(x, y, 1, h, colour);
    fill(x + w - 1, y, 1, h, colour);
}

void Canvas::fill_pixel_block(int x, int y, int scale) { fill(x, y, scale, scale, kInk); }

void Canvas::text(int x, int y, std::string_view s, int scale) {
    for (size_t n = 0; n < s.size(); ++n) {
        for (int gy = 0; gy < kGlyphHeight; ++gy) {
            for (int gx = 0; gx < kGlyphWidth; ++gx) {
                if (glyph_pixel(s[n], gx, gy)) {
                    fill_pixel_block(x + (int(n) * kGlyphAdvance + gx) * scale, y + gy * scale, scale);
                }
            }
        }
    }
}

void Canvas::text_up(int x, int y, std::string_view s, int scale) {
    // Turned a quarter counter-clockwise: the glyph's top row runs along the left, its first column at the bottom.
    for (size_t n = 0; n < s.size(); ++n) {
        for (int gy = 0; gy < kGlyphHeight; ++gy) {
            for (int gx = 0; gx < kGlyphWidth; ++gx) {
                if (glyph_pixel(s[n], gx, gy)) {
                    fill_pixel_block(x + gy * scale, y + 1 - (int(n) * kGlyphAdvance + gx + 1) * scale, scale);
                }
            }
        }
    }
}

int text_width(size_t chars, int scale) {
    return chars == 0 ? 0 : (int(chars) * kGlyphAdvance - 1) * scale;
}

float ColourScale::level(float p) const {
    if (decades <= 0) return p / vmax;
    return p > 0 ? 1.0f + std::log10(p / vmax) / decades : 0.0f;
}

float ColourScale::value_at(float t) const {
    if (decades <= 0) return t * vmax;
    return vmax * std::pow(10.0f, (t - 1.0f) * decades);
}

float check_decades(float decades) {
    if (!(decades >= 0 && decades <= 38)) {
        throw Error("a log scale spans 0 to 38 decades (0: linear), got " + format_prob(decades));
    }
    return decades;
}

namespace {
std::array<std::string, 3> colorbar_labels(const ColourScale& c) {
    return {format_prob(c.value_at(1)), format_prob(c.value_at(0.5f)), format_prob(c.value_at(0))};
}
}  // namespace

int colorbar_width(int scale) { return 6 * scale; }

int colorbar_total_width(const ColourScale& colours, int scale) {
    size_t chars = 0;
    for (const auto& l : colorbar_labels(colours)) chars = std::max(chars, l.size());
    return colorbar_width(scale) + 4 * scale + text_width(chars, scale);
}

void draw_colorbar(Canvas& canvas, int x, int y, int height, const ColourScale& colours, int scale) {
    const int w = colorbar_width(scale);
    for (int r = 0; r < height; ++r) {
        const float t = height > 1 ? 1.0f - float(r) / float(height - 1) : 1.0f;
        canvas.fill(x, y + r, w, 1, colormap(t));
    }
    const auto labels = colorbar_labels(colours);
    const int marks[3] = {y, y + (height - 1) / 2, y + height - 1};
    for (int k = 0; k < 3; ++k) {
        canvas.fill(x + w, marks[k], 2 * scale, std::max(1, scale / 2), kInk);
        canvas.text(x + w + 4 * scale, marks[k] - kGlyphHeight * scale / 2, labels[size_t(k)], scale);
    }
}

float check_probs(const AttentionProbs& p, const std::string& what) {
    if (p.H < 1 || p.Lq < 1 || p.Lk < 1) {
        throw Error(what + ": expected at least one head, query and key, got H = " + std::to_string(p.H) +
                    ", Lq = " + std::to_string(p.Lq) + ", Lk = " + std::to_string(p.Lk));
    }
    const size_t n = size_t(p.H) * size_t(p.Lq) * size_t(p.Lk);
    if (p.data.size() != n) {
        throw Error(what + ": expected H x Lq x Lk = " + std::to_string(p.H) + " x " + std::to_string(p.Lq) + " x " +
                    std::to_string(p.Lk) + " = " + std::to_string(n) + " values, got " + std::to_string(p.data.size()));
    }
    float vmax = 0;
    for (size_t idx = 0; idx < n; ++idx) {
        const float v = p.data[idx];
        if (!(v >= 0.0f && v <= 1.001f)) {
            const size_t h = idx / (size_t(p.Lq) * size_t(p.Lk)), i = idx / size_t(p.Lk) % size_t(p.Lq),
                         j = idx % size_t(p.Lk);
            const std::string value = std::isnan(v) ? "NaN" : std::isinf(v) ? "infinite" : std::to_string(v);
            throw Error(what + ": expected probabilities in [0, 1], got " + value + " at head " + std::to_string(h) +
                        ", query " + std::to_string(i) + ", key " + std::to_string(j));
        }
        vmax = std::max(vmax, v);
    }
    return vmax;
}

std::string format_prob(double p) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3g", p);
    return buf;
}

}  // namespace vkattn::viz
