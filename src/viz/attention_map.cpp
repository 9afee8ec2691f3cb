// Attention maps: one head or a grid of heads with token labels, and the layers × heads overview.
#include "viz/canvas.hpp"
#include "viz/font.hpp"

#include <vkattn/attention_map.hpp>
#include <vkattn/error.hpp>

#include <algorithm>
#include <cmath>

namespace vkattn::viz {
namespace {

constexpr Rgb kFrame = {190, 190, 190};

// Labels of n tokens: the tokens as printable ASCII cut to max_chars (ending in '~'), or positions first, ...
std::vector<std::string> make_labels(const std::vector<std::string>& tokens, int n, int first, int max_chars) {
    std::vector<std::string> labels(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
        if (tokens.empty()) {
            labels[size_t(i)] = std::to_string(first + i);
            continue;
        }
        std::string s = printable_ascii(tokens[size_t(i)]);
        if (int(s.size()) > max_chars) s = s.substr(0, size_t(max_chars - 1)) + "~";
        labels[size_t(i)] = s;
    }
    return labels;
}

// The smallest of 1, 2, 5, 10, 20, 50, ... whose labels are at least min_pitch pixels apart.
int label_step(int cell, int min_pitch) {
    for (int decade = 1;; decade *= 10) {
        for (int m : {1, 2, 5}) {
            if (m * decade * cell >= min_pitch) return m * decade;
        }
    }
}

size_t longest(const std::vector<std::string>& labels, int step) {
    size_t chars = 0;
    for (size_t i = 0; i < labels.size(); i += size_t(step)) chars = std::max(chars, labels[i].size());
    return chars;
}

// "H3", "L11". (Not "H" + std::to_string(n): GCC 12 warns falsely about it, -Wrestrict.)
std::string tag(char c, int n) {
    std::string s(1, c);
    s += std::to_string(n);
    return s;
}

int check_scale(int scale) {
    if (scale < 1 || scale > 4) throw Error("text scale must be 1 to 4, got " + std::to_string(scale));
    return scale;
}

}  // namespace

int auto_cell_size(int Lq, int Lk, bool grid) {
    const int target = grid ? 384 : 768;
    return std::clamp(target / std::max({Lq, Lk, 1}), 1, 48);
}

Image render_attention_map(const AttentionProbs& probs, const MapOptions& o, MapLayout* layout_out) {
    const float largest = check_probs(probs, "attention probabilities");
    const int s = check_scale(o.text_scale);
    if (o.head < -1 || o.head >= probs.H) {
        throw Error("head " + std::to_string(o.head) + " does not exist: the probabilities have " +
                    std::to_string(probs.H) + " heads (0 to " + std::to_string(probs.H - 1) + ", or -1 for all)");
    }
    if (!o.query_tokens.empty() && int(o.query_tokens.size()) != probs.Lq) {
        throw Error("expected " + std::to_string(probs.Lq) + " query tokens (one per row), got " +
                    std::to_string(o.query_tokens.size()));
    }
    if (!o.key_tokens.empty() && int(o.key_tokens.size()) != probs.Lk) {
        throw Error("expected " + std::to_string(probs.Lk) + " key tokens (one per column), got " +
                    std::to_string(o.key_tokens.size()));
    }
    if (o.cell < 0 || o.cell > 256) {
        throw Error("cell size must be 1 to 256 pixels (0: automatic), got " + std::to_string(o.cell));
    }
    if (o.max_label_chars < 2) {
        throw Error("labels need at least 2 characters, got " + std::to_string(o.max_label_chars));
    }
    if (std::isnan(o.vmax)) throw Error("vmax is NaN; expected a positive probability, or 0 for automatic");
    check_decades(o.log_decades);

    std::vector<int> heads;
    if (o.head >= 0) {
        heads.push_back(o.head);
    } else {
        for (int h = 0; h < probs.H; ++h) heads.push_back(h);
    }
    const bool grid = heads.size() > 1;
    const int Lq = probs.Lq, Lk = probs.Lk;
    const size_t plane = size_t(Lq) * size_t(Lk);

    MapLayout L;
    L.cell = o.cell > 0 ? o.cell : auto_cell_size(Lq, Lk, grid);
    if (o.vmax > 0) {
        L.vmax = o.vmax;
    } else {
        float m = 0;
        for (int h : heads) {
            for (size_t k = 0; k < plane; ++k) m = std::max(m, probs.data[size_t(h) * plane + k]);
        }
        L.vmax = m > 0 ? m : (largest > 0 ? largest : 1.0f);
    }
    L.log_decades = o.log_decades;
    const ColourScale colours{L.vmax, L.log_decades};

    const std::vector<std::string>& key_tokens = o.key_tokens.empty() && Lq == Lk ? o.query_tokens : o.key_tokens;
    const auto qlabels = make_labels(o.query_tokens, Lq, Lk - Lq, o.max_label_chars);
    const auto klabels = make_labels(key_tokens, Lk, 0, o.max_label_chars);
    const int min_pitch = (kGlyphHeight + 1) * s;
    L.query_label_step = label_step(L.cell, min_pitch);
    L.key_label_step = label_step(L.cell, min_pitch);

    // Geometry of one panel, then of the grid (see the header).
    const int margin = 4 * s, gap = 8 * s, tick = 2 * s, pad = 2 * s;
    const int line = kLineHeight * s;
    const int title_h = o.title.empty() ? 0 : line + pad;
    const int left = text_width(longest(qlabels, L.query_label_step), s) + pad + tick + 1;
    const int top = line + text_width(longest(klabels, L.key_label_step), s) + pad + tick + 1;
    // Wide enough for "head H-1" above the cells, so that a narrow panel's name does not run into the next one.
    const int head_name_w = text_width(5 + std::to_string(probs.H - 1).size(), s);
    const int panel_w = left + std::max(Lk * L.cell, head_name_w), panel_h = top + Lq * L.cell;
    const int n = int(heads.size());
    L.columns = int(std::ceil(std::sqrt(double(n))));
    L.rows = (n + L.columns - 1) / L.columns;

    const int panels_w = L.columns * panel_w + (L.columns - 1) * gap;
    const int panels_h = L.rows * panel_h + (L.rows - 1) * gap;
    L.colorbar_x = margin + panels_w + gap;
    L.colorbar_y = margin + title_h + top;
    L.colorbar_width = colorbar_width(s);
    L.colorbar_height = std::clamp(Lq * L.cell, 128, 512);
    L.width = std::max(L.colorbar_x + colorbar_total_width(colours, s) + margin,
                       2 * margin + text_width(printable_ascii(o.title).size(), s));
    L.height = std::max(margin + title_h + panels_h, L.colorbar_y + L.colorbar_height + kGlyphHeight * s / 2) + margin;
    if ((long long)L.width * L.height > kMaxPixels || L.width > 65535 || L.height > 65535) {
        throw Error("an attention map of " + std::to_string(L.width) + " x " + std::to_string(L.height) +
                    " pixels is above the limit of 100 megapixels; draw fewer heads, fewer tokens or smaller cells");
    }

    Canvas canvas(L.width, L.height);
    if (!o.title.empty()) canvas.text(margin, margin, printable_ascii(o.title), s);
    for (int k = 0; k < n; ++k) {
        const int h = heads[size_t(k)];
        const int px = margin + (k % L.columns) * (panel_w + gap);
        const int py = margin + title_h + (k / L.columns) * (panel_h + gap);
        const int cx = px + left, cy = py + top;
        L.panels.push_back({h, cx, cy, Lk * L.cell, Lq * L.cell});

        canvas.text(cx, py, "head " + std::to_string(h), s);
        canvas.outline(cx - 1, cy - 1, Lk * L.cell + 2, Lq * L.cell + 2, kFrame);
        const int thick = std::max(1, s / 2);
        for (int i = 0; i < Lq; i += L.query_label_step) {
            const int centre = cy + i * L.cell + L.cell / 2;
            const auto& label = qlabels[size_t(i)];
            canvas.fill(cx - 1 - tick, centre, tick, thick, kInk);
            canvas.text(cx - 1 - tick - pad - text_width(label.size(), s), centre - kGlyphHeight * s / 2, label, s);
        }
        for (int j = 0; j < Lk; j += L.key_label_step) {
            const int centre = cx + j * L.cell + L.cell / 2;
            canvas.fill(centre, cy - 1 - tick, thick, tick, kInk);
            canvas.text_up(centre - kGlyphHeight * s / 2, cy - 2 - tick - pad, klabels[size_t(j)], s);
        }
        const float* p = probs.data.data() + size_t(h) * plane;
        for (int i = 0; i < Lq; ++i) {
            for (int j = 0; j < Lk; ++j) {
                const float v = p[size_t(i) * size_t(Lk) + size_t(j)];
                if (v == 0.0f) continue;  // masked: left in the background colour
                canvas.fill(cx + j * L.cell, cy + i * L.cell, L.cell, L.cell, colormap(colours.level(v)));
            }
        }
    }
    draw_colorbar(canvas, L.colorbar_x, L.colorbar_y, L.colorbar_height, colours, s);
    if (layout_out) *layout_out = std::move(L);
    return canvas.take();
}

Image render_attention_thumbnails(std::span<const AttentionProbs> layers, const ThumbnailOptions& o,
                                  ThumbnailLayout* layout_out) {
    if (layers.empty()) throw Error("attention thumbnails: expected at least one layer, got none");
    const int s = check_scale(o.text_scale);
    if (o.size < 8 || o.size > 1024) {
        throw Error("thumbnail size must be 8 to 1024 pixels, got " + std::to_string(o.size));
    }
    if (std::isnan(o.vmax)) throw Error("vmax is NaN; expected a positive probability, or 0 for automatic");
    check_decades(o.log_decades);
    const AttentionProbs& first = layers[0];
    float largest = 0;
    for (size_t l = 0; l < layers.size(); ++l) {
        const auto& p = layers[l];
        largest = std::max(largest, check_probs(p, "layer " + std::to_string(l)));
        if (p.H != first.H || p.Lq != first.Lq || p.Lk != first.Lk) {
            throw Error("layer " + std::to_string(l) + " has H, Lq, Lk = " + std::to_string(p.H) + ", " +
                        std::to_string(p.Lq) + ", " + std::to_string(p.Lk) + "; layer 0 has " +
                        std::to_string(first.H) + ", " + std::to_string(first.Lq) + ", " + std::to_string(first.Lk));
        }
    }
    const int H = first.H, Lq = first.Lq, Lk = first.Lk, n_layers = int(layers.size());
    ThumbnailLayout L;
    L.vmax = o.vmax > 0 ? o.vmax : (largest > 0 ? largest : 1.0f);
    L.log_decades = o.log_decades;
    const ColourScale colours{L.vmax, L.log_decades};
    const int longest_len = std::max(Lq, Lk);
    if (longest_len <= o.size) {
        L.pool = 1;
        L.cell = std::max(1, o.size / longest_len);
    } else {
        L.pool = (longest_len + o.size - 1) / o.size;
        L.cell = 1;
    }
    const int cols_px = (Lk + L.pool - 1) / L.pool, rows_px = (Lq + L.pool - 1) / L.pool;
    L.thumb_width = cols_px * L.cell;
    L.thumb_height = rows_px * L.cell;

    const int margin = 4 * s, gap = 4 * s, pad = 2 * s, line = kLineHeight * s;
    const int title_h = o.title.empty() ? 0 : line + pad;
    const std::string last_head = tag('H', H - 1), last_layer = tag('L', n_layers - 1);
    const int left = text_width(last_layer.size(), s) + pad;
    L.pitch_x = std::max(L.thumb_width, text_width(last_head.size(), s)) + gap;
    L.pitch_y = std::max(L.thumb_height, kGlyphHeight * s) + gap;
    L.x0 = margin + left;
    L.y0 = margin + title_h + line;
    L.colorbar_x = L.x0 + H * L.pitch_x + gap;
    L.colorbar_y = L.y0;
    L.colorbar_width = colorbar_width(s);
    L.colorbar_height = std::clamp(n_layers * L.pitch_y - gap, 128, 512);
    L.width = std::max(L.colorbar_x + colorbar_total_width(colours, s) + margin,
                       2 * margin + text_width(printable_ascii(o.title).size(), s));
    L.height = std::max(L.y0 + n_layers * L.pitch_y, L.colorbar_y + L.colorbar_height + kGlyphHeight * s / 2) + margin;
    if ((long long)L.width * L.height > kMaxPixels || L.width > 65535 || L.height > 65535) {
        throw Error("an overview of " + std::to_string(L.width) + " x " + std::to_string(L.height) +
                    " pixels is above the limit of 100 megapixels; use smaller thumbnails");
    }

    Canvas canvas(L.width, L.height);
    if (!o.title.empty()) canvas.text(margin, margin, printable_ascii(o.title), s);
    for (int h = 0; h < H; ++h) canvas.text(L.x0 + h * L.pitch_x, L.y0 - line, tag('H', h), s);
    const size_t plane = size_t(Lq) * size_t(Lk);
    for (int l = 0; l < n_layers; ++l) {
        const int ty = L.y0 + l * L.pitch_y;
        const std::string name = tag('L', l);
        canvas.text(L.x0 - pad - text_width(name.size(), s), ty + (L.thumb_height - kGlyphHeight * s) / 2, name, s);
        for (int h = 0; h < H; ++h) {
            const int tx = L.x0 + h * L.pitch_x;
            canvas.outline(tx - 1, ty - 1, L.thumb_width + 2, L.thumb_height + 2, kFrame);
            const float* p = layers[size_t(l)].data.data() + size_t(h) * plane;
            for (int r = 0; r < rows_px; ++r) {
                for (int c = 0; c < cols_px; ++c) {
                    float m = 0;  // the largest probability of the tokens under this pixel
                    for (int i = r * L.pool; i < std::min(Lq, (r + 1) * L.pool); ++i) {
                        for (int j = c * L.pool; j < std::min(Lk, (c + 1) * L.pool); ++j) {
                            m = std::max(m, p[size_t(i) * size_t(Lk) + size_t(j)]);
                        }
                    }
                    if (m == 0.0f) continue;
                    canvas.fill(tx + c * L.cell, ty + r * L.cell, L.cell, L.cell, colormap(colours.level(m)));
                }
            }
        }
    }
    draw_colorbar(canvas, L.colorbar_x, L.colorbar_y, L.colorbar_height, colours, s);
    if (layout_out) *layout_out = L;
    return canvas.take();
}

}  // namespace vkattn::viz
