// Drawing on an RGB image: rectangles, text in the bitmap font (upright or turned to read bottom to top) and a
// colour bar; plus the input checks that every entry point of the viz layer shares.
#pragma once

#include <vkattn/attention_map.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace vkattn::viz {

using Rgb = std::array<uint8_t, 3>;

class Canvas {
public:
    // Throws vkattn::Error when width · height is above kMaxPixels.
    Canvas(int width, int height);
    void fill(int x, int y, int w, int h, Rgb colour);        // clipped to the image
    void outline(int x, int y, int w, int h, Rgb colour);     // a one-pixel frame
    void text(int x, int y, std::string_view s, int scale);     // upright, top-left corner at (x, y)
    void text_up(int x, int y, std::string_view s, int scale);  // reads bottom to top from (x, y) = its lower-left
    Image take() { return std::move(image_); }

private:
    void fill_pixel_block(int x, int y, int scale);
    Image image_;
};

constexpr long long kMaxPixels = 100'000'000;

// Width in pixels of n characters (the length of upright text, the height of turned text).
int text_width(size_t chars, int scale);

// How a probability becomes a colour level t in [0, 1] (see attention_map.hpp).
struct ColourScale {
    float vmax = 1;
    float decades = 0;  // 0: linear
    float level(float p) const;
    float value_at(float t) const;  // the probability at level t
};
// Throws vkattn::Error unless 0 <= decades <= 38 (a float's range).
float check_decades(float decades);

// The width a colour bar of this scale needs with its labels, and the bar itself: level 1 at the top, 0 at the
// bottom, ticks and labels at levels 0, 0.5 and 1.
int colorbar_total_width(const ColourScale& colours, int scale);
void draw_colorbar(Canvas& canvas, int x, int y, int height, const ColourScale& colours, int scale);
int colorbar_width(int scale);

// Checks shape, size and values of probs (what: "attention probabilities" or "layer 3"): dimensions >= 1,
// data.size() == H · Lq · Lk, values finite, >= 0 and <= 1.001. Returns the largest value.
float check_probs(const AttentionProbs& probs, const std::string& what);

// "0.5", "0.0312": a probability with 3 significant digits.
std::string format_prob(double p);

}  // namespace vkattn::viz
