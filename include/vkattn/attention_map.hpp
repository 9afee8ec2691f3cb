// Attention maps: attention probabilities [H, Lq, Lk] drawn as PNG images, and per-head numbers that say what
// each head does (previous-token heads, heads that park on the first token, local or spread-out heads).
//
// Rows are queries, columns keys. Query i sits at position i + Lk - Lq (bottom-right aligned, the KV-cache
// convention of attention.hpp), so with Lq == Lk query i is token i. The colour of a cell is the viridis colour
// map (see colormap) at level k of 256: on the linear scale (the default) k = round(255 · min(p / vmax, 1)), so
// a cell decodes back to p within vmax / 510; on a log scale of d decades k = round(255 · clamp(1 + log10(p /
// vmax) / d, 0, 1)), which shows the small probabilities of long sequences, and decodes within a factor of
// 10^(d / 510) (1.4% for 3 decades) above vmax · 10^-d. A probability of exactly 0 (a masked key) is left in the
// background colour, so the upper triangle of a causal map is empty.
#pragma once

#include <vkattn/export.hpp>

#include <array>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace vkattn::viz {

// Attention probabilities of one layer: data [H, Lq, Lk], row-major, each row a softmax over keys.
struct AttentionProbs {
    std::span<const float> data;  // [H, Lq, Lk]
    int H = 1;
    int Lq = 1;
    int Lk = 1;
};

// An 8-bit RGB image: rgb [height, width, 3], row-major.
struct Image {
    int width = 0;
    int height = 0;
    std::vector<uint8_t> rgb;
};

// Colours the renderer uses outside the colour map.
constexpr std::array<uint8_t, 3> kBackground = {255, 255, 255};  // margins and masked (p == 0) cells
constexpr std::array<uint8_t, 3> kInk = {24, 24, 24};             // text and tick marks

// Viridis (matplotlib's default, perceptually uniform and readable in greyscale and by colour-blind
// readers) at t in [0, 1] (clamped), as 8-bit sRGB. Its 256 levels are 256 distinct colours.
VKATTN_API std::array<uint8_t, 3> colormap(float t);

// How a map is drawn. Every size is in pixels.
struct MapOptions {
    std::string title;                     // first line of the image; empty: none
    std::vector<std::string> query_tokens; // [Lq] row labels (UTF-8; non-ASCII drawn as '?'); empty: positions
                                           // (query i at i + Lk - Lq)
    std::vector<std::string> key_tokens;   // [Lk] column labels; empty: query_tokens when Lq == Lk, else positions
    int head = -1;                         // >= 0: that head alone; -1: a grid of all heads
    int cell = 0;                          // pixels per token; 0: auto_cell_size
    float vmax = 0;                        // probability drawn brightest; <= 0: the largest drawn probability
    float log_decades = 0;                 // > 0: log scale over this many decades below vmax; 0: linear
    int text_scale = 2;                    // glyphs are 5x7 pixels times this (1 to 4)
    int max_label_chars = 12;              // longer token labels are cut, ending in '~'
};

// Cells of 768 / max(Lq, Lk) pixels for one head, 384 / max(Lq, Lk) per panel of a grid, clamped to [1, 48]:
// 48-pixel cells for 4 tokens, 1-pixel cells from 768 tokens up (one head) and from 384 (grid).
VKATTN_API int auto_cell_size(int Lq, int Lk, bool grid);

// Where things were drawn, so callers and tests can find them.
struct MapLayout {
    struct Panel {
        int head = 0;
        int x = 0, y = 0;           // top-left corner of the cells of this head
        int width = 0, height = 0;  // Lk · cell, Lq · cell
    };
    int width = 0, height = 0;  // of the whole image
    int cell = 0;               // pixels per token
    float vmax = 0;             // the probability drawn with colormap(1)
    float log_decades = 0;      // as in MapOptions
    int columns = 1, rows = 1;  // of the grid of panels
    int query_label_step = 1;   // a label on every this many queries (thinned so that labels never overlap)
    int key_label_step = 1;
    std::vector<Panel> panels;  // in head order
    int colorbar_x = 0, colorbar_y = 0, colorbar_width = 0, colorbar_height = 0;  // the gradient, vmax on top
};

// Draws one head, or a grid of all heads. The image, top to bottom: the title; then the panels, one per head,
// head h in grid row h / columns and column h % columns with columns = ceil(sqrt(H)) (12 heads: 4 × 3), each
// with "head h" above it, key labels above the cells (written bottom to top) and query labels left of them;
// a colour bar right of the panels with its bottom, middle and top values marked. Labels are thinned to every
// 1, 2, 5, 10, 20, 50, ... tokens so that neighbours never overlap. Throws vkattn::Error (one line) on an empty or
// inconsistent input, a value that is NaN, infinite, negative or above 1.001, a head out of range, token lists
// of the wrong length, log_decades outside [0, 38], or an image above 100 megapixels.
VKATTN_API Image render_attention_map(const AttentionProbs& probs, const MapOptions& options = {}, MapLayout* layout = nullptr);

// How the layers × heads overview is drawn.
struct ThumbnailOptions {
    std::string title;
    int size = 128;       // largest side of one thumbnail; longer sequences are max-pooled to fit
    float vmax = 0;       // <= 0: the largest probability of all layers
    float log_decades = 0;  // as in MapOptions
    int text_scale = 2;
};

// Layout of the overview: thumbnail (l, h) of layer l, head h at (x0 + h · pitch_x, y0 + l · pitch_y).
struct ThumbnailLayout {
    int width = 0, height = 0;
    int x0 = 0, y0 = 0;
    int pitch_x = 0, pitch_y = 0;
    int thumb_width = 0, thumb_height = 0;  // pixels of one thumbnail
    int pool = 1;                           // tokens per pixel (max-pooled) when > 1
    int cell = 1;                           // pixels per token when pool == 1
    float vmax = 0;
    float log_decades = 0;
    int colorbar_x = 0, colorbar_y = 0, colorbar_width = 0, colorbar_height = 0;
};

// Every head of every layer as a grid of thumbnails: one row per layer (labelled L0, L1, ...), one column per
// head (H0, H1, ...), a colour bar on the right. All layers must share H, Lq and Lk. A thumbnail pixel covering
// several tokens shows their largest probability, so a one-token diagonal stays visible at any length.
VKATTN_API Image render_attention_thumbnails(std::span<const AttentionProbs> layers, const ThumbnailOptions& options = {},
                                  ThumbnailLayout* layout = nullptr);

// Writes an 8-bit RGB PNG (libpng). Throws vkattn::Error naming the file when it cannot be written.
VKATTN_API void write_png(const std::filesystem::path& path, const Image& image);

// What one head does, from its probabilities p [Lq, Lk]. Query i is at position q_i = i + Lk - Lq. A row
// counts only when it holds some probability (a fully masked row is all zeros and is skipped).
//   previous_token  mean of p[i, q_i - 1] over rows with q_i >= 1 (rows that have a previous token)
//   first_token     mean of p[i, 0] over the same rows (a row that can only see key 0 says nothing)
//   mean_distance   mean over rows of sum_j p[i, j] · |q_i - j|, in tokens
//   entropy         mean over rows of -sum_j p[i, j] · ln p[i, j], in nats (0: one key; ln n: n keys evenly)
// A mean over no rows is NaN (e.g. previous_token of a single query at position 0).
struct HeadSummary {
    int head = 0;
    double previous_token = 0;
    double first_token = 0;
    double mean_distance = 0;
    double entropy = 0;
};

// One summary per head. Validates probs as render_attention_map does.
VKATTN_API std::vector<HeadSummary> summarize_heads(const AttentionProbs& probs);

}  // namespace vkattn::viz
